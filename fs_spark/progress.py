"""Progress of long Spark stages on the terminal, for the command line and jobs.

Spark's own console progress bar needs `spark.ui.showConsoleProgress` set before the session
starts; this works with any session, by polling the status tracker from a daemon thread and
printing a line per running stage when its completed-task count moves.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import TextIO

from pyspark.sql import SparkSession


@contextmanager
def stage_progress(spark: SparkSession, out: TextIO = sys.stderr, every: float = 1.0):
    """Print `[stage 12] 37/200 tasks` lines while the body runs."""
    tracker = spark.sparkContext.statusTracker()
    stop = threading.Event()
    shown: dict[int, int] = {}

    def poll() -> None:
        while not stop.wait(every):
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is None or shown.get(stage_id) == info.numCompletedTasks:
                    continue
                shown[stage_id] = info.numCompletedTasks
                print(
                    f"[stage {stage_id}] {info.numCompletedTasks}/{info.numTasks} tasks ({info.name[:60]})",
                    file=out,
                    flush=True,
                )

    thread = threading.Thread(target=poll, name="fs_spark-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
