"""Replicating a store from its home region to another: data first, then the catalog.

One pass: (1) note the home catalog's version of each catalog table; (2) copy every Delta table
those rows name (feature tables, quarantine tables, training sets under the root) in commit
order, each to its newest commit (`delta_copy`); (3) append to the replica's catalog the rows
the home catalog gained since the last pass, up to the versions noted in (1). A catalog row
therefore reaches a replica only after the data it names, and readers there, who find versions
through the catalog, read at the replica's watermark. Rollbacks, quarantines and releases are
catalog rows, so they replicate as the events they are, in the order they happened.

The catalog is copied row by row, not file by file, because a replica's catalog also holds
rows of its own (the versions of tables resident there) and because two things change on the
way: paths under the home root are rewritten to the replica's root, and rows of a table the
residency policy keeps out of the destination are left behind (each decision audited). Rows
the replica already holds (the same row, after a promotion reversed the direction) are skipped.

Residency holds for what is derived from a kept-out table too: a training set that looks up
any of its features (its Delta table holds the values, its log their statistics) stays home
with its catalog row, and so does every row that names the table, one of its versions or such
a training set in any column, alone or as `kind:id` or `table:feature` (quarantine events,
profiles, drift scores and alerts, exports, materializations, scorings and their prediction
tables, model versions trained on it and their deployments, lineage edges, audit decisions).
Prediction tables, exports and online stores are never copied: only the Delta tables the
catalog names as feature, quarantine and training-set tables are.

A pass holds the replica's `replicate` lock: two passes at once would both find the same rows
missing and append them twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fs_spark.catalog.catalog import Catalog, Row
from fs_spark.catalog.schema import (
    ALL_TABLES,
    FEATURE_TABLES,
    FEATURE_VERSIONS,
    METRICS,
    QUARANTINE_EVENTS,
    TRAINING_SETS,
)
from fs_spark.replication.delta_copy import (
    WATERMARKS,
    TableCopy,
    commit_versions,
    read_watermark,
    replicate_table,
)
from fs_spark.replication.objects import Objects


@dataclass(frozen=True)
class ReplicationResult:
    """What one pass copied to one region."""

    region: str
    tables: tuple[TableCopy, ...]
    catalog_rows: int
    skipped_tables: tuple[str, ...]  # kept out by residency
    seconds: float

    @property
    def files(self) -> int:
        return sum(t.files for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)


@dataclass(frozen=True)
class TableLag:
    """How far one table of a replica is behind its home."""

    table: str
    home_version: int | None
    replica_version: int | None
    versions_behind: int
    seconds_behind: float  # since the oldest commit the replica lacks was made; 0 when none


def digest(row: Row) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


# Each region records its own operations: the `metrics` table is not copied.
REPLICATED = tuple(t for t in ALL_TABLES if t is not METRICS)
_SEPARATORS = re.compile(r":|->")  # table:feature, kind:id, table->region


class Replicator:
    """Copies one store (`home`) to one replica root.

    Args:
        home_catalog, home: the home region's catalog and objects.
        replica_catalog, replica: the replica's.
        region: the replica's region name.
        keeps_out: the tables residency keeps out of `region` (checked and audited by the caller).
    """

    def __init__(
        self,
        home_catalog: Catalog,
        home: Objects,
        replica_catalog: Catalog,
        replica: Objects,
        region: str,
        keeps_out: Callable[..., set[str]],
    ):
        self.home_catalog = home_catalog
        self.home = home
        self.replica_catalog = replica_catalog
        self.replica = replica
        self.region = region
        self._keeps_out = keeps_out

    def _relative(self, path: str) -> str | None:
        """A path under the home root, relative to it; None for a path elsewhere."""
        root = self.home.root.rstrip("/") + "/"
        return path[len(root) :] if path.startswith(root) else None

    def _derived(self, snapshot: Mapping[str, int | None], kept_out: set[str]) -> set[str]:
        """The IDs that carry or name a kept-out table's values: the table names, their versions,
        and the training sets that look up any of their features."""
        ids = set(kept_out)
        for row in self._rows(FEATURE_VERSIONS.name, snapshot[FEATURE_VERSIONS.name]):
            if row["table_name"] in kept_out:
                ids.add(row["version_id"])
        for row in self._rows(TRAINING_SETS.name, snapshot[TRAINING_SETS.name]):
            tables = {lookup["table_name"] for lookup in json.loads(row["lookups_json"] or "[]")}
            if tables & kept_out:
                ids.add(row["training_set_id"])
        return ids

    @staticmethod
    def _stays_home(row: Row, derived: set[str]) -> bool:
        """Whether any value of the row, or any list item, names something in `derived`."""
        for value in row.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and (item in derived or derived.intersection(_SEPARATORS.split(item))):
                    return True
        return False

    def _data_tables(self, snapshot: Mapping[str, int | None], kept_out: set[str], derived: set[str]) -> list[str]:
        """The Delta tables the noted catalog names, under the home root, residents and what is
        derived from them left out."""
        found: list[str] = []
        rows = lambda table: self._rows(table.name, snapshot[table.name])  # noqa: E731
        for row in rows(FEATURE_TABLES):
            if row["table_name"] not in kept_out:
                found.append(self._relative(row["storage_path"]) or "")
        for row in rows(QUARANTINE_EVENTS):
            if row["table_name"] not in kept_out:
                found.append(self._relative(row["quarantine_path"]) or "")
        for row in rows(TRAINING_SETS):
            if row["training_set_id"] not in derived:
                found += [self._relative(row[c]) or "" for c in ("entity_path", "output_path") if row.get(c)]
        return sorted({t for t in found if t})

    def _rows(self, name: str, version: int | None) -> list[Row]:
        return self.home_catalog.rows_at(name, version) if version else []

    def replicate(self) -> ReplicationResult:
        with self.replica_catalog.locks.hold("replicate"):
            return self._pass()

    def _pass(self) -> ReplicationResult:
        began = time.monotonic()
        snapshot = {t.name: self.home_catalog.latest_version(t.name) for t in REPLICATED}
        names = sorted({r["table_name"] for r in self._rows(FEATURE_TABLES.name, snapshot[FEATURE_TABLES.name])})
        kept_out = set(self._keeps_out(names))
        derived = self._derived(snapshot, kept_out)
        tables = self._data_tables(snapshot, kept_out, derived)
        copies = tuple(replicate_table(self.home, self.replica, t) for t in tables)
        appended = sum(self._replicate_rows(t.name, snapshot[t.name], derived) for t in REPLICATED)
        return ReplicationResult(self.region, copies, appended, tuple(sorted(kept_out)), time.monotonic() - began)

    def _rows_mark(self, name: str) -> str:
        return f"{WATERMARKS}/_catalog/{name}.json"

    def _replicate_rows(self, name: str, version: int | None, derived: set[str]) -> int:
        """Append the rows of catalog table `name` added at home since the last pass."""
        mark = self._rows_mark(name)
        done = json.loads(self.replica.read(mark)) if self.replica.size(mark) is not None else {"rows": 0}
        if not version or done.get("home_version") == version:  # empty, or unchanged since the last pass
            return 0
        rows = self._rows(name, version)
        new = [r for r in rows[done["rows"] :] if not self._stays_home(r, derived)]
        if new:
            held = {digest(r) for r in self.replica_catalog.rows(name)}
            moved = [self.moved(r) for r in new]
            fresh = [r for r in moved if digest(r) not in held]
            spec = next(t for t in REPLICATED if t.name == name)
            self.replica_catalog.append(spec, fresh)
        else:
            fresh = []
        record = {"home_version": version, "rows": len(rows), "at": datetime.now(UTC).isoformat()}
        self.replica.write(mark, json.dumps(record).encode())
        return len(fresh)

    def moved(self, row: Row) -> Row:
        """The row with every path under the home root rewritten under the replica's root."""
        home, replica = self.home.root.rstrip("/") + "/", self.replica.root.rstrip("/") + "/"

        def move(value: Any) -> Any:
            if isinstance(value, str) and value.startswith(home):
                return replica + value[len(home) :]
            if isinstance(value, list):
                return [move(v) for v in value]
            return value

        return {k: move(v) for k, v in row.items()}

    def data_tables(self) -> list[str]:
        """The Delta tables a pass would copy now (residents of other regions left out)."""
        snapshot = {t.name: self.home_catalog.latest_version(t.name) for t in REPLICATED}
        kept_out = self.kept_out()
        return self._data_tables(snapshot, kept_out, self._derived(snapshot, kept_out))

    def kept_out(self) -> set[str]:
        """The feature tables residency keeps out of the replica (not audited: only asked)."""
        names = {r["table_name"] for r in self.home_catalog.rows(FEATURE_TABLES.name)}
        return set(self._keeps_out(sorted(names), audit=False))

    def lag(self) -> list[TableLag]:
        """Each table's distance from home: commits the replica lacks, and for how long."""
        out = []
        for table in self.data_tables():
            mark = read_watermark(self.replica, table)
            missing, _ = commit_versions(self.home, table, mark)
            seconds = 0.0
            if missing:
                text = self.home.read(f"{table}/_delta_log/{missing[0]:020d}.json").decode()
                info: dict[str, Any] = next(
                    (json.loads(x)["commitInfo"] for x in text.splitlines() if '"commitInfo"' in x), {}
                )
                seconds = max(0.0, time.time() - info.get("timestamp", time.time() * 1000) / 1000)
            out.append(TableLag(table, missing[-1] if missing else mark, mark, len(missing), seconds))
        return out
