"""Aggregates a write collects while it runs (Spark's `observe`), so stats cost no extra pass.

The content digest is an order-independent sum of per-row hashes: the same rows in any order
and any partitioning give the same digest, so a retried batch is recognised as the same batch.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fs_spark.definitions.model import FeatureTable
from fs_spark.ingest.rules import RowRule


def _row_hash(table: FeatureTable) -> Column:
    columns = [*table.keys, table.event_time, *table.feature_names]
    # xxhash64 skips nulls, so the null pattern is hashed too: (null, 1) differs from (1, null).
    return F.xxhash64(*[F.col(c) for c in columns], *[F.col(c).isNull() for c in columns])


def digest_aggregates(table: FeatureTable) -> list[Column]:
    return [
        F.count(F.lit(1)).alias("rows"),
        F.sum(_row_hash(table).cast("decimal(38,0)")).alias("hash_sum"),
    ]


def digest_of(metrics: dict[str, Any]) -> str:
    text = f"{metrics['rows']}:{metrics['hash_sum'] or 0}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def content_digest(df: DataFrame, table: FeatureTable) -> str:
    """Digest of a conformed batch, in one aggregation job."""
    return digest_of(df.agg(*digest_aggregates(table)).first().asDict())


def batch_aggregates(table: FeatureTable, rules: list[RowRule] | None = None) -> list[Column]:
    """Digest, per-feature min/max/null count, event-time range and, optionally, rule counts."""
    out = digest_aggregates(table)
    # Observed values cross py4j as Java objects unless plain numbers or strings.
    out.append(F.unix_micros(F.min(table.event_time)).alias("ts_min"))
    out.append(F.unix_micros(F.max(table.event_time)).alias("ts_max"))
    for feature in table.features:
        col = F.col(feature.name)
        out.append(F.sum(col.isNull().cast("long")).alias(f"nulls:{feature.name}"))
        if feature.dtype.is_numeric or feature.dtype.value in ("date", "timestamp", "string"):
            value = F.when(~F.isnan(col), col) if feature.dtype.is_floating else col
            low, high = F.min(value), F.max(value)
            if feature.dtype.value in ("date", "timestamp"):
                low, high = low.cast("string"), high.cast("string")
            out.append(low.alias(f"min:{feature.name}"))
            out.append(high.alias(f"max:{feature.name}"))
    for rule in rules or []:
        out.append(F.sum(rule.broken.cast("long")).alias(f"broken:{rule.label}"))
    return out


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def feature_stats(table: FeatureTable, metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    stats = {}
    for feature in table.features:
        name = feature.name
        stats[name] = {
            "null_count": int(metrics.get(f"nulls:{name}") or 0),
            "min": _plain(metrics.get(f"min:{name}")),
            "max": _plain(metrics.get(f"max:{name}")),
        }
    return stats


def rule_counts(metrics: dict[str, Any]) -> dict[str, int]:
    return {k.removeprefix("broken:"): int(v or 0) for k, v in metrics.items() if k.startswith("broken:") and v}


def event_time(metrics: dict[str, Any], which: str) -> datetime | None:
    micros = metrics.get(f"ts_{which}")
    return None if micros is None else datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(micros))


def stats_json(table: FeatureTable, metrics: dict[str, Any], rows: int) -> str:
    return json.dumps({"row_count": rows, "features": feature_stats(table, metrics)}, sort_keys=True)
