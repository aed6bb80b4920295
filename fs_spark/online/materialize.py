"""Materialization: the latest row of every key of a feature table, written to the online store
from the Spark executors (each partition writes its own vectors; nothing passes the driver).

The latest row is the one the training side would pick for an entity time of now: the greatest
event time, ties to the later write (the higher `_fs_version`). The watermark (the feature
version the online state reflects) is written after every partition has written.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from pyspark import Accumulator
from pyspark.sql import DataFrame, Row, Window
from pyspark.sql import functions as F

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import FeatureType
from fs_spark.errors import FsSparkError
from fs_spark.online.embedded import EmbeddedOnlineStore
from fs_spark.online.encoding import encode_key, encode_value
from fs_spark.storage.layout import VERSION_COLUMN
from fs_spark.storage.paths import StorePaths, local_path

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATCH = 5_000  # vectors per transaction of one partition's writer


def latest_rows(frame: DataFrame, table: FeatureTable) -> DataFrame:
    """One row per key: the greatest event time, ties to the later write; rows without a key
    or an event time are never served. Times leave Spark as microseconds, so no zone of the
    executor's Python can shift them."""
    order = Window.partitionBy(*table.keys).orderBy(F.col(table.event_time).desc(), F.col(VERSION_COLUMN).desc())
    usable = F.lit(True)
    for column in (*table.keys, table.event_time):
        usable = usable & F.col(column).isNotNull()
    times = {f.name for f in table.features if f.dtype is FeatureType.TIMESTAMP} | {table.event_time}
    chosen = frame.where(usable).withColumn("__fs_rank", F.row_number().over(order)).where("__fs_rank = 1")
    return chosen.select(
        *[F.unix_micros(F.col(c)).alias(c) if c in times else F.col(c) for c in [*table.keys, table.event_time]],
        F.col(VERSION_COLUMN),
        *[F.unix_micros(F.col(f.name)).alias(f.name) if f.name in times else F.col(f.name) for f in table.features],
    )


def _moment(micros: int | None) -> datetime | None:
    return None if micros is None else _EPOCH + timedelta(microseconds=micros)


def partition_writer(table: FeatureTable, path: str, written: Accumulator[int]):
    """The function each partition runs: encode its rows and write them in batches, counting
    them in `written` (an action applies a task's accumulator updates once)."""
    timestamps = [f.dtype is FeatureType.TIMESTAMP for f in table.features]

    def write(rows: Iterator[Row]) -> None:
        store = EmbeddedOnlineStore(path)
        batch: list[tuple[bytes, bytes]] = []
        for row in rows:
            written.add(1)
            key = encode_key(table.name, table.definition_version, [row[k] for k in table.keys])
            values = [
                _moment(row[f.name]) if ts else row[f.name] for f, ts in zip(table.features, timestamps, strict=True)
            ]
            at = _moment(row[table.event_time])
            batch.append((key, encode_value(table, row[VERSION_COLUMN], at, values)))  # type: ignore[arg-type]
            if len(batch) >= _BATCH:
                store.write(batch)
                batch = []
        if batch:
            store.write(batch)
        store.close()

    return write


def materialize(frame: DataFrame, table: FeatureTable, path: str, version_number: int) -> int:
    """Write the latest row of every key of `frame` (a table's rows as of `version_number`, with
    `_fs_version`) to the embedded store at `path`; return the number of keys written."""
    written = frame.sparkSession.sparkContext.accumulator(0)
    latest_rows(frame, table).foreachPartition(partition_writer(table, path, written))
    EmbeddedOnlineStore(path).write([], watermark=(watermark_name(table), version_number))
    return int(written.value)


def local_online_path(paths: StorePaths) -> str:
    """The embedded store's file; it must be on a local filesystem."""
    local = local_path(paths.online)
    if local is None:
        raise FsSparkError(f"the embedded online store needs a local store root, not {paths.root}")
    return local


def watermark_name(table: FeatureTable) -> str:
    return f"{table.name}:v{table.definition_version}"
