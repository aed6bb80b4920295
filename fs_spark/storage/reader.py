"""Exact reads of one feature version through Delta time travel, with clear errors when the
version's files or log entries are gone."""

from __future__ import annotations

import os
from collections.abc import Callable

import deltalake
from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fs_spark.catalog.records import FeatureVersion
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import FeatureNotFoundError, VersionExpiredError, first_line
from fs_spark.session import hadoop_conf, jvm
from fs_spark.storage.layout import VERSION_COLUMN
from fs_spark.storage.paths import local_path


def missing_files(spark: SparkSession, files: list[str]) -> list[str]:
    missing = []
    conf = hadoop_conf(spark)
    for uri in files:
        local = local_path(uri)
        if local is not None:
            if not os.path.exists(local):
                missing.append(uri)
        else:
            jpath = jvm(spark).org.apache.hadoop.fs.Path(uri)
            if not jpath.getFileSystem(conf).exists(jpath):
                missing.append(uri)
    return missing


def readable_delta_version(
    path: str,
    version: FeatureVersion | None,
    following: FeatureVersion | None,
    latest: Callable[[str], int | None],
) -> int:
    """The newest Delta commit that still shows exactly `version`'s rows.

    Feature tables are append-only and only fs_spark appends, so the commits between one
    feature version and the next (OPTIMIZE, column changes) do not change the data. Reading the
    newest of them reads compacted files, and still works after VACUUM removed the originals.
    `latest(path)` gives the table's latest Delta version (through Spark or delta-rs).
    """
    if version is None:
        return 0
    if following is not None:
        return following.delta_version - 1
    return max(version.delta_version, latest(path) or 0)


def load_delta_version(
    spark: SparkSession, path: str, delta_version: int, expired: Callable[[str], Exception]
) -> DataFrame:
    """The Delta table at `path` as of `delta_version`, checked readable: its log entry and every
    data file it lists still exist. Otherwise raises `expired(detail)`, so the caller names
    what was lost instead of Spark failing later on a missing file."""
    try:
        frame = spark.read.format("delta").option("versionAsOf", delta_version).load(path)
        files = _files_at(spark, frame, path, delta_version)
    except (AnalysisException, Py4JJavaError) as exc:
        raise expired(f"the Delta log no longer holds version {delta_version} ({first_line(exc)})") from None
    missing = missing_files(spark, files)
    if missing:
        raise expired(f"{len(missing)} data file(s) are missing (Delta version {delta_version}), e.g. {missing[0]}")
    return frame


def rows_up_to(frame: DataFrame, number: int | None, excluded_versions: tuple[int, ...] = ()) -> DataFrame:
    """The rows of feature versions 1..`number` of a feature table read at some Delta version,
    less `excluded_versions` (the writes a rollback took out).

    The Delta version a read uses may hold rows of a later write whose catalog row is not
    there yet (a writer between its two commits, or one that died there): only the catalog
    says which versions exist, so the version column decides, never the Delta version alone.
    Delta's per-file statistics on that column let the filter skip files. No number (nothing
    written yet): no rows."""
    if number is None:
        return frame.where(F.lit(False))
    kept = F.col(VERSION_COLUMN) <= F.lit(number)
    if excluded_versions:
        kept = kept & ~F.col(VERSION_COLUMN).isin(list(excluded_versions))
    return frame.where(kept)


def read_version(
    spark: SparkSession,
    table: FeatureTable,
    version: FeatureVersion | None,
    delta_version: int,
    path: str,
    features: list[str] | None = None,
    include_version_column: bool = False,
    excluded_versions: tuple[int, ...] = (),
) -> DataFrame:
    """The table's rows as of `version` (all rows written up to and including it, less those of
    `excluded_versions`, the writes a rollback took out), read at `delta_version` (see
    `readable_delta_version`)."""
    wanted = list(features) if features is not None else list(table.feature_names)
    unknown = [name for name in wanted if name not in table.feature_names]
    if unknown:
        raise FeatureNotFoundError(table.name, unknown, table.feature_names)
    label = version.version_id if version else "0 (empty)"
    frame = load_delta_version(
        spark, path, delta_version, lambda detail: VersionExpiredError(table.name, label, detail)
    )
    frame = rows_up_to(frame, version.version_number if version else 0, excluded_versions)
    present = set(frame.columns)
    columns = [*table.keys, table.event_time] + ([VERSION_COLUMN] if include_version_column else [])
    selected = [F.col(c) for c in columns]
    for name in wanted:
        dtype = table.feature(name).dtype.spark_type
        selected.append(F.col(name).cast(dtype).alias(name) if name in present else F.lit(None).cast(dtype).alias(name))
    return frame.select(selected)


def _files_at(spark: SparkSession, frame: DataFrame, path: str, delta_version: int) -> list[str]:
    """The data files of a Delta version: from its log through delta-rs where the filesystem is
    local (milliseconds), else from Spark's snapshot of it."""
    local = local_path(path)
    if local is not None:
        try:
            return deltalake.DeltaTable(local, version=delta_version).file_uris()
        except Exception:  # a log or protocol delta-rs cannot read: Spark's snapshot says
            pass
    return frame.inputFiles()
