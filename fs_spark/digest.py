"""Order-independent content digests of DataFrames, computed by Spark in one aggregation.

A digest is the row count and the sums of the high and low 32 bits of each row's 64-bit hash:
the same rows in any order or partitioning give the same digest, so a retried batch is
recognised and a replayed training set can be checked against the original. It can be computed
on its own (`frame_digest`) or observed during a write that reads the rows anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def row_hash(columns: Sequence[str]) -> Column:
    # xxhash64 skips nulls, so the null pattern is hashed too: (null, 1) differs from (1, null).
    return F.xxhash64(*[F.col(c) for c in columns], *[F.col(c).isNull() for c in columns])


def digest_aggregates(columns: Sequence[str]) -> list[Column]:
    """Row count and the sums of the high and low 32 bits of each row's hash (long sums: no
    overflow below 2^31 rows, and much cheaper than a decimal sum)."""
    hashed = row_hash(columns)
    return [
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.shiftrightunsigned(hashed, 32)).alias("hash_high"),
        F.sum(hashed.bitwiseAND(F.lit(0xFFFFFFFF))).alias("hash_low"),
    ]


def digest_of(metrics: dict[str, Any]) -> str:
    """The digest text from the values of `digest_aggregates`."""
    text = f"{metrics['rows']}:{metrics['hash_high'] or 0}:{metrics['hash_low'] or 0}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def frame_digest(df: DataFrame, columns: Sequence[str] | None = None) -> str:
    """Digest of `df` over `columns` (default: all), in one aggregation job."""
    return digest_of(df.agg(*digest_aggregates(list(columns or df.columns))).collect()[0].asDict())
