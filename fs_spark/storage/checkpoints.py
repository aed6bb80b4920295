"""Delta checkpoints of feature tables, written by fs_spark after a commit instead of inside it.

Delta writes a checkpoint inside the commit that makes one due (`delta.checkpointInterval`),
before the write returns: 1 to 4 s on 2 cores (the first of a process is the slowest), which
the micro-batch that drew it passes on to every row it carries, offline and online. That was
the whole tail of a stream's freshness. So feature tables are created with an interval Delta
almost never reaches (`TABLE_CHECKPOINT_INTERVAL`, a backstop for writers other than
fs_spark), and fs_spark checkpoints a table itself once `CHECKPOINT_EVERY` commits have passed
since its last checkpoint: a batch write waits for it, as it waited for Delta's; a stream hands
it to a thread of its own and goes on with the next micro-batch.

A checkpoint only summarises commits already in the log, so one written late, twice or by two
processes at once changes no reader's answer; readers replay the commits after it. Tables made
by an older fs_spark keep Delta's interval of 100 (changing it would be a commit of no feature
version), so Delta still checkpoints inside their commits.
"""

from __future__ import annotations

import json
import logging
import threading

from pyspark.sql import SparkSession

from fs_spark.session import jvm
from fs_spark.storage.delta_log import read_text

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 100  # readers replay at most this many small JSON commits after a checkpoint
TABLE_CHECKPOINT_INTERVAL = 1000  # Delta's own, inside the commit: for writers other than fs_spark


def last_checkpoint(spark: SparkSession, path: str) -> int | None:
    """The version of the table's newest checkpoint (its `_last_checkpoint` pointer), or None."""
    text = read_text(spark, f"{path.rstrip('/')}/_delta_log/_last_checkpoint")
    if not text:
        return None
    try:
        return int(json.loads(text)["version"])
    except (ValueError, KeyError, TypeError):
        return None  # a pointer being rewritten: Delta itself then lists the log


def write_checkpoint(spark: SparkSession, path: str) -> None:
    """Checkpoint the table's latest version, through Delta's own checkpoint writer."""
    delta_log = jvm(spark).org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    delta_log.checkpoint()


class Checkpointer:
    """Keeps each table's log at most about `every` commits past a checkpoint.

    One per store; safe to call from a stream's micro-batch thread and a user's thread at once.
    At most one checkpoint of a table runs at a time; a commit that finds one running leaves the
    next to a later commit."""

    def __init__(self, every: int = CHECKPOINT_EVERY) -> None:
        self.every = every
        self._lock = threading.Lock()
        self._last: dict[str, int] = {}  # table path -> newest checkpoint version known here
        self._running: dict[str, threading.Thread | None] = {}  # None: written on a caller's thread

    def after_commit(self, spark: SparkSession, path: str, version: int, *, wait: bool) -> None:
        """Checkpoint `path` if `version` is `every` commits or more past its last checkpoint:
        now (`wait`), or on a thread of its own."""
        with self._lock:
            if path in self._running:
                return
            if path not in self._last:
                self._last[path] = last_checkpoint(spark, path) or 0
            if version - self._last[path] < self.every:
                return
            thread = None
            if not wait:
                thread = threading.Thread(
                    target=self._checkpoint,
                    args=(spark, path, version),
                    name=f"fs-spark checkpoint {path}",
                    daemon=True,
                )
            self._running[path] = thread
        if thread is None:
            self._checkpoint(spark, path, version)
        else:
            thread.start()

    def _checkpoint(self, spark: SparkSession, path: str, version: int) -> None:
        try:
            write_checkpoint(spark, path)
            written = last_checkpoint(spark, path)
            problem = None if written is not None and written >= version else "Delta wrote none (its log says why)"
        except Exception as error:
            written, problem = None, str(error)
        if problem is not None:  # the commit stands; readers replay a longer log until the next try
            log.warning("fs_spark: the Delta checkpoint of %s at version %d failed: %s", path, version, problem)
        with self._lock:
            if problem is None and written is not None:
                self._last[path] = written
            self._running.pop(path, None)

    def wait(self) -> None:
        """Block until every checkpoint started in the background is written."""
        with self._lock:
            running = list(self._running.values())
        for thread in running:
            if thread is not None:
                thread.join()
