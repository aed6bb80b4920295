"""Write locks for one store root: safe for threads in one process and for processes on one host.

Delta on a local filesystem gives mutual exclusion to writers inside one JVM only
(delta-io/delta#683), and a feature version number must be assigned by exactly one writer, so
every write to a feature table, and every catalog append, holds a named lock: a thread lock for
the threads of this process plus an OS file lock under `<root>/_locks/` for other processes.
Object stores (`s3a://`) have no file lock here: run one writer process per table there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from fs_spark.errors import FsSparkError

_registry_guard = threading.Lock()
_thread_locks: dict[str, threading.RLock] = {}


class LockTimeoutError(FsSparkError):
    def __init__(self, name: str, seconds: float):
        super().__init__(f"could not take the write lock {name!r} within {seconds:.0f}s; another writer holds it")


def _thread_lock(key: str) -> threading.RLock:
    with _registry_guard:
        return _thread_locks.setdefault(key, threading.RLock())


@contextmanager
def store_lock(lock_dir: Path | None, name: str, timeout: float) -> Iterator[None]:
    """Hold the lock `name` of one store (file part skipped when `lock_dir` is None)."""
    key = f"{lock_dir}:{name}"
    thread_lock = _thread_lock(key)
    if not thread_lock.acquire(timeout=timeout):
        raise LockTimeoutError(name, timeout)
    try:
        if lock_dir is None:
            yield
            return
        lock_dir.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(str(lock_dir / f"{name}.lock"), thread_local=False)
        try:
            file_lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise LockTimeoutError(name, timeout) from exc
        try:
            yield
        finally:
            file_lock.release()
    finally:
        thread_lock.release()
