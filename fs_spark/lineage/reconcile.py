"""Reconciliation: every link between records still points at something that exists and reads.

Runs, training sets, model versions and deployments refer to feature versions, training sets and
model versions by ID and Delta version. Each reference is checked: the record exists, and the data
is still readable at the recorded Delta version (its log entry and every data file), and every
feature a live deployment needs is still in its table's current definition. A link that fails is
dangling; it is authorised when a record explains it (a forced VACUUM in `maintenance_events`, a
deprecation schedule in `deprecations`), and unauthorised otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import (
    DEPLOYMENTS,
    DEPRECATIONS,
    FEATURE_VERSIONS,
    MAINTENANCE_EVENTS,
    MODEL_VERSIONS,
    RUN_INPUTS,
    RUNS,
    TRAINING_SETS,
)
from fs_spark.progress import step
from fs_spark.storage.reader import load_delta_version
from fs_spark.tracking.records import Deployment


@dataclass(frozen=True)
class DanglingLink:
    holder: str  # kind:id of the record that refers
    target: str  # kind:id of what it refers to
    problem: str
    authorised_by: str | None = None  # the maintenance event that explains it, if any

    def __str__(self) -> str:
        why = f"authorised by record {self.authorised_by}" if self.authorised_by else "UNAUTHORISED"
        return f"{self.holder} -> {self.target}: {self.problem} ({why})"


@dataclass(frozen=True)
class ReconcileReport:
    checked: int
    dangling: list[DanglingLink] = field(default_factory=list)

    @property
    def unauthorised(self) -> list[DanglingLink]:
        return [d for d in self.dangling if d.authorised_by is None]

    @property
    def ok(self) -> bool:
        """No link dangles without an authorised record."""
        return not self.unauthorised

    def to_text(self) -> str:
        head = f"checked {self.checked} link(s): {len(self.dangling)} dangling, {len(self.unauthorised)} unauthorised"
        return "\n".join([head, *(f"  {d}" for d in self.dangling)])


class _UnreadableError(Exception):
    pass


def reconcile(spark: SparkSession, catalog: Catalog, live_deployments: list[Deployment]) -> ReconcileReport:
    """Check every reference the catalog holds; one read of the Delta log per (table, version)."""
    versions = {r["version_id"]: r for r in catalog.rows(FEATURE_VERSIONS.name)}
    sets = {r["training_set_id"]: r for r in catalog.rows(TRAINING_SETS.name)}
    models = {r["model_version_id"]: r for r in catalog.rows(MODEL_VERSIONS.name)}
    runs = {r["run_id"] for r in catalog.rows(RUNS.name)}
    removals = [r for r in catalog.rows(MAINTENANCE_EVENTS.name) if r["forced"]]
    readable: dict[tuple[str, int], str | None] = {}

    def problem_reading(path: str, delta_version: int) -> str | None:
        if (path, delta_version) not in readable:
            step(f"checking links: {len(readable) + 1} Delta versions read")
            try:
                load_delta_version(spark, path, delta_version, _UnreadableError)
                readable[(path, delta_version)] = None
            except _UnreadableError as exc:
                readable[(path, delta_version)] = f"unreadable at Delta version {delta_version}: {exc}"
        return readable[(path, delta_version)]

    deprecations = {
        (r["table_name"], r["feature"]): r["event_id"] for r in catalog.rows(DEPRECATIONS.name) if not r["withdrawn"]
    }

    def authorised(path: str, holder_id: str) -> str | None:
        if path.startswith("feature:"):  # a feature gone from its definition: was it deprecated?
            table, _, feature = path.removeprefix("feature:").partition(":")
            return deprecations.get((table, feature)) or deprecations.get((table, None))
        for event in removals:
            if path in (event["storage_paths"] or []) or holder_id in (event["affected_training_sets"] or []):
                return event["event_id"]
        return None

    def links() -> Iterator[tuple[str, str, str | None, str | None]]:
        """(holder, target, problem, what a record could explain it by: a storage path, or
        feature:<table>:<feature> for a deprecation)."""
        for ts_id, row in sets.items():
            holder = f"training_set:{ts_id}"
            for lookup in json.loads(row["lookups_json"]):
                version_id, delta_version = lookup.get("version_id"), lookup.get("delta_version")
                if version_id is None:
                    continue
                target = f"feature_version:{version_id}"
                if version_id not in versions:
                    yield holder, target, "no such feature version record", None
                    continue
                yield holder, target, problem_reading(lookup["storage_path"], delta_version), lookup["storage_path"]
            yield (
                holder,
                f"delta:{row['entity_path']}",
                problem_reading(row["entity_path"], row["entity_delta_version"]),
                row["entity_path"],
            )
            yield (
                holder,
                f"delta:{row['output_path']}",
                problem_reading(row["output_path"], row["output_delta_version"]),
                row["output_path"],
            )
            if row["run_id"] and row["run_id"] not in runs:
                yield holder, f"run:{row['run_id']}", "no such run record", None
        for mv_id, row in models.items():
            holder = f"model_version:{mv_id}"
            for ts_id in row["training_set_ids"] or []:
                yield holder, f"training_set:{ts_id}", None if ts_id in sets else "no such training set record", None
            for version_id in row["feature_version_ids"] or []:
                yield (
                    holder,
                    f"feature_version:{version_id}",
                    None if version_id in versions else "no such feature version record",
                    None,
                )
            if row["run_id"] and row["run_id"] not in runs:
                yield holder, f"run:{row['run_id']}", "no such run record", None
        for row in catalog.rows(DEPLOYMENTS.name):
            target = row["model_version_id"]
            yield (
                f"deployment:{row['deployment_id']}",
                f"model_version:{target}",
                None if target in models else "no such model version record",
                None,
            )
        current = {r["table_name"]: r for r in catalog.definition_rows()}
        for live in live_deployments:
            for needed in live.features:
                table, _, feature = needed.partition(":")
                definition = json.loads(current[table]["definition_json"]) if table in current else {"features": []}
                if feature not in {f["name"] for f in definition["features"]}:
                    yield (
                        f"deployment:{live.deployment_id}",
                        f"feature:{needed}",
                        "live deployment needs a feature its table's current definition no longer has",
                        f"feature:{needed}",
                    )
        for row in catalog.rows(RUN_INPUTS.name):
            holder, target = f"run:{row['run_id']}", f"feature_version:{row['version_id']}"
            found = versions.get(row["version_id"])
            if found is None:
                yield holder, target, "no such feature version record", None
            else:
                yield (
                    holder,
                    target,
                    problem_reading(found["storage_path"], row["delta_version"]),
                    found["storage_path"],
                )

    checked, dangling = 0, []
    for holder, target, problem, path in links():
        checked += 1
        if problem is not None:
            event = authorised(path, holder.partition(":")[2]) if path else None
            dangling.append(DanglingLink(holder, target, problem, event))
    return ReconcileReport(checked, dangling)
