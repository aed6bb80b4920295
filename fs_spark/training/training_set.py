"""`TrainingSet`: a built (or rebuilt) training set, its ID, manifest and rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession

from fs_spark.training.manifest import ResolvedLookup, TrainingSetManifest
from fs_spark.training.pit_join import ROW_COLUMN

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class TrainingSet:
    """A training set: the entity rows given, each with its features as of its time.

    Example:
        >>> ts = store.create_training_set(entities, ["customer_activity:spend_7d"], label="churned")  # doctest: +SKIP
        >>> ts.id, ts.manifest.feature_version_ids                                                  # doctest: +SKIP
        >>> ts.load_df().show()                                                                      # doctest: +SKIP
    """

    def __init__(self, spark: SparkSession, manifest: TrainingSetManifest, frame: DataFrame):
        self._spark = spark
        self.manifest = manifest
        self._frame = frame
        self.timings: dict[str, float] = {}  # seconds per phase of the build that made it, if it did

    @property
    def id(self) -> str:
        return self.manifest.training_set_id

    @property
    def lookups(self) -> list[ResolvedLookup]:
        """What each lookup read: table, feature version, Delta version, features."""
        return self.manifest.lookups

    def load_df(self, *, with_row_number: bool = False) -> DataFrame:
        """The rows, in the order and number the entity DataFrame had.

        Args:
            with_row_number: keep `_fs_row`, the entity row's number, as the first column.
        """
        ordered = self._frame.orderBy(ROW_COLUMN)
        return ordered if with_row_number else ordered.drop(ROW_COLUMN)

    def to_spark_df(self) -> DataFrame:
        """The rows as a Spark DataFrame (Feast's name for `load_df`)."""
        return self.load_df()

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table, collected to the driver (Feast's `to_arrow`)."""
        return self.load_df().toArrow()

    def to_df(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame, collected to the driver (Feast's `to_df`); timestamps
        are aware UTC."""
        return self.to_arrow().to_pandas()

    def __repr__(self) -> str:
        return f"TrainingSet(id={self.id!r}, rows={self.manifest.row_count}, feature_versions={self.manifest.feature_version_ids})"
