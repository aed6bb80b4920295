"""Materialization: the latest row of every key of a feature table, written to the online store
from the Spark executors (each partition writes its own vectors; nothing passes the driver).
What to read and write (all keys, the new writes' keys, or the keys a quarantine or rollback
touched) is decided in `state.plan`; this module only runs it.

The latest row is the one the training side would pick for an entity time of now: the greatest
event time, ties to the later write (the higher `_fs_version`). Many rows are ranked per key by
Spark (a shuffle by key, then each partition writes its keys); a few new rows (a stream's
micro-batches) are written by one task that keeps each key's latest row as it goes, with no
shuffle: on two cores the shuffle was two thirds of an incremental run. The watermark (the
feature version the online state reflects) is written by the caller after every partition has
written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark import Accumulator
from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import FeatureType
from fs_spark.online.encoding import encode_key_after, key_prefix, make_encoder, value_order
from fs_spark.online.factory import OnlineStoreSpec
from fs_spark.storage.layout import VERSION_COLUMN

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATCH = 5_000  # vectors per transaction of one partition's writer
FEW_ROWS = 200_000  # new rows one task writes faster than a shuffle by key would (`write_few`)


def latest_rows(frame: DataFrame, table: FeatureTable) -> DataFrame:
    """One row per key: the greatest event time, ties to the later write; rows without a key
    or an event time are never served."""
    order = Window.partitionBy(*table.keys).orderBy(F.col(table.event_time).desc(), F.col(VERSION_COLUMN).desc())
    chosen = frame.withColumn("__fs_rank", F.row_number().over(order)).where("__fs_rank = 1")
    return servable_rows(chosen, table)


def servable_rows(frame: DataFrame, table: FeatureTable) -> DataFrame:
    """The rows with a key and an event time, as the writer takes them: (keys..., event time,
    `_fs_version`, features...). Times leave Spark as microseconds, so no zone of the
    executor's Python can shift them."""
    usable = F.lit(True)
    for column in (*table.keys, table.event_time):
        usable = usable & F.col(column).isNotNull()
    times = {f.name for f in table.features if f.dtype is FeatureType.TIMESTAMP} | {table.event_time}
    return frame.where(usable).select(
        *[F.unix_micros(F.col(c)).alias(c) if c in times else F.col(c) for c in [*table.keys, table.event_time]],
        F.col(VERSION_COLUMN),
        *[F.unix_micros(F.col(f.name)).alias(f.name) if f.name in times else F.col(f.name) for f in table.features],
    )


class Counters:
    """Keys written and removed, and the bytes of keys and values sent to the online store,
    counted on the executors (an action applies a task's accumulator updates once)."""

    def __init__(self, spark: SparkSession):
        self.written: Accumulator[int] = spark.sparkContext.accumulator(0)
        self.deleted: Accumulator[int] = spark.sparkContext.accumulator(0)
        self.sent: Accumulator[int] = spark.sparkContext.accumulator(0)

    def totals(self) -> Written:
        return Written(int(self.written.value), int(self.deleted.value), int(self.sent.value))


@dataclass(frozen=True)
class Written:
    """What a materialization did to the online store."""

    keys: int
    removed: int
    bytes: int


def partition_writer(table: FeatureTable, revision: int, spec: OnlineStoreSpec, counters: Counters, newer_only: bool):
    """The function each partition runs: encode its rows (at the definition's `revision`) and
    write them in batches. A row
    without a version (a key no served row has any more) removes its key."""
    written, deleted, sent = counters.written, counters.deleted, counters.sent
    # Rows are (keys..., event time, _fs_version, features...), times in microseconds.
    width = len(table.keys)
    version_at, first_feature = width + 1, width + 2
    prefix = key_prefix(table.name, table.definition_version)

    def write(rows: Iterator[Row]) -> None:
        encode = make_encoder(table, revision)
        store = spec.open()
        batch: list[tuple[bytes, bytes]] = []
        gone: list[bytes] = []

        def flush() -> None:
            if newer_only:  # a key twice in one batch: its later row only (stored ones are compared)
                latest: dict[bytes, bytes] = {}
                for key, value in batch:
                    if key not in latest or value_order(value) > value_order(latest[key]):
                        latest[key] = value
                batch[:] = latest.items()
            sent.add(sum(len(k) + len(v) for k, v in batch) + sum(map(len, gone)))
            if newer_only:
                written.add(store.write_newer(batch))
            elif batch or gone:
                written.add(store.write(batch, delete=gone))
                deleted.add(len(gone))
            batch.clear()
            gone.clear()

        for row in rows:
            key = encode_key_after(prefix, row[:width], table.name)
            if row[version_at] is None:
                gone.append(key)
            else:
                batch.append((key, encode(row[version_at], row[width], row[first_feature:])))
            if len(batch) + len(gone) >= _BATCH:
                flush()
        flush()
        store.close()

    return write


def write_latest(
    frame: DataFrame, table: FeatureTable, revision: int, spec: OnlineStoreSpec, *, newer_only: bool
) -> Written:
    """Write the latest row of every key of `frame` (rows with `_fs_version`); with
    `newer_only`, keep a stored vector that is later."""
    counters = Counters(frame.sparkSession)
    latest_rows(frame, table).foreachPartition(partition_writer(table, revision, spec, counters, newer_only))
    return counters.totals()


def write_few(frame: DataFrame, table: FeatureTable, revision: int, spec: OnlineStoreSpec) -> Written:
    """Write the latest row of every key of `frame`, a few rows, keeping a stored vector that is
    later: one task reads them all (no shuffle), so no two writers compare the same key."""
    counters = Counters(frame.sparkSession)
    servable_rows(frame, table).coalesce(1).foreachPartition(
        partition_writer(table, revision, spec, counters, newer_only=True)
    )
    return counters.totals()


def refresh_keys(
    served: DataFrame, touched: DataFrame, table: FeatureTable, revision: int, spec: OnlineStoreSpec
) -> Written:
    """Recompute every key of `touched` from `served`: its latest served row, or its removal
    when no served row has it."""
    usable = F.lit(True)
    for column in table.keys:
        usable = usable & F.col(column).isNotNull()
    keys = touched.where(usable).select(*table.keys).distinct()
    latest = latest_rows(served.join(keys, list(table.keys), "left_semi"), table)
    rows = keys.join(latest, list(table.keys), "left")
    counters = Counters(served.sparkSession)
    rows.foreachPartition(partition_writer(table, revision, spec, counters, newer_only=False))
    return counters.totals()
