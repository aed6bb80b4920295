"""The commit fence of feature-table writes on `s3a://` roots.

A write numbers its feature version from what it reads under the table's lease. If it stalls
past the lease (a long pause, a partition), another writer may take the lock over and commit;
the stalled one must then not commit at all, or two versions share a number. The fence is in
the Delta log store (`jvm/fs_spark/S3ConditionalLogStore.java`): the write names the Delta
version its commit should take, the version after the last one it saw under the lease, and S3's
conditional PUT lets exactly one writer create that log entry. Delta's retry at a later version
is refused unless every commit in between changed no data (a VACUUM's, an OPTIMIZE's, a table
property's), which cannot make two versions share a number. Other filesystems hold their writers
with OS or thread locks, which a stalled process keeps, so they need no fence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from fs_spark.session import jvm

FENCED = "FS_SPARK_FENCED"  # the log store's marker of a refused commit


@contextmanager
def only_commit(spark: SparkSession, path: str, version: int) -> Iterator[None]:
    """While inside, a commit to the Delta table at `path` may take Delta version `version`, or a
    later one past commits that changed no data."""
    if not path.startswith("s3a://"):
        yield
        return
    store = jvm(spark).fs_spark.S3ConditionalLogStore
    store.expectNextCommit(path, version)
    try:
        yield
    finally:
        store.clearExpectation(path)


def was_fenced(error: BaseException) -> bool:
    return FENCED in str(error)
