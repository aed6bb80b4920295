"""One updating line on the terminal for long commands and jobs: the fs_spark step under way
("validating", "joining", "checking drift 12/20 features"), the tasks of its Spark stages, rows
where known, and the elapsed time.

fs_spark's code marks its steps with `step(...)`, a no-op unless a `StepProgress` is active (the
command line and the jobs start one). The Spark part comes from Spark's own status tracker,
polled from a daemon thread, so it works with any session, including one started by
spark-submit. On a terminal the line is drawn by tqdm; otherwise (a log, spark-submit's output) a
plain line is printed every `plain_every` seconds while a step runs, so a long command is never
silent; `quiet` shows nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

_active: StepProgress | None = None
_active_lock = threading.Lock()


def step(name: str, done: int | None = None, total: int | None = None, rows: int | None = None) -> None:
    """Say which step runs now (and how far it is, when the step counts its own units)."""
    progress = _active
    if progress is not None:
        progress.show(name, done, total, rows)


class StepProgress:
    """The line itself: `enabled` True draws it (the default on a terminal), False prints plain
    lines every `plain_every` seconds (the default elsewhere), and `quiet` shows nothing."""

    def __init__(
        self,
        out: TextIO = sys.stderr,
        enabled: bool | None = None,
        every: float = 0.5,
        quiet: bool = False,
        plain_every: float = 10.0,
    ):
        self.enabled = not quiet and (out.isatty() if enabled is None else enabled)
        self.plain = not quiet and not self.enabled
        self._out = out
        self._bar = tqdm(
            total=0,
            file=out,
            disable=not self.enabled,
            bar_format="{desc} [{elapsed}]",
            dynamic_ncols=True,
            leave=False,
        )
        self._name = ""
        self._own: tuple[int | None, int | None, int | None] = (None, None, None)
        self._every = every
        self._plain_every = plain_every
        self._started = time.monotonic()
        self._printed = self._started
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.enabled or self.plain

    def show(self, name: str, done: int | None = None, total: int | None = None, rows: int | None = None) -> None:
        with self._lock:
            self._name, self._own = name, (done, total, rows)
            self._draw(_spark_tasks())

    def _describe(self, tasks: tuple[int, int] | None) -> str | None:
        if not self._name and tasks is None:
            return None
        done, total, rows = self._own
        parts = [self._name or "working"]
        if done is not None and total is not None:
            parts[0] += f" {done}/{total}"
        if tasks is not None:
            parts.append(f"{tasks[0]}/{tasks[1]} tasks")
        if rows is not None:
            parts.append(f"{rows:,} rows")
        return " · ".join(parts)

    def _draw(self, tasks: tuple[int, int] | None) -> None:
        text = self._describe(tasks)
        if text is None:
            return
        if self.enabled:
            self._bar.set_description_str(text, refresh=True)
            return
        now = time.monotonic()
        if self.plain and now - self._printed >= self._plain_every:
            self._printed = now
            print(f"fs_spark: {text} [{now - self._started:.0f} s]", file=self._out, flush=True)

    def poll(self, stop: threading.Event) -> None:
        while not stop.wait(self._every):
            with self._lock:
                self._draw(_spark_tasks())

    def close(self) -> None:
        self._bar.close()


def _spark_tasks() -> tuple[int, int] | None:
    """Completed and total tasks of the running stages of the process's Spark context, if any.
    A context still being built (it is registered before its JVM side exists) or one whose JVM
    is gone (Ctrl-C) has none to tell."""
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    if context is None or getattr(context, "_jsc", None) is None:
        return None
    try:
        tracker = context.statusTracker()
        done = total = 0
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                done, total = done + info.numCompletedTasks, total + info.numTasks
    except Exception:  # the JVM went away between two polls
        return None
    return (done, total) if total else None


@contextmanager
def progress_line(
    out: TextIO = sys.stderr,
    enabled: bool | None = None,
    every: float = 0.5,
    quiet: bool = False,
    plain_every: float = 10.0,
) -> Iterator[StepProgress]:
    """Show the line while the body runs; nested or concurrent uses keep the first."""
    global _active
    progress = StepProgress(out, enabled, every, quiet, plain_every)
    with _active_lock:
        owner = _active is None
        if owner:
            _active = progress
    stop = threading.Event()
    thread = threading.Thread(target=progress.poll, args=(stop,), name="fs_spark-progress", daemon=True)
    if owner and progress.active:
        thread.start()
    try:
        yield progress
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=5)
        progress.close()
        if owner:
            with _active_lock:
                _active = None
