"""Reads without Spark in one call, for a laptop or a notebook: a store's training set or table.

>>> import fs_spark
>>> rows = fs_spark.open_training_set("ts-...", root="./fs_store")  # doctest: +SKIP
>>> rows.to_pandas()                                                   # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime

from fs_spark.config import Settings
from fs_spark.local.rows import TableRows, TrainingSetRows
from fs_spark.store import FeatureStore


def open_training_set(
    training_set_id: str,
    root: str | None = None,
    *,
    settings: Settings | None = None,
    user: str | None = None,
    verify: bool = True,
) -> TrainingSetRows:
    """A stored training set, read through delta-rs at the Delta version its manifest records
    (see `FeatureStore.open_training_set`). The principal is `user`, else the settings'."""
    return FeatureStore(root, settings=settings, user=user).open_training_set(training_set_id, verify=verify)


def open_table(
    table: str,
    root: str | None = None,
    *,
    version: int | str | None = None,
    as_of: datetime | None = None,
    features: list[str] | None = None,
    settings: Settings | None = None,
    user: str | None = None,
) -> TableRows:
    """A feature table as of one version, read through delta-rs (see `FeatureStore.read_arrow`)."""
    store = FeatureStore(root, settings=settings, user=user)
    return store.read_arrow(table, version=version, as_of=as_of, features=features)
