"""Reading and appending catalog rows.

Every append is one Delta commit under the catalog lock (see `fs_spark.locks`): concurrent
writers, threads or processes, only ever append, so nothing they write is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import ALL_TABLES, FEATURE_TABLES, FEATURE_VERSIONS, CatalogTable
from fs_spark.locks import store_lock
from fs_spark.storage.paths import StorePaths

_BY_NAME = {t.name: t for t in ALL_TABLES}


@dataclass(frozen=True)
class WriteState:
    """What the catalog knows of a table before a write: the next number, the last commit."""

    last_version_number: int
    last_delta_version: int | None
    version_id_for_write: str | None


class Catalog:
    def __init__(self, spark: SparkSession, paths: StorePaths, lock_timeout: float):
        self.spark = spark
        self.paths = paths
        self.lock_timeout = lock_timeout
        self._created: set[str] = set()

    # --- raw access ---------------------------------------------------------------------------

    def path(self, name: str) -> str:
        return self.paths.catalog(name)

    def ensure(self) -> None:
        """Create every catalog table that does not exist yet."""
        for table in ALL_TABLES:
            self._ensure(table)

    def _ensure(self, table: CatalogTable) -> None:
        if table.name in self._created:
            return
        with store_lock(self.paths.lock_dir, "_catalog", self.lock_timeout):
            builder = DeltaTable.createIfNotExists(self.spark).location(self.path(table.name))
            builder = builder.addColumns(table.schema).comment(table.doc).property("delta.appendOnly", "true")
            builder.execute()
        self._created.add(table.name)

    def table(self, name: str) -> DataFrame:
        """A catalog table as a DataFrame (empty, with its schema, before the first append)."""
        table = _BY_NAME.get(name)
        if table is None:
            raise KeyError(f"no catalog table {name!r}; there are {sorted(_BY_NAME)}")
        self._ensure(table)
        return self.spark.read.format("delta").load(self.path(name))

    def register_views(self, prefix: str = "fs_") -> list[str]:
        """Register each catalog table as a temporary view `<prefix><name>` for Spark SQL."""
        names = []
        for table in ALL_TABLES:
            self.table(table.name).createOrReplaceTempView(prefix + table.name)
            names.append(prefix + table.name)
        return names

    def append(self, table: CatalogTable, rows: list[dict[str, Any]]) -> None:
        """Append rows as one Delta commit."""
        if not rows:
            return
        self._ensure(table)
        frame = self.spark.createDataFrame([tuple(r.get(n) for n, _, _ in table.columns) for r in rows], table.schema)
        with store_lock(self.paths.lock_dir, "_catalog", self.lock_timeout):
            frame.write.format("delta").mode("append").save(self.path(table.name))

    # --- definitions --------------------------------------------------------------------------

    def definition_rows(self, table_name: str | None = None) -> list[Any]:
        frame = self.table(FEATURE_TABLES.name)
        if table_name is not None:
            frame = frame.where(F.col("table_name") == table_name)
        return frame.orderBy("table_name", "definition_version", "revision").collect()

    def current_definitions(self) -> dict[str, Any]:
        """The latest definition row of every table."""
        latest: dict[str, Any] = {}
        for row in self.definition_rows():
            latest[row.table_name] = row
        return latest

    # --- feature versions ---------------------------------------------------------------------

    def write_state(self, table_name: str, definition_version: int, write_id: str) -> WriteState:
        """One small job: the last version number and Delta version, and a write_id match."""
        row = (
            self.table(FEATURE_VERSIONS.name)
            .where((F.col("table_name") == table_name) & (F.col("definition_version") == definition_version))
            .agg(
                F.max("version_number").alias("n"),
                F.max("delta_version").alias("d"),
                F.max(F.when(F.col("write_id") == write_id, F.col("version_id"))).alias("w"),
            )
            .first()
        )
        return WriteState(row.n or 0, row.d, row.w)

    def versions(self, table_name: str | None = None) -> list[FeatureVersion]:
        frame = self.table(FEATURE_VERSIONS.name)
        if table_name is not None:
            frame = frame.where(F.col("table_name") == table_name)
        rows = frame.orderBy("table_name", "definition_version", "version_number").collect()
        return [FeatureVersion.from_row(r) for r in rows]

    def version(self, version_id: str) -> FeatureVersion | None:
        rows = self.table(FEATURE_VERSIONS.name).where(F.col("version_id") == version_id).collect()
        return FeatureVersion.from_row(rows[0]) if rows else None
