"""VACUUM of feature tables, guarded: files a recorded training set still reads are kept.

Delta's VACUUM deletes data files no longer in the table's current state and older than the
retention period. Feature tables only grow, so that happens after a compaction (OPTIMIZE) or a
restore; the files it would delete may still be the only copy of a Delta version that a training
set's manifest points at. The guard asks Delta which files it would delete (DRY RUN), lists the
files each recorded training set reads from the table, and refuses when they meet.

A scheduled pass cannot stop at the first held file, or one old training set would keep a
table from ever shedding anything: with `keep_held` it deletes the files Delta would delete
except those a training set needs, and reports what holds the rest. Delta's VACUUM has no way to
spare single files, so those deletions go through Hadoop's FileSystem, as VACUUM's own do.
"""

from __future__ import annotations

from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException, IllegalArgumentException
from pyspark.sql import SparkSession

from fs_spark.errors import RetentionGuardError, RetentionPeriodError
from fs_spark.session import hadoop_conf, jvm
from fs_spark.storage.paths import local_path, sql_path
from fs_spark.training.manifest import TrainingSetManifest


@dataclass(frozen=True)
class VacuumResult:
    table: str
    deleted_files: int
    expired: tuple[str, ...]  # training sets whose inputs a forced VACUUM removed
    kept_files: int = 0  # files Delta would have deleted, kept for training sets (keep_held)
    held_by: tuple[str, ...] = ()  # the training sets, model versions and deployments that hold them


def _normal(uri: str) -> str:
    local = local_path(uri)
    return local if local is not None else uri


def _retain(hours: float | None) -> str:
    return "" if hours is None else f" RETAIN {float(hours)} HOURS"


def files_to_delete(spark: SparkSession, table: str, path: str, retention_hours: float | None) -> dict[str, str]:
    """Normalised path -> URI of every file VACUUM would delete. A retention Delta refuses is
    refused here, before anything is deleted, with fs_spark's error."""
    if retention_hours is not None and retention_hours < 0:
        raise RetentionPeriodError(table, retention_hours, "a retention period cannot be negative")
    try:
        rows = spark.sql(f"VACUUM {sql_path(path)}{_retain(retention_hours)} DRY RUN").collect()
    except (IllegalArgumentException, Py4JJavaError) as exc:
        if "retention" not in str(exc).lower():
            raise
        raise RetentionPeriodError(
            table,
            retention_hours or 0.0,
            "it is shorter than the table's delta.deletedFileRetentionDuration, which Delta checks",
        ) from None
    return {_normal(r[0]): r[0] for r in rows}


def _delete(spark: SparkSession, uris: list[str]) -> None:
    view, conf = jvm(spark), hadoop_conf(spark)
    for uri in uris:
        path = view.org.apache.hadoop.fs.Path(uri)
        path.getFileSystem(conf).delete(path, False)


def files_needed(spark: SparkSession, path: str, manifests: list[TrainingSetManifest]) -> dict[str, set[str]]:
    """Training set ID -> the files of `path` it reads (inputs already gone are skipped)."""
    needed: dict[str, set[str]] = {}
    for manifest in manifests:
        for lookup in manifest.lookups:
            if lookup.storage_path != path or lookup.delta_version is None:
                continue
            try:
                files = spark.read.format("delta").option("versionAsOf", lookup.delta_version).load(path).inputFiles()
            except (AnalysisException, Py4JJavaError):  # the version left the Delta log: nothing to protect
                continue
            needed.setdefault(manifest.training_set_id, set()).update(_normal(f) for f in files)
    return needed


def vacuum(
    spark: SparkSession,
    table: str,
    paths: list[str],
    manifests: list[TrainingSetManifest],
    retention_hours: float | None = None,
    force: bool = False,
    held_by=lambda training_sets: ((), ()),
    keep_held: bool = False,
) -> VacuumResult:
    """VACUUM every Delta table of `table` (one per definition version), unless that deletes a
    file a training set needs: then refuse, or with `keep_held` delete all but those files, or
    with `force` VACUUM anyway. `held_by(training_set_ids)` gives the model versions and
    deployments that hold those training sets."""
    plans = []
    holders: set[str] = set()
    conflicting: set[str] = set()
    for path in paths:
        doomed = files_to_delete(spark, table, path, retention_hours)
        for training_set_id, files in files_needed(spark, path, manifests).items():
            clash = doomed.keys() & files
            if clash:
                holders.add(training_set_id)
                conflicting |= clash
        plans.append((path, doomed))
    models, deployments = held_by(sorted(holders)) if holders else ((), ())
    if holders and not force and not keep_held:
        raise RetentionGuardError(table, sorted(holders), len(conflicting), models, deployments)
    deleted = 0
    for path, doomed in plans:
        if not doomed:
            continue
        if keep_held and conflicting:
            unheld = [uri for normal, uri in sorted(doomed.items()) if normal not in conflicting]
            _delete(spark, unheld)
            deleted += len(unheld)
        else:
            spark.sql(f"VACUUM {sql_path(path)}{_retain(retention_hours)}").collect()
            deleted += len(doomed)
    if keep_held:
        holding = (
            *(f"training set {t}" for t in sorted(holders)),
            *(f"model version {m}" for m in models),
            *(f"deployment {d}" for d in deployments),
        )
        return VacuumResult(table, deleted, (), len(conflicting), holding)
    return VacuumResult(table, deleted, tuple(sorted(holders)))
