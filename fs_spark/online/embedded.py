"""The embedded online store: one SQLite database in WAL mode under the store root.

WAL lets any number of reader processes read while one writer writes, each reader seeing the
last committed state; a batch of vectors is one transaction, so a reader never sees part of
one. It needs no server and ships with Python.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watermarks (name TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""


class EmbeddedOnlineStore:
    """Vectors by key in a SQLite file; one connection per thread."""

    def __init__(self, path: str | Path, timeout_seconds: float = 10.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout_seconds
        self._local = threading.local()
        with self._connection() as connection:
            connection.executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
            self._local.connection = connection
        return connection

    def write(self, items: Iterable[tuple[bytes, bytes]], watermark: tuple[str, int] | None = None) -> int:
        """Put every (key, value) and, with it, the watermark, in one transaction."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            written = connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", items).rowcount
            if watermark is not None:
                connection.execute("INSERT OR REPLACE INTO watermarks VALUES (?, ?)", watermark)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return written

    def read(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """The values of `keys`, in order; None where a key has none."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        found = dict(self._connection().execute(f"SELECT key, value FROM vectors WHERE key IN ({marks})", keys))
        return [found.get(key) for key in keys]

    def watermark(self, name: str) -> int | None:
        row = self._connection().execute("SELECT version FROM watermarks WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
