"""The online half of one store: materialization runs, the online state kept in step with
quarantine, rollback and deprecation, and the reader.

A materialization: plan from the catalog and the store's state (`state.plan`), write the
vectors from the executors (`materialize`), then set the table's state (watermark, withheld
versions, retired features, a new generation) in one step, then record it in the catalog and
the lineage. Killed before the state is set, a re-run does the same work again (every write is
idempotent) and readers meanwhile see, per key, a whole vector of a served version.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import MATERIALIZATIONS
from fs_spark.config import OnlineSettings
from fs_spark.definitions.registry import Applied, Registry
from fs_spark.errors import FsSparkError
from fs_spark.governance.access import AccessControl, Request
from fs_spark.governance.deprecation import Deprecations
from fs_spark.ids import new_id
from fs_spark.lineage.openlineage import LineageEvents
from fs_spark.online.base import OnlineStoreError
from fs_spark.online.cache import VectorCache
from fs_spark.online.factory import OnlineStoreSpec, online_store_spec, spec_named
from fs_spark.online.materialize import FEW_ROWS, Written, refresh_keys, write_few, write_latest
from fs_spark.online.reader import OnlineReader
from fs_spark.online.state import (
    TableState,
    plan,
    retired_features,
    served_version,
    state_name,
    withheld_versions,
)
from fs_spark.provenance import RunRef
from fs_spark.session import SessionSource
from fs_spark.storage.delta_log import added_files, latest_version
from fs_spark.storage.layout import VERSION_COLUMN, data_columns
from fs_spark.storage.paths import StorePaths
from fs_spark.storage.reader import missing_files, read_version, readable_delta_version
from fs_spark.versions.resolver import VersionResolver
from fs_spark.versions.series import excluded, included
from fs_spark.versions.status import quarantined


@dataclass(frozen=True)
class Materialization:
    """What one materialization did and what the online store serves after it."""

    materialization_id: str
    table_name: str
    kind: str
    version_number: int | None
    version_id: str | None
    keys_written: int
    keys_removed: int
    withheld_versions: tuple[int, ...]
    online_store: str
    bytes_sent: int = 0  # keys and values sent to the online store, encoded


class OnlineServing:
    def __init__(
        self,
        session: SessionSource,
        paths: StorePaths,
        catalog: Catalog,
        registry: Registry,
        versions: VersionResolver,
        access: AccessControl,
        deprecations: Deprecations,
        events: LineageEvents,
        settings: OnlineSettings,
        user: str,
        table_lock: Callable[[str], AbstractContextManager[None]],
        fetched: Callable[[int], None] | None = None,
    ):
        self._session = session
        self._paths = paths
        self._catalog = catalog
        self._registry = registry
        self._versions = versions
        self._access = access
        self._deprecations = deprecations
        self._events = events
        self.settings = settings
        self._user = user
        # One lock per table's online state: a materialization and a quarantine's withholding
        # never interleave, so neither overwrites the other's withheld versions.
        self._table_lock = table_lock
        self._fetched = fetched  # told the bytes each online read fetched from the store
        self._reader: OnlineReader | None = None

    @property
    def spec(self) -> OnlineStoreSpec:
        return online_store_spec(self.settings, self._paths)

    # --- materializing ------------------------------------------------------------------------------

    def materialize(self, table: str, run: RunRef | None = None) -> Materialization:
        self._access.require(Request("admin", table))
        spec = self.spec
        started = datetime.now(UTC)
        with self._table_lock(table), spec.open() as store:
            applied = self._registry.current(table)
            definition = applied.definition
            every = self._catalog.versions(table)
            served = served_version(every, table, definition.definition_version, quarantined(self._catalog))
            state = TableState.from_bytes(store.state([state_name(table)])[0])
            todo = plan(every, definition, applied.revision, served, state)
            done = Written(0, 0, 0)
            inputs = []
            if todo.kind != "none":
                frame, delta_version = self._served_rows(table, served, every)
                inputs.append((applied.storage_path, delta_version))
            with self._events.job(f"materialize.{table}", run=run, inputs=inputs) as job:
                if todo.kind == "full":
                    done = write_latest(frame, definition, applied.revision, spec, newer_only=False)
                elif todo.kind == "incremental":
                    few = self._few_written(applied, every, todo.versions)
                    if few is not None:
                        done = write_few(few, definition, applied.revision, spec)
                    else:
                        changed = frame.where(F.col(VERSION_COLUMN).isin(sorted(todo.versions)))
                        done = write_latest(changed, definition, applied.revision, spec, newer_only=True)
                elif todo.kind == "refresh":
                    touched = self._rows_of(table, every, todo.versions)
                    done = refresh_keys(frame, touched, definition, applied.revision, spec)
                withheld = withheld_versions(every, served, table, definition.definition_version)
                new_state = state.changed(
                    definition_version=definition.definition_version,
                    revision=applied.revision,
                    watermark=served.version_number if served is not None else 0,
                    withheld=withheld,
                    retired=retired_features(table, self._deprecations.in_force()),
                    materialized_at=datetime.now(UTC).isoformat(),
                )
                store.write([], state={state_name(table): new_state.to_bytes()})
                job.output(f"{spec.name}/{table}", None, {"fs_spark.online_store": spec.name})
        supplying = (
            sorted(v.version_id for v in every if v.version_number in todo.versions)
            if todo.kind in ("incremental", "refresh")
            else [v.version_id for v in every if served is not None and v.version_number in included(every, served)]
            if todo.kind == "full"
            else []
        )
        record = Materialization(
            new_id(),
            table,
            todo.kind,
            served.version_number if served else None,
            served.version_id if served else None,
            done.keys,
            done.removed,
            tuple(sorted(withheld)),
            spec.name,
            done.bytes,
        )
        self._catalog.append(
            MATERIALIZATIONS,
            [
                {
                    "materialization_id": record.materialization_id,
                    "table_name": table,
                    "definition_version": definition.definition_version,
                    "version_id": record.version_id,
                    "version_number": record.version_number,
                    "supplying_version_ids": supplying,
                    "withheld_versions": [str(n) for n in record.withheld_versions],
                    "online_store": spec.name,
                    "kind": todo.kind,
                    "keys_written": done.keys,
                    "keys_removed": done.removed,
                    "run_id": run.run_id if run else None,
                    "user": self._user,
                    "started_at": started,
                    "at": datetime.now(UTC),
                }
            ],
        )
        if self._reader is not None:
            self._reader.refresh()
        return record

    def _served_rows(
        self, table: str, served: FeatureVersion | None, every: list[FeatureVersion]
    ) -> tuple[DataFrame, int]:
        """The rows `served` holds, with `_fs_version` (none: an empty frame of the table)."""
        spark = self._session()
        resolved, following = self._versions.resolve(table, served.version_id) if served else (None, None)
        applied = self._registry.current(table)
        delta_version = readable_delta_version(
            applied.storage_path, resolved, following, partial(latest_version, spark)
        )
        frame = read_version(
            spark,
            applied.definition,
            resolved,
            delta_version,
            applied.storage_path,
            None,
            True,
            excluded(every, resolved),
        )
        return frame, delta_version

    def _few_written(self, applied: Applied, every: list[FeatureVersion], numbers: frozenset[int]) -> DataFrame | None:
        """The rows the writes `numbers` made, when they are few (a stream's micro-batches):
        read as Parquet from the files their Delta commits added, which skips planning a Delta
        snapshot (two thirds of a small incremental run). None when they are many, or a file
        is gone (compacted, then vacuumed): then the caller reads the table's snapshot."""
        new = [v for v in every if v.version_number in numbers and v.storage_path == applied.storage_path]
        if len(new) != len(numbers) or sum(v.row_count or 0 for v in new) > FEW_ROWS:
            return None
        spark = self._session()
        files = [f for v in new for f in added_files(spark, v.storage_path, v.delta_version)]
        if not files or missing_files(spark, files):
            return None
        schema = T.StructType([T.StructField(n, t) for n, t in data_columns(applied.definition)])
        rows = spark.read.schema(schema).parquet(*files)
        return rows.where(F.col(VERSION_COLUMN).isin(sorted(numbers)))

    def _rows_of(self, table: str, every: list[FeatureVersion], numbers: frozenset[int]) -> DataFrame:
        """Every row the writes `numbers` wrote, whether served or not (to find their keys)."""
        spark = self._session()
        applied = self._registry.current(table)
        own = [v for v in every if v.definition_version == applied.definition.definition_version]
        latest = max(own, key=lambda v: v.version_number)
        resolved, following = self._versions.resolve(table, latest.version_id)
        delta_version = readable_delta_version(
            applied.storage_path, resolved, following, partial(latest_version, spark)
        )
        frame = read_version(spark, applied.definition, resolved, delta_version, applied.storage_path, None, True, ())
        return frame.where(F.col(VERSION_COLUMN).isin(sorted(numbers)))

    # --- keeping the state in step ------------------------------------------------------------------

    def stores_of(self, table: str) -> list[OnlineStoreSpec]:
        """Every online store that may serve `table`: each one the catalog records a
        materialization of it into, whichever process's settings made it, and this process's
        embedded store if it exists (which also covers a run killed before its catalog record)."""
        try:
            configured: OnlineStoreSpec | None = self.spec
        except FsSparkError:  # an embedded store on a root that is not local: none here
            configured = None
        found: dict[str, OnlineStoreSpec] = {}
        if configured is not None and configured.kind == "embedded":
            found[configured.name] = configured
        for row in self._catalog.rows(MATERIALIZATIONS.name):
            name = row["table_name"] == table and row["online_store"]
            if name and name not in found:
                if configured is not None and configured.name == name:
                    found[name] = configured
                else:
                    found[name] = spec_named(name, self.settings.timeout_seconds)
        return [spec for spec in found.values() if spec.exists()]

    def check_reachable(self, table: str, what: str) -> None:
        """Refuse `what` (before it is recorded) when an online store serving `table` cannot be
        reached: its values could not be withheld there."""
        for spec in self.stores_of(table):
            try:
                with spec.open() as store:
                    store.state([state_name(table)])
            except OnlineStoreError as error:
                raise OnlineStoreError(
                    spec.name, f"{what} is refused (nothing recorded): reaching it, as it serves {table},", error
                ) from None

    def sync(self, table: str, because: str) -> None:
        """After a quarantine, release, rollback or deprecation: in every online store serving
        the table, withhold the versions no longer served and refuse retired features, at once,
        without moving data (the next materialization restores the served version's values)."""
        failed: list[tuple[str, OnlineStoreError]] = []
        for spec in self.stores_of(table):
            try:
                self._sync_one(spec, table)
            except OnlineStoreError as error:
                failed.append((spec.name, error))
        if self._reader is not None:
            self._reader.refresh()
        if failed:
            name, cause = failed[0]
            raise OnlineStoreError(name, f"{because} is recorded, but withholding its values online", cause)

    def _sync_one(self, spec: OnlineStoreSpec, table: str) -> None:
        with self._table_lock(table), spec.open() as store:
            state = TableState.from_bytes(store.state([state_name(table)])[0])
            if state.definition_version is None:
                return
            every = self._catalog.versions(table)
            dv = state.definition_version
            served = served_version(every, table, dv, quarantined(self._catalog))
            changed = state.changed(
                withheld=withheld_versions(every, served, table, dv),
                retired=retired_features(table, self._deprecations.in_force()),
            )
            store.write([], state={state_name(table): changed.to_bytes()})

    # --- reading ----------------------------------------------------------------------------------

    def reader(self) -> OnlineReader:
        if self._reader is None:
            spec = self.spec
            cache = self.settings.cache
            self._reader = OnlineReader(
                spec.open(),
                spec.name,
                lambda name, dv, revision: self._registry.at_version(name, dv, revision).definition,
                self._registry.current,
                self._access,
                VectorCache(cache.max_entries, cache.ttl_seconds) if cache.enabled else None,
                cache.check_interval_ms,
                self.settings.server.max_entities,
                cache.definition_check_seconds,
                fetched=self._fetched,
            )
        return self._reader
