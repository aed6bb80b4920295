"""Applying definitions: plan what would change, refuse what would break readers, record the rest.

A compatible change is a new revision of the same definition version (added nullable features
become new Delta columns, widened types are widened in place). A breaking change is refused
unless the definition says `definition_version: <current + 1>`, which starts a new Delta table,
so readers of the old version keep reading exactly what they read before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from delta.tables import DeltaTable

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import FEATURE_TABLES
from fs_spark.definitions.compatibility import Change, diff
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import BreakingChangeError, DefinitionError, TableNotFoundError
from fs_spark.governance.access import AccessControl, Request
from fs_spark.ids import new_id
from fs_spark.session import SessionSource
from fs_spark.storage.layout import create_table, kept_stats_columns, set_stats_columns, stats_columns
from fs_spark.storage.paths import StorePaths, sql_path
from fs_spark.store_part import StorePart


@dataclass(frozen=True)
class PlanItem:
    """What applying one definition does: create, update, new_version, unchanged or refused."""

    table: str
    action: str
    definition_version: int
    revision: int
    changes: list[Change] = field(default_factory=list)
    reason: str = ""
    impact: list[str] = field(default_factory=list)  # model versions and deployments reading what breaks

    def __str__(self) -> str:
        head = f"{self.action:<11} {self.table} v{self.definition_version} r{self.revision}"
        body = "".join(f"\n    {'!' if c.breaking else '~'} {c}" for c in self.changes)
        reads = "".join(f"\n    read by {what}" for what in self.impact)
        return head + (f"  ({self.reason})" if self.reason else "") + body + reads


@dataclass(frozen=True)
class Applied:
    definition: FeatureTable
    revision: int
    storage_path: str


class Registry(StorePart):
    """The definitions of a store: what is applied, at every version and revision, and applying
    more. Applying needs `admin` on each table, checked here, where the change happens."""

    def __init__(
        self,
        session: SessionSource,
        paths: StorePaths,
        catalog: Catalog,
        user: str,
        access: AccessControl,
    ):
        super().__init__(session, paths, catalog, user)
        self._access = access
        self._parsed: dict[str, Applied] = {}

    def current(self, name: str) -> Applied:
        rows = self.catalog.definition_rows(name)
        if not rows:
            raise TableNotFoundError(name, list(self.catalog.current_definitions()))
        return self._applied(rows[-1])

    def at_version(self, name: str, definition_version: int, revision: int | None = None) -> Applied:
        """The definition version's latest revision, or the revision given (the one a feature
        version was written under)."""
        rows = [
            r
            for r in self.catalog.definition_rows(name)
            if r["definition_version"] == definition_version and (revision is None or r["revision"] == revision)
        ]
        if not rows:
            label = f"{name} v{definition_version}" + (f" r{revision}" if revision is not None else "")
            raise TableNotFoundError(label, list(self.catalog.current_definitions()))
        return self._applied(rows[-1])

    def _applied(self, row) -> Applied:
        """The definition a catalog row holds, parsed once per row (rows never change)."""
        found = self._parsed.get(row["event_id"])
        if found is None:
            table = FeatureTable.model_validate(json.loads(row["definition_json"]))
            found = self._parsed[row["event_id"]] = Applied(table, row["revision"], row["storage_path"])
        return found

    def names(self) -> list[str]:
        return sorted(self.catalog.current_definitions())

    def plan(self, tables: list[FeatureTable]) -> list[PlanItem]:
        current = self.catalog.current_definitions()
        return [self._plan_one(t, current.get(t.name)) for t in tables]

    def _plan_one(self, table: FeatureTable, row) -> PlanItem:
        if row is None:
            return PlanItem(table.name, "create", table.definition_version, 1)
        old = self._applied(row).definition
        changes = diff(old, table)
        breaking = [c for c in changes if c.breaking]
        version, revision = old.definition_version, row["revision"]
        if table.definition_version == version + 1:
            return PlanItem(table.name, "new_version", version + 1, 1, changes)
        if table.definition_version != version:
            return PlanItem(
                table.name,
                "refused",
                table.definition_version,
                0,
                changes,
                f"definition_version must stay {version} or become {version + 1}",
            )
        if breaking:
            return PlanItem(
                table.name,
                "refused",
                version,
                revision,
                changes,
                f"breaking change; publish it as definition_version {version + 1}",
            )
        if not changes:
            return PlanItem(table.name, "unchanged", version, revision)
        return PlanItem(table.name, "update", version, revision + 1, changes)

    def apply(
        self, tables: list[FeatureTable], impact: Callable[[PlanItem, FeatureTable], PlanItem] | None = None
    ) -> list[PlanItem]:
        """Apply definitions; refuses the whole call, changing nothing, if any one is refused.
        `impact` adds to a plan item what a breaking change would break, for the refusal."""
        self._access.require(*(Request("admin", t.name, definition=t) for t in tables))
        plan = self.plan(tables)
        if impact is not None:
            plan = [impact(item, table) for item, table in zip(plan, tables, strict=True)]
        for item, table in zip(plan, tables, strict=True):
            if item.action == "refused":
                if item.definition_version != table.definition_version or not item.changes:
                    raise DefinitionError(table.name, item.reason)
                current = self.catalog.current_definitions()[table.name]["definition_version"]
                raise BreakingChangeError(
                    table.name, current, [str(c) for c in item.changes if c.breaking], item.impact
                )
        rows = []
        for item, table in zip(plan, tables, strict=True):
            if item.action == "unchanged":
                continue
            with self.lock(table.name):
                path = self.paths.table(table.name, table.definition_version)
                if item.action in ("create", "new_version"):
                    create_table(self.spark, path, table, self._access.sensitive_tags)
                else:
                    self._evolve(path, table, item.changes)
            rows.append(
                {
                    "event_id": new_id(),
                    "table_name": table.name,
                    "definition_version": item.definition_version,
                    "revision": item.revision,
                    "change_kind": item.action,
                    "changes": [str(c) for c in item.changes],
                    "definition_json": table.canonical_json(),
                    "definition_hash": table.definition_hash(),
                    "storage_path": path,
                    "applied_by": self.user,
                    "applied_at": datetime.now(UTC),
                }
            )
        self.catalog.append(FEATURE_TABLES, rows)
        return plan

    def _evolve(self, path: str, table: FeatureTable, changes: list[Change]) -> None:
        """Carry compatible changes into the Delta table: new columns, widened types."""
        target = sql_path(path)
        for change in changes:
            if change.kind == "add_feature":
                dtype = table.feature(change.subject).dtype.spark_type.simpleString()
                self.spark.sql(f"ALTER TABLE {target} ADD COLUMNS ({change.subject} {dtype})")
            elif change.kind == "widen_type":
                dtype = table.feature(change.subject).dtype.spark_type.simpleString()
                self.spark.sql(f"ALTER TABLE {target} ALTER COLUMN {change.subject} TYPE {dtype}")
        if any(change.kind == "change_tags" for change in changes):  # which features keep no statistics
            set_stats_columns(self.spark, path, stats_columns(table, self._access.sensitive_tags))
            quarantine = self.paths.quarantine(table.name, table.definition_version)
            if DeltaTable.isDeltaTable(self.spark, quarantine):  # its bad rows' statistics too
                held = self.spark.read.format("delta").load(quarantine).schema
                withheld = table.tagged(self._access.sensitive_tags)
                set_stats_columns(self.spark, quarantine, kept_stats_columns(held, withheld))
