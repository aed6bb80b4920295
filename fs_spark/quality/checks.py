"""`FeatureStore.quality`: drift checks recorded in the catalog, alerts sent, versions quarantined.

A check compares the rows one feature version wrote with a baseline: the rows the previous
version wrote, or exactly the rows of a training set (its feature columns, mapped back to the
table's feature names). Each check is recorded (`drift_checks`, `drift_scores`); each breach of a
threshold is an alert (`alerts`) sent to the configured sink; with `quality.quarantine_on_breach`
the version is quarantined, so builds refuse it until it is released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import ALERTS, DRIFT_CHECKS, DRIFT_SCORES
from fs_spark.config import QualitySettings
from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.registry import Registry
from fs_spark.errors import DriftBaselineError, TrainingSetInputExpiredError
from fs_spark.governance.access import AccessControl, Request
from fs_spark.ids import is_id, new_id
from fs_spark.quality.alerts import raise_alerts
from fs_spark.quality.anomalies import Anomaly, judge, profile_versions, profiled
from fs_spark.quality.drift import DriftResult, compare, sampling_bias, schema_drift
from fs_spark.quality.scoreboard import Scoreboard, scoreboard
from fs_spark.storage.layout import VERSION_COLUMN
from fs_spark.storage.reader import load_delta_version, rows_up_to
from fs_spark.versions.series import ROLLBACK, included
from fs_spark.versions.status import quarantined as quarantined_ids


@dataclass(frozen=True)
class AnomalyReport:
    check_id: str
    table: str
    version: FeatureVersion
    anomalies: tuple[Anomaly, ...]
    alert_ids: tuple[str, ...]
    profiled: int  # versions profiled by this check (the others were already)


def _anomaly_alert(check_id: str, anomaly: Anomaly, sink: str) -> dict[str, Any]:
    return {
        "alert_id": new_id(),
        "check_id": check_id,
        "table_name": anomaly.table,
        "version_id": anomaly.version_id,
        "feature": anomaly.feature,
        "metric": f"anomaly_{anomaly.figure}",
        "value": anomaly.score,
        "threshold": anomaly.threshold,
        "baseline": anomaly.baseline,
        "sink": sink,
        "at": datetime.now(UTC),
    }


if TYPE_CHECKING:
    from fs_spark.store import FeatureStore
    from fs_spark.training.builder import TrainingSets


@dataclass(frozen=True)
class DriftReport:
    check_id: str
    table: str
    version: FeatureVersion
    baseline: str  # "version:<id>" or "training_set:<id>"
    result: DriftResult
    alert_ids: tuple[str, ...] = ()
    quarantined: bool = False

    @property
    def breached(self) -> bool:
        return bool(self.result.breaches)

    def feature(self, name: str):
        return next(f for f in self.result.features if f.feature == name)

    def to_text(self) -> str:
        r = self.result
        lines = [
            f"drift of {self.table} #{self.version.version_number} ({self.version.version_id}) against {self.baseline}: "
            f"{r.rows[1]} rows vs {r.rows[0]}; {len(r.breaches)} breach(es)"
        ]
        for f in r.features:
            numbers = " ".join(
                f"{k}={v:.4f}"
                for k, v in (("psi", f.psi), ("ks", f.ks), ("wasserstein", f.wasserstein))
                if v is not None
            )
            extra = f" new={list(f.new_categories)}" if f.new_categories else ""
            flag = f"  BREACH: {', '.join(f.breaches)}" if f.breaches else ""
            lines.append(
                f"  {f.feature:<24} {f.kind:<11} {numbers} nulls={f.null_rate[0]:.3f}->{f.null_rate[1]:.3f}{extra}{flag}"
            )
        if r.schema.any:
            lines.append(
                f"  schema: added {list(r.schema.added)} removed {list(r.schema.removed)} changed {list(r.schema.changed)}"
            )
        if r.sampling:
            s = r.sampling
            lines.append(
                f"  sampling: key coverage {s.key_coverage:.3f}, time coverage {s.time_coverage:.3f}, "
                f"time ks {s.time_ks:.3f}" + (f"  BREACH: {', '.join(s.breaches)}" if s.breaches else "")
            )
        if self.quarantined:
            lines.append("  the version is now quarantined")
        return "\n".join(lines)


class QualityChecks:
    """Drift checks, alerts and the scoreboard of one store.

    Args:
        store: the facade, whose access-checked reads (`read`, `versions`, `training_set`) and
            `quarantine_version` a check goes through, as a user would.
        catalog: where checks, scores and alerts are recorded.
        registry: the definitions each version was written under.
        access: which features the principal may see figures of, and which are sensitive.
        training_sets: manifests of training-set baselines.
        settings: thresholds, the alert sink and whether a breach quarantines.
    """

    def __init__(
        self,
        store: FeatureStore,
        catalog: Catalog,
        registry: Registry,
        access: AccessControl,
        training_sets: TrainingSets,
        settings: QualitySettings,
    ):
        self._store = store
        self._catalog = catalog
        self._registry = registry
        self._access = access
        self._training_sets = training_sets
        self._settings = settings

    def _definition_of(self, version: FeatureVersion) -> FeatureTable:
        """The definition (version and revision) a feature version was written under."""
        return self._registry.at_version(
            version.table_name, version.definition_version, version.definition_revision
        ).definition

    def _features_of(self, version: FeatureVersion) -> DataFrame:
        """Exactly the feature columns of the rows one version wrote."""
        definition = self._registry.at_version(version.table_name, version.definition_version).definition
        frame = self._store.read(version.table_name, version=version.version_id, include_version_column=True)
        return frame.where(F.col(VERSION_COLUMN) == version.version_number).drop(
            VERSION_COLUMN, *definition.keys, definition.event_time
        )

    def _previous(self, version: FeatureVersion) -> FeatureVersion:
        """The version written before it that it holds; for the first of a definition version, the
        last one written under the definition version before (where schema changes show)."""
        every = self._store.versions(version.table_name)
        held = included(every, version) - {version.version_number}
        same = [
            v
            for v in every
            if v.definition_version == version.definition_version and v.version_number in held and v.mode != ROLLBACK
        ]
        if same:
            return same[-1]
        before = [v for v in every if v.definition_version < version.definition_version]
        if before:
            last = before[-1]
            held = included(every, last)
            wrote = [
                v
                for v in before
                if v.definition_version == last.definition_version and v.version_number in held and v.mode != ROLLBACK
            ]
            if wrote:
                return wrote[-1]
        raise DriftBaselineError(
            version.table_name,
            f"version #{version.version_number} has no previous version; pass a training set ID as the baseline",
        )

    def check_drift(
        self,
        table: str,
        *,
        version: int | str | None = None,
        baseline: str = "previous",
        features: list[str] | None = None,
    ) -> DriftReport:
        """Compare the rows `version` wrote with a baseline (default: the latest version that wrote
        rows, so after a rollback the newest write the table holds).

        Args:
            baseline: "previous" (the rows the version before it wrote) or a training set ID
                (exactly its rows; sampling bias is then measured too).
            features: default: every feature of the table.
        """
        with self._store.metrics.measure("drift", table) as measure:
            measure.bytes_are_read = True  # the bytes of a check are what Spark's scans read
            report = self._check_drift(table, version, baseline, features)
            measure.add(rows=sum(report.result.rows))
            measure.tags["breaches"] = str(len(report.result.breaches))
        return report

    def _check_drift(
        self, table: str, version: int | str | None, baseline: str, features: list[str] | None
    ) -> DriftReport:
        store = self._store
        thresholds = self._settings.drift
        current_version = store.version(table, version)
        if current_version is None:
            raise DriftBaselineError(table, "the table has no versions yet")
        if current_version.mode == ROLLBACK and version is None:  # the latest: the newest write it holds
            current_version = self._previous(current_version)
        elif current_version.mode == ROLLBACK:
            newest = self._previous(current_version)
            raise DriftBaselineError(
                table,
                f"version #{current_version.version_number} is a rollback: it wrote no rows; check a version "
                f"that wrote rows (--version {newest.version_number}, the newest write it holds)",
            )
        written_under = self._definition_of(current_version)
        names = features or [
            f.name for f in self._registry.at_version(table, current_version.definition_version).definition.features
        ]
        current = self._features_of(current_version)
        if baseline == "previous":
            earlier = self._previous(current_version)
            base, baseline_key = self._features_of(earlier), f"version:{earlier.version_id}"
            rows, base_definition = (earlier.row_count, current_version.row_count), self._definition_of(earlier)
        elif is_id(baseline):
            base, sample, population, lookup = self._training_set_side(table, baseline)
            baseline_key = f"training_set:{baseline}"
            rows = (self._training_sets.manifest(baseline).row_count, current_version.row_count)
            names = [n for n in names if n in base.columns]
            current = current.select(*[c for c in base.columns if c in current.columns])
            read = self._catalog.version(lookup.version_id) if lookup.version_id else None
            base_definition = self._definition_of(read) if read else written_under
        else:
            raise DriftBaselineError(table, f"baseline must be 'previous' or a training set ID, not {baseline!r}")
        result = compare(base, current, names, thresholds, schema_drift(base_definition, written_under), rows)
        if baseline != "previous":
            sampling = sampling_bias(sample, population, list(lookup.keys), lookup.event_time, thresholds)
            result = DriftResult(
                result.features,
                result.schema,
                result.rows,
                sampling,
                result.breaches
                + [("", b, getattr(sampling, b), getattr(thresholds, f"min_{b}")) for b in sampling.breaches],
            )
        return self._record(table, current_version, baseline_key, result)

    def _training_set_side(self, table: str, training_set_id: str):
        store = self._store
        manifest = self._training_sets.manifest(training_set_id)
        lookups = [lk for lk in manifest.lookups if lk.table_name == table]
        if not lookups:
            raise DriftBaselineError(table, f"training set {training_set_id} reads no feature of it")
        lookup = lookups[0]
        rows = store.training_set(training_set_id).load_df()
        base = rows.select(*[F.col(f.output).alias(f.name) for f in lookup.features])
        entities = load_delta_version(
            store.spark,
            manifest.entity_path,
            manifest.entity_delta_version,
            lambda detail: TrainingSetInputExpiredError(
                training_set_id, "entity rows", manifest.entity_delta_version, detail
            ),
        )
        sample = entities.select(
            *[F.col(e).alias(k) for e, k in zip(lookup.entity_keys, lookup.keys, strict=True)],
            F.col(lookup.entity_time).cast("timestamp").alias(lookup.event_time),
        )
        if lookup.delta_version is None:
            raise DriftBaselineError(table, f"training set {training_set_id} was built before the table had rows")
        population = rows_up_to(
            load_delta_version(
                store.spark,
                lookup.storage_path,
                lookup.delta_version,
                lambda detail: TrainingSetInputExpiredError(training_set_id, table, lookup.delta_version, detail),
            ),
            lookup.version_number,
            lookup.excluded_versions,
        )
        return base, sample, population, lookup

    def _record(self, table: str, version: FeatureVersion, baseline: str, result: DriftResult) -> DriftReport:
        store = self._store
        settings = self._settings
        check_id, at = new_id(), datetime.now(UTC)
        s = result.sampling
        self._catalog.append(
            DRIFT_CHECKS,
            [
                {
                    "check_id": check_id,
                    "table_name": table,
                    "version_id": version.version_id,
                    "version_number": version.version_number,
                    "baseline": baseline,
                    "baseline_rows": result.rows[0],
                    "rows": result.rows[1],
                    "schema_changes": [
                        *(f"added {c}" for c in result.schema.added),
                        *(f"removed {c}" for c in result.schema.removed),
                        *(f"changed {c}" for c in result.schema.changed),
                    ],
                    "key_coverage": s.key_coverage if s else None,
                    "time_coverage": s.time_coverage if s else None,
                    "time_ks": s.time_ks if s else None,
                    "breaches": len(result.breaches),
                    "user": store.user,
                    "at": at,
                }
            ],
        )
        # Category values are values of the feature: none are kept for features tagged sensitive.
        sensitive = set(self._registry.current(table).definition.tagged(self._access.sensitive_tags))
        self._catalog.append(
            DRIFT_SCORES,
            [
                {
                    "check_id": check_id,
                    "table_name": table,
                    "version_id": version.version_id,
                    "feature": f.feature,
                    "kind": f.kind,
                    "psi": f.psi,
                    "ks": f.ks,
                    "wasserstein": f.wasserstein,
                    "null_rate_baseline": f.null_rate[0],
                    "null_rate": f.null_rate[1],
                    "nan_rate_baseline": f.nan_rate[0],
                    "nan_rate": f.nan_rate[1],
                    "new_categories": [] if f.feature in sensitive else list(f.new_categories),
                    "missing_categories": [] if f.feature in sensitive else list(f.missing_categories),
                    "breaches": list(f.breaches),
                    "at": at,
                }
                for f in result.features
            ],
        )
        alerts: list[dict[str, Any]] = [
            {
                "alert_id": new_id(),
                "check_id": check_id,
                "table_name": table,
                "version_id": version.version_id,
                "feature": feature,
                "metric": metric,
                "value": float(value),
                "threshold": float(limit),
                "baseline": baseline,
                "sink": settings.alerts.kind,
                "at": at,
            }
            for feature, metric, value, limit in result.breaches
        ]
        raise_alerts(self._catalog, settings.alerts, alerts)
        quarantined = False
        if alerts and settings.quarantine_on_breach:
            reasons = ", ".join(sorted({f"{a['feature'] or table}:{a['metric']}" for a in alerts}))
            store.quarantine_version(table, version.version_id, f"drift check {check_id}: {reasons}")
            quarantined = True
        return DriftReport(
            check_id, table, version, baseline, result, tuple(a["alert_id"] for a in alerts), quarantined
        )

    def check_anomalies(self, table: str, *, version: int | str | None = None) -> AnomalyReport:
        """Judge `version` (default: the latest) against the versions written before it: its row
        count, and each feature's null rate, mean and quantiles (see `fs_spark.quality.anomalies`).
        Versions not profiled yet are profiled first, in one Spark job; each anomaly is an alert.

        Example:
            >>> report = store.quality.check_anomalies("customer_activity")  # doctest: +SKIP
            >>> [(a.feature, a.figure, round(a.score, 1)) for a in report.anomalies]  # doctest: +SKIP
            [('spend_7d', 'mean', 41.3)]
        """
        with self._store.metrics.measure("anomalies", table) as measure:
            self._access.require(Request("read", table))
            settings = self._settings.anomalies
            target = self._store.version(table, version)
            if target is None:
                raise DriftBaselineError(table, "the table has no versions yet")
            held_back = set(quarantined_ids(self._catalog))
            history = [
                v
                for v in sorted(self._store.versions(table), key=lambda v: (v.committed_at, v.version_number))
                if v.mode != ROLLBACK
                and v.committed_at <= target.committed_at
                and (v.version_id not in held_back or v.version_id == target.version_id)
            ]
            history = history[-(settings.window * (settings.season_versions or 1) + 1) :]
            profiles = profiled(self._catalog, table)
            missing = [v for v in history if v.version_id not in profiles]
            for definition_version in sorted({v.definition_version for v in missing}):
                definition = self._registry.at_version(table, definition_version).definition
                under = [v for v in missing if v.definition_version == definition_version]
                withheld = set(definition.tagged(self._access.sensitive_tags))
                profile_versions(self._store.spark, self._catalog, definition, under, withheld)
            if missing:
                profiles = profiled(self._catalog, table)
            found = judge(table, history, profiles, target, settings) if target.version_id in profiles else []
            check_id = new_id()
            alerts = [_anomaly_alert(check_id, a, self._settings.alerts.kind) for a in found]
            raise_alerts(self._catalog, self._settings.alerts, alerts)
            measure.add(rows=target.row_count)
            measure.tags["anomalies"] = str(len(found))
        return AnomalyReport(check_id, table, target, tuple(found), tuple(a["alert_id"] for a in alerts), len(missing))

    def scoreboard(self, table: str | None = None) -> Scoreboard:
        """Per table and version: rule failures, quarantined rows, drift scores, alerts, status."""
        return scoreboard(self._catalog, table, self._hidden)

    def _hidden(self, table: str) -> set[str]:
        """The features of `table` whose figures this principal may not see."""
        definition = self._registry.current(table).definition
        return set(definition.feature_names) - self._access.readable(definition)

    def alerts(self, table: str | None = None) -> list[dict]:
        rows = [r for r in self._catalog.rows(ALERTS.name) if table is None or r["table_name"] == table]
        tables = set(self._catalog.current_definitions())  # store-level alerts (lineage, lag) name no feature table
        hidden = {name: self._hidden(name) for name in {r["table_name"] for r in rows} if name in tables}
        # An anomaly's baseline text carries the feature's median and value: withheld with the figures.
        shown = [
            {**r, "value": None, "threshold": None, "baseline": None}
            if r["feature"] in hidden.get(r["table_name"], ())
            else r
            for r in rows
        ]
        return sorted(shown, key=lambda r: r["alert_id"])
