"""Write locks for one store root: for the threads of one process, the processes of one host,
and, on S3, the hosts that share a bucket.

Delta gives mutual exclusion to commits (on a local filesystem within one JVM only,
delta-io/delta#683), but a feature version number must be assigned by exactly one writer, and
a write's catalog row must follow its Delta commit in the same order, so every write to a
feature table, and every catalog append, holds a named lock: a thread lock for the threads of
this process, then the root's own: an OS file lock under `<root>/_locks/` on a local root (the
fast path on one host), or a lease object under `<root>/_locks/` on `s3a://`
(`fs_spark.storage.s3_lease`). Other filesystems get the thread lock only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from filelock import FileLock, Timeout

from fs_spark.config import S3Settings
from fs_spark.errors import LockTimeoutError
from fs_spark.storage.paths import StorePaths, local_path

_registry_guard = threading.Lock()
_thread_locks: dict[str, threading.RLock] = {}


def _thread_lock(key: str) -> threading.RLock:
    with _registry_guard:
        return _thread_locks.setdefault(key, threading.RLock())


class LockSpace(Protocol):
    """Where the locks of one root live, for other processes."""

    def hold(self, name: str, timeout: float) -> AbstractContextManager[None]: ...


class FileLocks:
    """OS file locks in a local folder: other processes on this host."""

    def __init__(self, folder: Path):
        self.folder = folder

    @contextmanager
    def hold(self, name: str, timeout: float) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        file_lock = FileLock(str(self.folder / f"{name}.lock"), thread_local=False)
        try:
            file_lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise LockTimeoutError(name, timeout) from exc
        try:
            yield
        finally:
            file_lock.release()


class Locks:
    """The named write locks of one store root, each taken within `timeout` seconds."""

    def __init__(self, key: str, space: LockSpace | None, timeout: float):
        self.key = key
        self.space = space
        self.timeout = timeout

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        thread_lock = _thread_lock(f"{self.key}:{name}")
        if not thread_lock.acquire(timeout=self.timeout):
            raise LockTimeoutError(name, self.timeout)
        try:
            if self.space is None:
                yield
            else:
                with self.space.hold(name, self.timeout):
                    yield
        finally:
            thread_lock.release()


def store_locks(paths: StorePaths, s3: S3Settings, timeout: float) -> Locks:
    """The locks of the store at `paths`: file locks on a local root, leases on `s3a://`."""
    local = local_path(paths.root)
    space: LockSpace | None = None
    if local is not None:
        space = FileLocks(Path(local) / "_locks")
    elif paths.root.startswith("s3a://"):
        from fs_spark.storage.s3_lease import S3Leases

        space = S3Leases(f"{paths.root}/_locks", s3)
    return Locks(paths.root, space, timeout)
