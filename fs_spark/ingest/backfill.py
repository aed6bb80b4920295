"""Backfills: history for a time range, written as one feature version per chunk of event time.

Each chunk is an ordinary validated write whose identity names the backfill and the chunk, so a
backfill run again after a crash commits only the chunks it had not committed (the others are
recognised, and their data checked equal, by the write path's retry rule), and a stream writing
the same table meanwhile only takes turns with it at the table's lock. A chunk's version
records the chunk's range as its source range, and is committed now: a training set built
`as_of` a time before the backfill does not see it, one built after does, each row at its own
event time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fs_spark.catalog.records import FeatureVersion
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import FsSparkError
from fs_spark.provenance import SourceInfo, require_utc


class BackfillRangeError(FsSparkError):
    def __init__(self, table: str, column: str, start: datetime, end: datetime, outside: int, example: object):
        super().__init__(
            f"backfill of {table!r}: {outside} row(s) have {column} outside [{start.isoformat()}, {end.isoformat()}), "
            f"e.g. {example}; filter the source to the range, or widen it. Nothing was written"
        )


@dataclass(frozen=True)
class Backfill:
    """What a backfill wrote: one version per chunk that had rows, oldest chunk first."""

    name: str
    versions: tuple[FeatureVersion, ...]
    chunks: int  # chunks in the range, with rows or not


def chunk_starts(start: datetime, end: datetime, chunk: timedelta) -> list[datetime]:
    if chunk <= timedelta(0):
        raise ValueError(f"a backfill chunk must be a positive duration, not {chunk}")
    out, at = [], start
    while at < end:
        out.append(at)
        at += chunk
    return out


def backfill(
    table: FeatureTable,
    df: DataFrame,
    start: datetime,
    end: datetime,
    chunk: timedelta,
    write: Callable[..., FeatureVersion],
    name: str | None = None,
) -> Backfill:
    """Write `df`'s rows in [start, end) as one version per chunk; `write(df, write_id=, source=)`
    makes one validated write. One job finds which chunks have rows (and refuses rows outside
    the range) before anything is written."""
    start, end = require_utc(start, "backfill start"), require_utc(end, "backfill end")
    if start >= end:
        raise ValueError(f"backfill start {start.isoformat()} is not before its end {end.isoformat()}")
    starts = chunk_starts(start, end, chunk)
    label = name or f"{start.isoformat()}/{end.isoformat()}"
    event = F.col(table.event_time)
    index = F.floor(
        (F.unix_micros(event) - int(start.timestamp() * 1_000_000)) / int(chunk.total_seconds() * 1_000_000)
    )
    outside = event.isNull() | (event < F.lit(start)) | (event >= F.lit(end))
    found = df.groupBy(F.when(outside, F.lit(-1)).otherwise(index).alias("chunk")).agg(
        F.count(F.lit(1)).alias("rows"), F.first(event.cast("string")).alias("example")
    )
    present = {int(r["chunk"]): r for r in found.collect()}
    if -1 in present:
        bad = present[-1]
        raise BackfillRangeError(table.name, table.event_time, start, end, int(bad["rows"]), bad["example"])
    versions = []
    for i, at in enumerate(starts):
        if i not in present:
            continue
        until = min(at + chunk, end)
        rows = df.where((event >= F.lit(at)) & (event < F.lit(until)))
        source = SourceInfo(description=f"backfill {label}, chunk {i + 1} of {len(starts)}", start=at, end=until)
        versions.append(write(rows, write_id=f"backfill:{label}:{at.isoformat()}", source=source))
    return Backfill(label, tuple(versions), len(starts))
