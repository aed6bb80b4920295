"""The base of the parts of one store (registry, writer), which share its session, paths,
catalog, principal and write locks."""

from __future__ import annotations

from contextlib import AbstractContextManager

from pyspark.sql import SparkSession

from fs_spark.catalog.catalog import Catalog
from fs_spark.locks import store_lock
from fs_spark.session import SessionSource
from fs_spark.storage.paths import StorePaths


class StorePart:
    def __init__(self, session: SessionSource, paths: StorePaths, catalog: Catalog, user: str, lock_timeout: float):
        self._session = session
        self.paths = paths
        self.catalog = catalog
        self.user = user
        self.lock_timeout = lock_timeout

    @property
    def spark(self) -> SparkSession:
        return self._session()

    def lock(self, name: str) -> AbstractContextManager[None]:
        """The write lock of one feature table."""
        return store_lock(self.paths.lock_dir, name, self.lock_timeout)
