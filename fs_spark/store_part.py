"""The base of the parts of one store (registry, writer), which share its session, paths,
catalog, principal and write locks."""

from __future__ import annotations

from contextlib import AbstractContextManager

from pyspark.sql import SparkSession

from fs_spark.catalog.catalog import Catalog
from fs_spark.session import SessionSource
from fs_spark.storage.paths import StorePaths


class StorePart:
    def __init__(self, session: SessionSource, paths: StorePaths, catalog: Catalog, user: str):
        self._session = session
        self.paths = paths
        self.catalog = catalog
        self.user = user

    @property
    def spark(self) -> SparkSession:
        return self._session()

    def lock(self, name: str) -> AbstractContextManager[None]:
        """The write lock of one feature table."""
        return self.catalog.locks.hold(name)
