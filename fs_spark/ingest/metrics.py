"""What a write measures about its batch.

The content digest (see `fs_spark.digest`) is order-independent, so a retried batch is
recognised as the same batch. Row counts and per-feature min, max and null counts come from
the statistics Delta writes into the commit, at no cost of a pass of their own.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fs_spark import digest as D
from fs_spark.definitions.model import FeatureTable

# The file statistics of a write that added no file.
NO_FILES: dict[str, Any] = {"rows": 0, "min": {}, "max": {}, "nulls": {}}


def content_columns(table: FeatureTable) -> list[str]:
    """The columns a batch's content digest covers: keys, event time, features."""
    return [*table.keys, table.event_time, *table.feature_names]


def content_digest(df: DataFrame, table: FeatureTable) -> str:
    """Digest of a conformed batch, in one aggregation job."""
    return D.frame_digest(df, content_columns(table))


def label_counts(labels_column: str, labels: list[str]) -> list[Column]:
    """Aggregates counting the rows whose `labels_column` array holds each label."""
    return [F.sum(F.array_contains(labels_column, label).cast("long")).alias(f"broken:{label}") for label in labels]


def rule_counts(metrics: dict[str, Any]) -> dict[str, int]:
    """Rows per broken rule, from the metrics of `label_counts`."""
    return {k.removeprefix("broken:"): int(v or 0) for k, v in metrics.items() if k.startswith("broken:") and v}


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def version_stats(
    table: FeatureTable, file_stats: dict[str, Any], withheld: Collection[str] = ()
) -> tuple[str, datetime | None, datetime | None]:
    """(stats JSON, earliest event time, latest event time) from a commit's file statistics.
    `withheld` features (tagged sensitive) get no min or max: their values are never stored."""
    features = {
        f.name: {
            "null_count": int(file_stats["nulls"][f.name]) if f.name in file_stats["nulls"] else None,
            "min": None if f.name in withheld else file_stats["min"].get(f.name),
            "max": None if f.name in withheld else file_stats["max"].get(f.name),
        }
        for f in table.features
    }
    text = json.dumps({"row_count": file_stats["rows"], "features": features}, sort_keys=True)
    ts = table.event_time
    return text, _timestamp(file_stats["min"].get(ts)), _timestamp(file_stats["max"].get(ts))
