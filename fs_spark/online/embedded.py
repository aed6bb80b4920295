"""The embedded online store: one SQLite database in WAL mode under the store root.

WAL lets any number of reader processes read while one writer writes, each reader seeing the
last committed state; a batch is one transaction, so a reader never sees part of one. It needs
no server and ships with Python. (Chosen over LMDB by measurement: `bench/online.py`.)
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from fs_spark.online.base import OnlineStore, OnlineStoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
"""


class EmbeddedOnlineStore(OnlineStore):
    """Vectors by key in a SQLite file; one connection per thread."""

    kind = "embedded"

    def __init__(self, path: str | Path, timeout_seconds: float = 10.0):
        self.path = Path(path)
        self._timeout = timeout_seconds
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise OnlineStoreError(str(self.path), "open", error) from None

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
            self._local.connection = connection
        return connection

    def write(
        self,
        items: Sequence[tuple[bytes, bytes]],
        *,
        delete: Sequence[bytes] = (),
        state: Mapping[str, bytes] | None = None,
    ) -> int:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", items)
            connection.executemany("DELETE FROM vectors WHERE key = ?", [(key,) for key in delete])
            connection.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", list((state or {}).items()))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return len(items)

    def read(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        if len(keys) == 1:
            row = self._connection().execute("SELECT value FROM vectors WHERE key = ?", (keys[0],)).fetchone()
            return [None if row is None else row[0]]
        marks = ",".join("?" * len(keys))
        found = dict(self._connection().execute(f"SELECT key, value FROM vectors WHERE key IN ({marks})", keys))
        return [found.get(key) for key in keys]

    def state(self, names: Sequence[str]) -> list[bytes | None]:
        if not names:
            return []
        marks = ",".join("?" * len(names))
        found = dict(self._connection().execute(f"SELECT name, value FROM state WHERE name IN ({marks})", names))
        return [found.get(name) for name in names]

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
