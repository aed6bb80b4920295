"""Redis as the online store, through redis-py (hiredis parses replies when installed).

A batch is one MULTI/EXEC transaction, so a reader sees all of it or none of it; state entries
are plain keys beside the vectors, read in the same MGET. Every socket operation has a timeout:
a Redis that is down or stuck gives an `OnlineStoreError` in bounded time, never a hang.

Reads go over one connection per thread, held open, with the command packed and sent directly:
the client's pool and retry layers cost about half of a lookup's round trip (measured:
`bench/online.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import redis

from fs_spark.online.base import OnlineStore, OnlineStoreError

_STATE = "fs-state:"


class RedisOnlineStore(OnlineStore):
    """Vectors by key in one Redis database."""

    kind = "redis"

    def __init__(self, url: str, timeout_seconds: float = 1.0):
        self.url = url
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds, retry_on_timeout=False
        )
        self._local = threading.local()
        self._readers: list[redis.Connection] = []

    def _reader(self) -> redis.Connection:
        """This thread's read connection (connected on first use, and again after a failure)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            pool = self._client.connection_pool
            connection = self._local.connection = pool.connection_class(**pool.connection_kwargs)
            self._readers.append(connection)
        return connection

    def _fail(self, action: str, error: BaseException) -> OnlineStoreError:
        return OnlineStoreError(self.url, action, f"{type(error).__name__}: {error}")

    def read(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self.read_with_state(keys, ())[0]

    def state(self, names: Sequence[str]) -> list[bytes | None]:
        return self.read_with_state((), names)[1]

    def read_with_state(
        self, keys: Sequence[bytes], names: Sequence[str]
    ) -> tuple[list[bytes | None], list[bytes | None]]:
        wanted: list[bytes | str] = [*keys, *(_STATE + name for name in names)]
        if not wanted:
            return [], []
        connection = self._reader()
        try:
            connection.send_packed_command(connection.pack_command("MGET", *wanted), check_health=False)
            found = connection.read_response()
        except (redis.RedisError, OSError) as error:
            connection.disconnect()  # a reply may still be in flight: never read it as the next one's
            raise self._fail("read", error) from None
        return found[: len(keys)], found[len(keys) :]  # bytes: no decoding

    def write(
        self,
        items: Sequence[tuple[bytes, bytes]],
        *,
        delete: Sequence[bytes] = (),
        state: Mapping[str, bytes] | None = None,
    ) -> int:
        try:
            with self._client.pipeline(transaction=True) as pipe:
                if items:
                    pipe.mset(dict(items))
                if delete:
                    pipe.delete(*delete)
                if state:
                    pipe.mset({_STATE + name: value for name, value in state.items()})
                pipe.execute()
        except redis.RedisError as error:
            raise self._fail("write", error) from None
        return len(items)

    def close(self) -> None:
        for connection in self._readers:
            connection.disconnect()
        self._client.close()
