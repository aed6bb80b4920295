"""Cheap facts about a Delta table's log, without a Spark job where the filesystem allows."""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

_COMMIT_RE = re.compile(r"^(\d{20})\.json$")


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest commit version, or None when there is no table at `path`.

    On a local filesystem this lists `_delta_log` (milliseconds); elsewhere it asks Delta.
    """
    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        log = os.path.join(parsed.path if parsed.scheme else path, "_delta_log")
        try:
            names = os.listdir(log)
        except FileNotFoundError:
            return None
        versions = [int(m.group(1)) for n in names if (m := _COMMIT_RE.match(n))]
        return max(versions) if versions else None
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    return DeltaTable.forPath(spark, path).history(1).first().version
