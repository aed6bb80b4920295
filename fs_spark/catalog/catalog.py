"""Reading and appending catalog rows.

Every append is one Delta commit under the catalog lock (see `fs_spark.locks`): concurrent
writers, threads, processes or hosts, only ever append, so nothing they write is lost. On a
local or S3 store, appends and reads go through delta-rs (`fs_spark.catalog.files`), a commit or
a read in milliseconds; a Spark job for a one-row commit cost about 0.3 s locally and 0.4 s on
S3, paid by every write, build and audited request. The tables themselves are created by
Spark, with their column comments.

Most catalog tables are small, and the library asks them many questions per operation, so each
table's rows are held in memory keyed by the table's Delta version: a question costs a listing
of the Delta log, and a read only when another writer has committed since. The tables that gain a
row with every operation or micro-batch (`metrics`, `stream_progress`) are asked by `select`
instead, which reads only the columns and row groups a question needs.

One commit per row would leave a table of thousands of one-row files, and a fresh process (a
command-line answer) reads them all; so once a table holds `COMPACT_AFTER` files, the append
rewrites its newest files as one, in commit order (tiered, so old rows are not rewritten every
time: `files.compact`), and reads stay in milliseconds however long the history.
"""

from __future__ import annotations

import functools
import threading
from datetime import datetime
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
from delta.tables import DeltaTable
from deltalake import write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

from fs_spark.catalog import files
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import ALL_TABLES, FEATURE_TABLES, FEATURE_VERSIONS, CatalogTable
from fs_spark.config import S3Settings
from fs_spark.errors import CatalogRowError, FsSparkError
from fs_spark.locks import Locks
from fs_spark.provenance import from_spark
from fs_spark.session import SessionSource
from fs_spark.storage.delta_log import latest_version, local_latest_version
from fs_spark.storage.paths import StorePaths, local_path
from fs_spark.storage.s3 import latest_version as s3_latest_version

_BY_NAME = {t.name: t for t in ALL_TABLES}
COMPACT_AFTER = 64  # files in a local catalog table before an append compacts them
Row = dict[str, Any]


@functools.cache
def _arrow_schema(table: CatalogTable) -> pa.Schema:
    """The table's Arrow schema, each column's description kept as its `comment`."""
    schema = to_arrow_schema(table.schema)
    return pa.schema([f.with_metadata({"comment": doc}) for f, (_, _, doc) in zip(schema, table.columns, strict=True)])


def _version_order(version: FeatureVersion) -> tuple[str, int, int]:
    return (version.table_name, version.definition_version, version.version_number)


def _plain(row: Row) -> Row:
    return {k: from_spark(v) if isinstance(v, datetime) else v for k, v in row.items()}


class Catalog:
    def __init__(self, session: SessionSource, paths: StorePaths, locks: Locks, s3: S3Settings | None = None):
        self._session = session
        self.paths = paths
        self._s3 = s3 or S3Settings()
        self._seen: dict[str, int] = {}  # the latest version seen of each S3 table
        # delta-rs tables kept open: brought up to date, they read only the log entries added
        # since (on S3, a listing and a GET or two instead of the log since the last checkpoint).
        self._open: dict[str, deltalake.DeltaTable] = {}
        self._open_lock = threading.RLock()
        self.locks = locks
        self._cache: dict[str, tuple[int, list[Row]]] = {}
        self._parsed_versions: tuple[list[Row], list[FeatureVersion]] | None = None
        self.compact_after = COMPACT_AFTER
        self._cache_lock = threading.Lock()

    @property
    def spark(self) -> SparkSession:
        """The Spark session, started on first use: a local store's catalog never needs one."""
        return self._session()

    # --- raw access ---------------------------------------------------------------------------

    def _files(self, path: str) -> files.TableFiles | None:
        return files.table_files(path, self._s3)

    def _loaded(self, where: files.TableFiles, version: int | None = None) -> deltalake.DeltaTable:
        """The open delta-rs table at `where`, loaded at `version` (None: the latest). Hold
        `_open_lock` while using it."""
        table = self._open.get(where.uri)
        if table is None:
            table = self._open[where.uri] = files.open_table(where, version)
        elif version is None:
            table.update_incremental()
        elif table.version() != version:
            table.load_as_version(version)
        return table

    def _latest(self, path: str) -> int | None:
        local = local_path(path)
        if local is not None:
            return local_latest_version(local)
        if path.startswith("s3a://"):  # the listing starts after the version last seen
            latest = s3_latest_version(self._s3, path, self._seen.get(path))
            if latest is not None:
                self._seen[path] = latest
            return latest
        return latest_version(self.spark, path)

    def path(self, name: str) -> str:
        return self.paths.catalog(name)

    def ensure(self) -> None:
        """Create every catalog table that does not exist yet."""
        for table in ALL_TABLES:
            self._ensure(table)

    def _ensure(self, table: CatalogTable) -> int:
        """Create `table` if needed; return its latest Delta version."""
        version = self._latest(self.path(table.name))
        if version is not None:
            return version
        path = self.path(table.name)
        where = self._files(path)
        with self.locks.hold("_catalog"):
            if where is not None:  # the same table (protocol, comments, appendOnly) in milliseconds
                files.create(where, _arrow_schema(table), table.doc)
            else:
                builder = DeltaTable.createIfNotExists(self.spark).location(path)
                builder = builder.addColumns(table.schema).comment(table.doc).property("delta.appendOnly", "true")
                builder.execute()
        created = self._latest(path)
        if created is None:
            raise FileNotFoundError(f"the catalog table {table.name} was not created at {path}")
        return created

    def table(self, name: str) -> DataFrame:
        """A catalog table as a DataFrame (empty, with its schema, before the first append)."""
        table = self._spec(name)
        self._ensure(table)
        return self.spark.read.format("delta").load(self.path(name))

    def rows(self, name: str) -> list[Row]:
        """All rows of a catalog table as dicts (timestamps aware UTC), cached by Delta version."""
        table = self._spec(name)
        version = self._ensure(table)
        with self._cache_lock:
            cached = self._cache.get(name)
            if cached and cached[0] == version:
                return cached[1]
        if version == 0:  # version 0 is the empty table `_ensure` created: nothing to read
            rows: list[Row] = []
        else:
            rows = [_plain(r) for r in self._read(name, version)]
        with self._cache_lock:
            self._cache[name] = (version, rows)
        return rows

    def select(
        self, name: str, columns: list[str], where: pc.Expression, *, newest: tuple[str, int] | None = None
    ) -> list[Row]:
        """The `columns` of the rows of catalog table `name` that match `where` (a pyarrow
        expression), in no set order; with `newest=(column, n)`, only the n with the greatest
        `column`, greatest first. For the tables that grow with every operation (`metrics`,
        `stream_progress`): `rows` would hold their whole history in memory, where this reads only
        the columns asked for and skips the Parquet row groups whose statistics rule `where` out.

        Example:
            >>> failed = pc.field("error_class").is_valid()  # doctest: +SKIP
            >>> catalog.select("metrics", ["operation", "started_at"], failed, newest=("started_at", 1))
        """
        table = self._spec(name)
        version = self._ensure(table)
        if version == 0:
            return []
        where_files = self._files(self.path(name))
        if where_files is None:  # read through Spark: filter the cached rows instead
            every = pa.Table.from_pylist(self.rows(name), schema=_arrow_schema(table))
            found = every.filter(where).select(columns)
        else:
            with self._open_lock:
                found = files.select(where_files, self._loaded(where_files, version), columns, where)
        if newest is not None:
            column, count = newest
            found = found.take(pc.sort_indices(found, sort_keys=[(column, "descending")])[:count])
        return [_plain(r) for r in found.to_pylist()]

    def latest_version(self, name: str) -> int:
        """The Delta version of catalog table `name` now."""
        return self._ensure(self._spec(name))

    def rows_at(self, name: str, version: int) -> list[Row]:
        """The rows of catalog table `name` at Delta version `version`, in commit order."""
        self._spec(name)
        return [_plain(r) for r in self._read(name, version)] if version else []

    def _read(self, name: str, version: int) -> list[Row]:
        where = self._files(self.path(name))
        if where is not None:  # delta-rs: milliseconds, where a Spark job costs a tenth of a second or more
            with self._open_lock:
                return files.rows_in_commit_order(where, self._loaded(where, version)).to_pylist()
        frame = self.spark.read.format("delta").option("versionAsOf", version).load(self.path(name))
        return [r.asDict(recursive=True) for r in frame.collect()]

    @staticmethod
    def _spec(name: str) -> CatalogTable:
        table = _BY_NAME.get(name)
        if table is None:
            raise KeyError(f"no catalog table {name!r}; there are {sorted(_BY_NAME)}")
        return table

    def register_views(self, prefix: str = "fs_") -> list[str]:
        """Register each catalog table as a temporary view `<prefix><name>` for Spark SQL."""
        names = []
        for table in ALL_TABLES:
            self.table(table.name).createOrReplaceTempView(prefix + table.name)
            names.append(prefix + table.name)
        return names

    def append(self, table: CatalogTable, rows: list[Row]) -> None:
        """Append rows as one Delta commit. Every row names every column of the table, no more:
        a misspelt or forgotten key is an error here, not a silent null."""
        if not rows:
            return
        names = [n for n, _, _ in table.columns]
        for row in rows:
            if row.keys() != set(names):
                raise CatalogRowError(table.name, sorted(row.keys() - set(names)), sorted(set(names) - row.keys()))
        self._ensure(table)
        path = self.path(table.name)
        with self.locks.hold("_catalog"):
            before = self._latest(path)
            where = self._files(path)
            if where is not None:  # delta-rs: a commit in milliseconds instead of a Spark job
                data = pa.Table.from_pylist([{n: r[n] for n in names} for r in rows], schema=_arrow_schema(table))
                with self._open_lock:
                    loaded = self._loaded(where)
                    if set(names) - {f.name for f in loaded.schema().fields}:
                        # Catalog tables made by an older fs_spark gain the columns added since.
                        write_deltalake(loaded, data, mode="append", schema_mode="merge")
                        loaded.update_incremental()
                    else:
                        files.append(where, loaded, data)
                    files.compact(where, loaded, self.compact_after)
            else:
                frame = self.spark.createDataFrame([tuple(r[n] for n in names) for r in rows], table.schema)
                frame.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
            after = self._latest(path)
        with self._cache_lock:  # extend the cache when no other writer committed in between
            cached = self._cache.get(table.name)
            if cached and cached[0] == before and after == before + 1:
                self._cache[table.name] = (after, cached[1] + [_plain(dict(r)) for r in rows])

    def replace_rows(self, table: CatalogTable, rows: list[Row]) -> None:
        """Replace every row of catalog table `table` with `rows` (see `files.replace_rows`)."""
        names = [n for n, _, _ in table.columns]
        self._ensure(table)
        where = self._files(self.path(table.name))
        if where is None:
            raise FsSparkError(
                f"the catalog table {table.name} is read through Spark here; its rows cannot be replaced"
            )
        data = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=_arrow_schema(table))
        with self.locks.hold("_catalog"), self._open_lock:
            files.replace_rows(where, self._loaded(where), data)

    # --- definitions --------------------------------------------------------------------------

    def definition_rows(self, table_name: str | None = None) -> list[Row]:
        rows = [r for r in self.rows(FEATURE_TABLES.name) if table_name is None or r["table_name"] == table_name]
        return sorted(rows, key=lambda r: (r["table_name"], r["definition_version"], r["revision"]))

    def current_definitions(self) -> dict[str, Row]:
        """The latest definition row of every table."""
        return {r["table_name"]: r for r in self.definition_rows()}

    # --- feature versions ---------------------------------------------------------------------

    def versions(self, table_name: str | None = None) -> list[FeatureVersion]:
        """Feature versions by table, definition version and number, parsed once per state of
        the table (the same list of rows from the cache gives the same parsed versions)."""
        rows = self.rows(FEATURE_VERSIONS.name)
        parsed = self._parsed_versions
        if parsed is None or parsed[0] is not rows:
            before, done = parsed if parsed is not None else ([], [])
            if before and len(rows) > len(before) and rows[len(before) - 1] is before[-1]:
                # This process's own appends extend the cached rows: parse only the new ones,
                # not a long stream's whole history at each micro-batch.
                versions = sorted([*done, *map(FeatureVersion.from_row, rows[len(before) :])], key=_version_order)
            else:
                versions = sorted(map(FeatureVersion.from_row, rows), key=_version_order)
            parsed = self._parsed_versions = (rows, versions)
        return [v for v in parsed[1] if table_name is None or v.table_name == table_name]

    def version(self, version_id: str) -> FeatureVersion | None:
        found = [r for r in self.rows(FEATURE_VERSIONS.name) if r["version_id"] == version_id]
        return FeatureVersion.from_row(found[0]) if found else None
