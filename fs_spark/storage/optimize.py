"""Laying a feature table's files out by key and event time after they were written: Delta's
OPTIMIZE, off the write path.

An OPTIMIZE commit removes and adds files with `dataChange = false`: the rows are the same, so
it is no feature version. Version numbers, time travel by number, ID and `as_of`, and every
stored training set's Delta versions are untouched; the files it replaced stay until VACUUM,
whose guard keeps those a recorded training set still reads.

- A table partitioned by a time bucket (the inline layout) is Z-ordered by its keys and event
  time, only in the partitions that gained files since the last OPTIMIZE read the table: a run
  after a small append rewrites the partitions the append touched, not the table.
- An unpartitioned table is clustered by Delta's liquid clustering on its keys and event time
  (enabled at its first run); files of clusters already at `cube_bytes` are left alone, so a
  run after a small append rewrites the new files and the clusters still below that size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import SparkSession

from fs_spark.definitions.model import FeatureTable
from fs_spark.storage.delta_log import commit_actions, latest_version
from fs_spark.storage.layout import TIME_BUCKET_COLUMN
from fs_spark.storage.paths import sql_path

# A first run over a table with a longer history than this Z-orders every partition instead of
# reading each commit to find the ones that changed.
MAX_COMMITS_READ = 2_000
_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
_CUBE_SIZE = "spark.databricks.delta.optimize.clustering.mergeStrategy.minCubeSize.threshold"


@dataclass(frozen=True)
class OptimizeResult:
    """What one OPTIMIZE of one Delta table of a feature table did."""

    table: str
    storage_path: str
    method: str  # "zorder" (partitioned by time) or "liquid"
    delta_version: int | None  # the OPTIMIZE commit; None when nothing needed rewriting
    files_removed: int
    files_added: int
    bytes_rewritten: int  # the size of the files it replaced
    table_bytes: int  # the table's size before it
    partitions: tuple[str, ...] = ()  # time buckets Z-ordered (partitioned tables)

    @property
    def rewritten_fraction(self) -> float:
        return self.bytes_rewritten / self.table_bytes if self.table_bytes else 0.0

    def to_text(self) -> str:
        if self.delta_version is None:
            return f"{self.table}: nothing to lay out ({self.method}; {self.table_bytes} bytes)"
        where = f" in {len(self.partitions)} partition(s)" if self.partitions else ""
        return (
            f"{self.table}: {self.method}{where}, Delta version {self.delta_version}: {self.files_removed} file(s) "
            f"rewritten as {self.files_added}, {self.bytes_rewritten} of {self.table_bytes} bytes "
            f"({self.rewritten_fraction:.1%})"
        )


def cluster_columns(table: FeatureTable) -> list[str]:
    return [*table.keys, table.event_time]


def optimize(
    spark: SparkSession, table: FeatureTable, path: str, *, file_bytes: int, cube_bytes: int
) -> OptimizeResult:
    """OPTIMIZE the Delta table of `table` at `path` (see the module's docstring)."""
    detail = spark.sql(f"DESCRIBE DETAIL {sql_path(path)}").collect()[0]
    partitioned = TIME_BUCKET_COLUMN in (detail["partitionColumns"] or [])
    size = int(detail["sizeInBytes"] or 0)
    before = latest_version(spark, path)
    columns = ", ".join(f"`{c}`" for c in cluster_columns(table))
    with _conf(spark, {_FILE_SIZE: str(file_bytes), _CUBE_SIZE: str(cube_bytes)}):
        if partitioned:
            buckets = _changed_buckets(spark, path, before)
            if not buckets:
                return OptimizeResult(table.name, path, "zorder", None, 0, 0, 0, size)
            where = ", ".join("'" + b.replace("'", "''") + "'" for b in buckets)
            rows = spark.sql(
                f"OPTIMIZE {sql_path(path)} WHERE `{TIME_BUCKET_COLUMN}` IN ({where}) ZORDER BY ({columns})"
            ).collect()
        else:
            if list(detail["clusteringColumns"] or []) != cluster_columns(table):
                spark.sql(f"ALTER TABLE {sql_path(path)} CLUSTER BY ({columns})")
            rows, buckets = spark.sql(f"OPTIMIZE {sql_path(path)}").collect(), []
    metrics = rows[0]["metrics"] if rows else None
    after = latest_version(spark, path)
    removed = int(metrics["numFilesRemoved"]) if metrics else 0
    committed = after if removed and after != before else None
    return OptimizeResult(
        table.name,
        path,
        "zorder" if partitioned else "liquid",
        committed,
        removed,
        int(metrics["numFilesAdded"]) if metrics else 0,
        int(metrics["filesRemoved"]["totalSize"]) if metrics and removed else 0,
        size,
        tuple(buckets),
    )


def _changed_buckets(spark: SparkSession, path: str, latest: int | None) -> list[str]:
    """The time buckets that gained files after the snapshot the last OPTIMIZE read (every
    bucket when none did, or when the history to read is longer than MAX_COMMITS_READ)."""
    if latest is None:
        return []
    found: set[str] = set()
    boundary = -1
    version = latest
    while version > boundary:
        if latest - version >= MAX_COMMITS_READ:
            return _all_buckets(spark, path)
        actions = commit_actions(spark, path, version)
        info: dict = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        if info.get("operation") == "OPTIMIZE" and boundary < 0:
            boundary = int(info.get("readVersion", version - 1))
        for action in actions:
            add = action.get("add")
            if add and add.get("dataChange", True):
                found.add(add["partitionValues"][TIME_BUCKET_COLUMN])
        version -= 1
    return sorted(found)


def _all_buckets(spark: SparkSession, path: str) -> list[str]:
    rows = spark.sql(f"SELECT DISTINCT `{TIME_BUCKET_COLUMN}` AS b FROM {sql_path(path)}").collect()
    return sorted(str(r["b"]) for r in rows if r["b"] is not None)


@contextmanager
def _conf(spark: SparkSession, values: dict[str, str]) -> Iterator[None]:
    """Session settings for one block, restored after it (OPTIMIZE's sizes are session-wide)."""
    previous = {key: spark.conf.get(key, None) for key in values}
    for key, value in values.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in previous.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)
