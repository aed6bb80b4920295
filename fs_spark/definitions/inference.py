"""A feature table definition inferred from a DataFrame's schema (Databricks Feature
Engineering's `create_table`): keys and the time column named, every other column a feature of
its own type. Units, ranges and owners are added later through `apply`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import types as T

from fs_spark.definitions.model import Entity, Feature, FeatureTable
from fs_spark.definitions.types import FeatureType
from fs_spark.errors import SchemaMismatchError

_FROM_SPARK: tuple[tuple[type[T.DataType], FeatureType], ...] = (
    (T.BooleanType, FeatureType.BOOL),
    (T.ByteType, FeatureType.INT),
    (T.ShortType, FeatureType.INT),
    (T.IntegerType, FeatureType.INT),
    (T.LongType, FeatureType.LONG),
    (T.FloatType, FeatureType.FLOAT),
    (T.DoubleType, FeatureType.DOUBLE),
    (T.StringType, FeatureType.STRING),
    (T.DateType, FeatureType.DATE),
    (T.TimestampType, FeatureType.TIMESTAMP),
)


def feature_type(table: str, column: str, dtype: T.DataType) -> FeatureType:
    for spark_type, kind in _FROM_SPARK:
        if isinstance(dtype, spark_type):
            return kind
    supported = ", ".join(k.value for _, k in _FROM_SPARK[::2])
    raise SchemaMismatchError(table, [f"column {column!r} is {dtype.simpleString()}: a feature is one of {supported}"])


def table_from_schema(
    name: str,
    schema: T.StructType,
    primary_keys: Sequence[str],
    timestamp_key: str,
    description: str = "",
    tags: Sequence[str] = (),
) -> FeatureTable:
    """The definition of `name`: `primary_keys` its entity's keys, in that order, and
    `timestamp_key` its event time; the other columns its features."""
    types = {f.name: f.dataType for f in schema.fields}
    missing = [
        f"{role} {c!r} is not a column (the columns: {list(types)})"
        for role, c in [*(("primary key", k) for k in primary_keys), ("timestamp key", timestamp_key)]
        if c not in types
    ]
    if missing:
        raise SchemaMismatchError(name, missing)
    if not isinstance(types[timestamp_key], T.TimestampType):
        kind = types[timestamp_key].simpleString()
        raise SchemaMismatchError(name, [f"timestamp key {timestamp_key!r} is {kind}: it must be a timestamp"])
    keys = {k: feature_type(name, k, types[k]) for k in primary_keys}
    features = tuple(
        Feature(name=column, dtype=feature_type(name, column, dtype))
        for column, dtype in types.items()
        if column not in keys and column != timestamp_key
    )
    return FeatureTable(
        name=name,
        entity=Entity(name=name, keys=keys),
        event_time=timestamp_key,
        features=features,
        description=description,
        tags=tuple(tags),
    )
