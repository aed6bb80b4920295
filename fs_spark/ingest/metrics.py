"""What a write measures about its batch, at no cost of a pass of its own.

The content digest is observed during the write job (Spark's `observe`); it is an
order-independent sum of per-row hashes, so the same rows in any order or partitioning give the
same digest and a retried batch is recognised as the same batch. Row counts and per-feature
min, max and null counts come from the statistics Delta writes into the commit.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fs_spark.definitions.model import FeatureTable


def _row_hash(table: FeatureTable) -> Column:
    columns = [*table.keys, table.event_time, *table.feature_names]
    # xxhash64 skips nulls, so the null pattern is hashed too: (null, 1) differs from (1, null).
    return F.xxhash64(*[F.col(c) for c in columns], *[F.col(c).isNull() for c in columns])


def digest_aggregates(table: FeatureTable) -> list[Column]:
    """Row count and the sums of the high and low 32 bits of each row's hash (long sums: no
    overflow below 2^31 rows, and much cheaper than a decimal sum)."""
    row_hash = _row_hash(table)
    return [
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.shiftrightunsigned(row_hash, 32)).alias("hash_high"),
        F.sum(row_hash.bitwiseAND(F.lit(0xFFFFFFFF))).alias("hash_low"),
    ]


def digest_of(metrics: dict[str, Any]) -> str:
    text = f"{metrics['rows']}:{metrics['hash_high'] or 0}:{metrics['hash_low'] or 0}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def content_digest(df: DataFrame, table: FeatureTable) -> str:
    """Digest of a conformed batch, in one aggregation job."""
    return digest_of(df.agg(*digest_aggregates(table)).first().asDict())


def label_counts(labels_column: str, labels: list[str]) -> list[Column]:
    """Aggregates counting the rows whose `labels_column` array holds each label."""
    return [F.sum(F.array_contains(labels_column, label).cast("long")).alias(f"broken:{label}") for label in labels]


def rule_counts(metrics: dict[str, Any]) -> dict[str, int]:
    """Rows per broken rule, from the metrics of `label_counts`."""
    return {k.removeprefix("broken:"): int(v or 0) for k, v in metrics.items() if k.startswith("broken:") and v}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def version_stats(table: FeatureTable, file_stats: dict[str, Any]) -> tuple[str, datetime | None, datetime | None]:
    """(stats JSON, earliest event time, latest event time) from a commit's file statistics."""
    features = {
        f.name: {
            "null_count": int(file_stats["nulls"].get(f.name, 0)),
            "min": file_stats["min"].get(f.name),
            "max": file_stats["max"].get(f.name),
        }
        for f in table.features
    }
    text = json.dumps({"row_count": file_stats["rows"], "features": features}, sort_keys=True)
    ts = table.event_time
    return text, _timestamp(file_stats["min"].get(ts)), _timestamp(file_stats["max"].get(ts))
