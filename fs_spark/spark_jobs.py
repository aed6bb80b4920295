"""Labels on Spark jobs, so the Spark UI shows which fs_spark operation and run each job serves."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from fs_spark.provenance import RunRef

_DESCRIPTION = "spark.job.description"
_GROUP = "spark.jobGroup.id"


def describe(text: str, run: RunRef | None) -> str:
    """A job description naming the operation and, when there is one, the run and experiment."""
    if run is None or run.run_id is None:
        return text
    return f"{text} [run {run.run_id}, experiment {run.experiment_id}]"


@contextmanager
def described(spark: SparkSession, text: str) -> Iterator[None]:
    """Describe the jobs started inside the block (this thread only), then restore the old text."""
    context = spark.sparkContext
    before = context.getLocalProperty(_DESCRIPTION)
    context.setLocalProperty(_DESCRIPTION, text)
    try:
        yield
    finally:
        context.setLocalProperty(_DESCRIPTION, before)  # type: ignore[arg-type]


@contextmanager
def job_group(spark: SparkSession, group_id: str, text: str) -> Iterator[None]:
    """Put the jobs started inside the block (this thread only) in one Spark job group."""
    context = spark.sparkContext
    before = (context.getLocalProperty(_GROUP), context.getLocalProperty(_DESCRIPTION))
    context.setJobGroup(group_id, text, interruptOnCancel=False)
    try:
        yield
    finally:
        context.setLocalProperty(_GROUP, before[0])  # type: ignore[arg-type]
        context.setLocalProperty(_DESCRIPTION, before[1])  # type: ignore[arg-type]
