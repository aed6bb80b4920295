"""The physical layout of a feature table, chosen so reads filtered by key, time or version prune.

- time: the Delta table is partitioned by a generated column derived from the event time
  (month by default), so Delta turns a filter on the event time into a partition filter;
- key: each write is range-partitioned by (time bucket, keys) and sorted by keys and time, so a
  file covers a narrow key range and Delta's min/max statistics skip the rest;
- version: `_fs_version` holds the feature version number, and one write's files hold one
  number, so a filter on it skips other writes' files by the same statistics.
The keys, event time and `_fs_version` come first in the schema so they are always among the
columns Delta collects statistics for.
"""

from __future__ import annotations

from collections.abc import Collection

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import FeatureType
from fs_spark.storage.checkpoints import TABLE_CHECKPOINT_INTERVAL
from fs_spark.storage.paths import sql_path

VERSION_COLUMN = "_fs_version"
TIME_BUCKET_COLUMN = "_fs_time_bucket"
INTERNAL_COLUMNS = (VERSION_COLUMN, TIME_BUCKET_COLUMN)

_BUCKETS: dict[str, tuple[str, T.DataType]] = {
    "day": ("CAST({ts} AS DATE)", T.DateType()),
    "month": ("DATE_FORMAT({ts}, 'yyyy-MM')", T.StringType()),
    "year": ("YEAR({ts})", T.IntegerType()),
}


def time_bucket(table: FeatureTable) -> Column | None:
    """The time bucket as a Spark column (the same expression Delta generates), or None."""
    if table.time_partition == "none":
        return None
    sql, _ = _BUCKETS[table.time_partition]
    return F.expr(sql.format(ts=table.event_time))


def data_columns(table: FeatureTable) -> list[tuple[str, T.DataType]]:
    """The columns a write supplies, in storage order."""
    columns = [(k, t.spark_type) for k, t in table.entity.keys.items()]
    columns.append((table.event_time, FeatureType.TIMESTAMP.spark_type))
    columns.append((VERSION_COLUMN, T.LongType()))
    columns += [(f.name, f.dtype.spark_type) for f in table.features]
    return columns


STATS_COLUMNS = "delta.dataSkippingStatsColumns"


# The types Delta keeps min/max statistics of; naming a column of another type (a boolean, a
# binary, a nested column) in `delta.dataSkippingStatsColumns` fails the table's creation.
_SKIPPING_TYPES = (
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.FloatType,
    T.DoubleType,
    T.DecimalType,
    T.DateType,
    T.TimestampType,
    T.TimestampNTZType,
    T.StringType,
)


def stats_columns(table: FeatureTable, sensitive_tags: frozenset[str]) -> str | None:
    """The columns Delta keeps min/max statistics of: all but the features tagged sensitive,
    whose values would otherwise sit in the Delta log (None: every column)."""
    withheld = set(table.tagged(sensitive_tags))
    if not withheld:
        return None
    return ",".join(
        name for name, dtype in data_columns(table) if name not in withheld and isinstance(dtype, _SKIPPING_TYPES)
    )


def kept_stats_columns(schema: T.StructType, withheld: Collection[str]) -> str | None:
    """The columns a table of feature values other than a feature table (a quarantine table, a
    training set) keeps statistics of: all but the `withheld` features and the columns of types
    Delta keeps none of (None: nothing withheld, every column, Delta's default)."""
    if not withheld:
        return None
    plain = [f.name for f in schema.fields if isinstance(f.dataType, _SKIPPING_TYPES)]
    return ",".join(name for name in plain if name not in set(withheld))


def create_quarantine(spark: SparkSession, path: str, schema: T.StructType, withheld: Collection[str]) -> None:
    """Create a quarantine table at `path` whose Delta log keeps no statistics of the `withheld`
    features: the bad rows it holds are data, and so are their min and max (see `stats_columns`)."""
    builder = DeltaTable.createIfNotExists(spark).location(path).addColumns(schema)
    columns = kept_stats_columns(schema, withheld)
    if columns is not None:
        builder = builder.property(STATS_COLUMNS, columns)
    builder.execute()


def write_new_table(frame: DataFrame, path: str, stats: str | None, **options: str) -> None:
    """Write `frame` as a new Delta table at `path` (an error if one is there), keeping statistics
    of the columns `stats` only (None: Delta's default), set by the write that creates it."""
    writer = frame.write.format("delta").mode("errorifexists").options(**options)
    if stats is not None:
        writer = writer.option(STATS_COLUMNS, stats)
    writer.save(path)


def set_stats_columns(spark: SparkSession, path: str, columns: str | None) -> None:
    """Set which columns the Delta table at `path` keeps statistics of (None: every column);
    it applies to the files written from now on."""
    target = sql_path(path)
    if columns is None:
        spark.sql(f"ALTER TABLE {target} UNSET TBLPROPERTIES IF EXISTS ('{STATS_COLUMNS}')")
    else:
        spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ('{STATS_COLUMNS}' = '{columns}')")


def create_table(
    spark: SparkSession, path: str, table: FeatureTable, sensitive_tags: frozenset[str] = frozenset()
) -> None:
    """Create the Delta table for `table` at `path` if it does not exist yet."""
    builder = DeltaTable.createIfNotExists(spark).location(path)
    for name, dtype in data_columns(table):
        builder = builder.addColumn(name, dtype, nullable=True)
    if table.time_partition != "none":
        sql, dtype = _BUCKETS[table.time_partition]
        builder = builder.addColumn(TIME_BUCKET_COLUMN, dtype, generatedAlwaysAs=sql.format(ts=table.event_time))
        builder = builder.partitionedBy(TIME_BUCKET_COLUMN)
    builder = builder.property("delta.appendOnly", "true").property("delta.enableTypeWidening", "true")
    # fs_spark writes the checkpoints after its commits (fs_spark.storage.checkpoints); Delta's
    # own, inside a commit, is a backstop for other writers.
    builder = builder.property("delta.checkpointInterval", str(TABLE_CHECKPOINT_INTERVAL))
    # Statistics on every column: they prune reads and give each version its feature stats.
    builder = builder.property("delta.dataSkippingNumIndexedCols", "-1")
    columns = stats_columns(table, sensitive_tags)
    if columns is not None:
        builder = builder.property(STATS_COLUMNS, columns)
    builder.execute()


# A batch the optimizer estimates below this size is written as one sorted partition: no range
# sampling job and no shuffle, about a third of a small write's time; one file is as narrow as
# its few keys anyway.
SMALL_BATCH_BYTES = 8 * 1024 * 1024


def is_small(df: DataFrame) -> bool:
    """True when the optimizer estimates `df` under SMALL_BATCH_BYTES (exact for local data, the
    files' size for a scan), or when all its rows came from the driver's memory (a Python list
    or a pandas frame, whose size Spark does not estimate: it already fits in one process)."""
    plan = df._jdf.queryExecution().optimizedPlan()
    if int(plan.stats().sizeInBytes()) <= SMALL_BATCH_BYTES:
        return True
    leaves = plan.collectLeaves()
    return all(_from_driver(leaves.apply(i)) for i in range(leaves.size()))


def _from_driver(leaf) -> bool:
    """A leaf over an RDD whose lineage starts at a parallelized collection of the driver's."""
    if leaf.getClass().getSimpleName() != "LogicalRDD":
        return False
    rdd = leaf.rdd()
    while not rdd.dependencies().isEmpty():
        if rdd.dependencies().size() != 1:
            return False
        rdd = rdd.dependencies().head().rdd()
    return rdd.getClass().getSimpleName() == "ParallelCollectionRDD"


def layout(df: DataFrame, table: FeatureTable) -> DataFrame:
    """Order a batch for writing: range-partitioned by (time bucket, keys), sorted by (time
    bucket, keys, event time), the order the duplicate check and Delta's partitioned writer
    need too, so Spark sorts once. A small batch stays one partition (see SMALL_BATCH_BYTES)."""
    bucket = time_bucket(table)
    by = ([bucket] if bucket is not None else []) + [F.col(k) for k in table.keys]
    partitioned = df.coalesce(1) if is_small(df) else df.repartitionByRange(*by)
    return partitioned.sortWithinPartitions(*by, F.col(table.event_time))
