"""An in-process cache of decoded vectors in front of an online store.

Bounded (least recently used out first) with a time-to-live per entry. The reader drops a
table's entries as soon as it sees a new state of that table in the store (a materialization,
a quarantine, a rollback), and it looks at the state at least every `check_interval_ms`: so no
value of a superseded or withheld version is served longer than that interval after the store
changed. Hits, misses and the age of what was served are counted.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    entries: int
    invalidations: int
    max_age_served_seconds: float

    @property
    def hit_rate(self) -> float:
        asked = self.hits + self.misses
        return self.hits / asked if asked else 0.0


class VectorCache:
    """(table, key bytes) -> decoded vector (or None: the store has no value for the key)."""

    def __init__(self, max_entries: int, ttl_seconds: float):
        self._entries: OrderedDict[tuple[str, bytes], tuple[float, int, Any]] = OrderedDict()
        self._generation: dict[str, int] = {}  # a table's entries of an older generation are gone
        self._max = max_entries
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._hits = self._misses = self._invalidations = 0
        self._max_age = 0.0

    def get(self, table: str, key: bytes) -> tuple[bool, Any]:
        """(found, vector)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get((table, key))
            if entry is None or now - entry[0] > self._ttl or entry[1] != self._generation.get(table, 0):
                self._misses += 1
                return False, None
            self._entries.move_to_end((table, key))
            self._hits += 1
            self._max_age = max(self._max_age, now - entry[0])
            return True, entry[2]

    def generation(self, table: str) -> int:
        """Take this before reading the store, and give it to `put`: a value read before an
        invalidation is then never served after it."""
        return self._generation.get(table, 0)

    def put(self, table: str, key: bytes, vector: Any, generation: int) -> None:
        with self._lock:
            self._entries[(table, key)] = (time.monotonic(), generation, vector)
            self._entries.move_to_end((table, key))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def drop_table(self, table: str) -> None:
        """Every entry of `table` stops being served (they age out of the bound in time)."""
        with self._lock:
            self._generation[table] = self._generation.get(table, 0) + 1
            self._invalidations += 1

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self._invalidations, self._max_age)
