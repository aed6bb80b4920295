"""Which online store a store root uses, as a small picklable value the Spark executors open too."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fs_spark.config import OnlineSettings
from fs_spark.errors import FsSparkError
from fs_spark.online.base import OnlineStore
from fs_spark.storage.paths import StorePaths, local_path


@dataclass(frozen=True)
class OnlineStoreSpec:
    """kind "embedded" (location: the SQLite file) or "redis" (location: the URL)."""

    kind: str
    location: str
    timeout_seconds: float

    @property
    def name(self) -> str:
        """How the catalog and lineage name this store (no credentials)."""
        if self.kind == "redis":
            scheme = "rediss" if self.location.startswith("rediss://") else "redis"
            location = self.location.rpartition("@")[2].removeprefix("redis://").removeprefix("rediss://")
            return f"{scheme}://{location}"
        return f"embedded:{self.location}"

    def exists(self) -> bool:
        """Whether there may be online state (an embedded store not yet created has none)."""
        return self.kind != "embedded" or os.path.exists(self.location)

    def open(self) -> OnlineStore:
        if self.kind == "redis":
            from fs_spark.online.redis_store import RedisOnlineStore

            return RedisOnlineStore(self.location, self.timeout_seconds)
        from fs_spark.online.embedded import EmbeddedOnlineStore

        return EmbeddedOnlineStore(self.location, max(self.timeout_seconds, 10.0))


def online_store_spec(settings: OnlineSettings, paths: StorePaths) -> OnlineStoreSpec:
    if settings.kind == "redis":
        return OnlineStoreSpec("redis", settings.redis_url, settings.timeout_seconds)
    local = local_path(paths.online)
    if local is None:
        raise FsSparkError(
            f"the embedded online store needs a local store root, not {paths.root}: set online.kind to redis"
        )
    return OnlineStoreSpec("embedded", local, settings.timeout_seconds)


def spec_named(name: str, timeout_seconds: float) -> OnlineStoreSpec:
    """The store the catalog names `name` (`OnlineStoreSpec.name`), as another process's settings
    made it: governance reaches every store a table was materialized into, whatever this process
    is configured for. A Redis that needs credentials is reached through this process's own
    `online.redis_url` when that names the same server."""
    if name.startswith(("redis://", "rediss://")):
        return OnlineStoreSpec("redis", name, timeout_seconds)
    return OnlineStoreSpec("embedded", name.removeprefix("embedded:"), max(timeout_seconds, 10.0))
