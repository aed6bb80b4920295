"""Cheap facts about a Delta table's log, without a Spark job where the filesystem allows."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pyspark.sql import SparkSession

from fs_spark.session import hadoop_conf, jvm
from fs_spark.storage.paths import local_path

_COMMIT_RE = re.compile(r"^(\d{20})\.json$")


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest commit version, or None when there is no table at `path`: a listing of
    its `_delta_log`, from Python on a local filesystem, through Hadoop's filesystem elsewhere
    (milliseconds, where asking Delta costs a snapshot's Spark job)."""
    local = local_path(path)
    if local is not None:
        return local_latest_version(local)
    latest = int(_log_files(spark).latestVersion(hadoop_conf(spark), path))
    return latest if latest >= 0 else None


def local_latest_version(folder: str) -> int | None:
    """The latest commit version of the Delta table in a local folder, from a listing of its log."""
    try:
        names = os.listdir(os.path.join(folder, "_delta_log"))
    except FileNotFoundError:
        return None
    versions = [int(m.group(1)) for n in names if (m := _COMMIT_RE.match(n))]
    return max(versions) if versions else None


def _commit_lines(spark: SparkSession, path: str, version: int) -> list[str]:
    name = f"_delta_log/{version:020d}.json"
    local = local_path(path)
    if local is not None:
        with open(os.path.join(local, name)) as commit:
            return commit.read().splitlines()
    return str(_log_files(spark).commit(hadoop_conf(spark), path, version)).splitlines()


def commit_actions(spark: SparkSession, path: str, version: int) -> list[dict[str, Any]]:
    """Every action of one commit (commitInfo, add, remove, ...), as parsed JSON."""
    return [json.loads(line) for line in _commit_lines(spark, path, version)]


def _log_files(spark: SparkSession) -> Any:
    """fs_spark's reader of Delta logs on Hadoop filesystems (jvm/fs_spark/DeltaLogFiles.java)."""
    return jvm(spark).fs_spark.DeltaLogFiles


def read_text(spark: SparkSession, uri: str) -> str | None:
    """A small file's text through Hadoop's FileSystem (any store Spark reaches); None if absent."""
    local = local_path(uri)
    if local is not None:
        try:
            with open(local, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
    view = jvm(spark)
    path = view.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(hadoop_conf(spark))
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        return str(view.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


@dataclass(frozen=True)
class Commit:
    version: int
    timestamp: datetime  # aware UTC, as Delta's history gives it: the commit file's modification time
    user_metadata: str | None
    metrics: dict[str, int]  # Delta's operationMetrics: numOutputRows, numOutputBytes, numFiles, ...


def latest_commit(spark: SparkSession, path: str) -> Commit:
    """The table's latest commit, from its log file (no Spark job): its time is the file's
    modification time, as Delta's history gives it."""
    version = latest_version(spark, path)
    if version is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    local = local_path(path)
    if local is not None:
        millis = os.stat(os.path.join(local, "_delta_log", f"{version:020d}.json")).st_mtime_ns // 1_000_000
    else:
        millis = int(_log_files(spark).commitTime(hadoop_conf(spark), path, version))
    info = _commit_info(spark, path, version)
    return Commit(version, datetime.fromtimestamp(millis / 1000, UTC), info.get("userMetadata"), _metrics(info))


def commit_metrics(spark: SparkSession, path: str, version: int) -> dict[str, int]:
    """Delta's own figures of one commit (`operationMetrics`: numOutputRows, numOutputBytes,
    numFiles, ...), as integers; empty when the commit recorded none."""
    return _metrics(_commit_info(spark, path, version))


def _commit_info(spark: SparkSession, path: str, version: int) -> dict[str, Any]:
    for line in _commit_lines(spark, path, version):
        info = json.loads(line).get("commitInfo")
        if info is not None:
            return dict(info)
    return {}


def _metrics(info: dict[str, Any]) -> dict[str, int]:
    return {k: int(v) for k, v in (info.get("operationMetrics") or {}).items() if str(v).isdigit()}


def added_files(spark: SparkSession, path: str, version: int) -> list[str]:
    """The URIs of the data files one commit added (its `add` actions; their paths are
    URL-encoded and relative to the table unless absolute)."""
    found = []
    for add in _adds(spark, path, version):
        relative = unquote(add["path"])
        found.append(relative if "://" in relative else f"{path.rstrip('/')}/{relative}")
    return found


def _adds(spark: SparkSession, path: str, version: int) -> list[dict[str, Any]]:
    """The `add` actions of one commit."""
    return [add for line in _commit_lines(spark, path, version) if (add := json.loads(line).get("add"))]


def added_file_stats(spark: SparkSession, path: str, version: int) -> dict[str, Any]:
    """Rows, per-column min, max and null count of the files one commit added, from the
    statistics Delta wrote into the commit (no pass over the data).

    Delta keeps min/max of strings to their first 32 characters.
    """
    rows = 0
    low: dict[str, Any] = {}
    high: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for add in _adds(spark, path, version):
        if not add.get("stats"):
            continue
        stats = json.loads(add["stats"])
        rows += stats.get("numRecords", 0)
        for column, value in (stats.get("minValues") or {}).items():
            low[column] = value if column not in low else min(low[column], value, key=_order)
        for column, value in (stats.get("maxValues") or {}).items():
            high[column] = value if column not in high else max(high[column], value, key=_order)
        for column, value in (stats.get("nullCount") or {}).items():
            nulls[column] = nulls.get(column, 0) + value
    return {"rows": rows, "min": low, "max": high, "nulls": nulls}


def _order(value: Any) -> Any:
    """NaN sorts above every number, as in Spark."""
    if value == "NaN" or (isinstance(value, float) and value != value):
        return float("inf")
    return value
