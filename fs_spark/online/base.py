"""What every online store does: vectors by key, small named state beside them, atomic batches.

Strategies (the embedded SQLite file, Redis) store bytes only; the encoding, the ordering of
rows and the meaning of the state live here and in `encoding`, so every store holds the same
bytes and behaves the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from fs_spark.errors import FsSparkError
from fs_spark.online.encoding import value_order


class OnlineStoreError(FsSparkError):
    """The online store cannot be reached or refused an operation."""

    def __init__(self, store: str, action: str, cause: BaseException | str):
        self.store = store
        super().__init__(f"online store {store}: {action} failed: {cause}")


class OnlineStore(ABC):
    """Bytes by key, plus named state (watermarks, withheld versions), changed in atomic batches."""

    kind: str

    @abstractmethod
    def read(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """The values of `keys`, in order; None where a key has none."""

    @abstractmethod
    def state(self, names: Sequence[str]) -> list[bytes | None]:
        """The named state entries, in order; None where one is unset."""

    @abstractmethod
    def write(
        self,
        items: Sequence[tuple[bytes, bytes]],
        *,
        delete: Sequence[bytes] = (),
        state: Mapping[str, bytes] | None = None,
    ) -> int:
        """Put `items`, remove `delete` and set `state`, all in one atomic step: a reader sees
        all of it or none of it. Returns the number of items put."""

    @abstractmethod
    def close(self) -> None: ...

    def read_with_state(
        self, keys: Sequence[bytes], names: Sequence[str]
    ) -> tuple[list[bytes | None], list[bytes | None]]:
        """Values and state together (one round trip where the store allows)."""
        return self.read(keys), self.state(names)

    def write_newer(self, items: Sequence[tuple[bytes, bytes]]) -> int:
        """Put each item whose row is later (event time, then version) than the stored one.
        Only one materialization of a table runs at a time, so read-then-write does not race."""
        if not items:
            return 0
        stored = self.read([key for key, _ in items])
        newer = [
            item
            for item, old in zip(items, stored, strict=True)
            if old is None or value_order(item[1]) > value_order(old)
        ]
        return self.write(newer) if newer else 0

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
