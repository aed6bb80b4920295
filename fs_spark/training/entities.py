"""The entity DataFrame of a training set: its time columns made instants, its rows numbered.

Point-in-time comparison happens on instants (Spark's TimestampType, UTC inside). A zone-less
time (TimestampNTZType or DateType) means nothing until someone says where its wall clock was,
so it is refused unless the call names the zone; it is then converted field by field with
`make_timestamp`, which does not depend on the session's time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.definitions.model import RESERVED_PREFIX
from fs_spark.errors import EntityColumnError, NaiveEntityTimeError
from fs_spark.training.pit_join import ROW_COLUMN


def _instant(column: str, zone: str) -> Column:
    """The instant of a zone-less wall-clock time taken in `zone`."""
    wall = F.col(column).cast(T.TimestampNTZType())
    return F.make_timestamp(
        F.year(wall),
        F.month(wall),
        F.dayofmonth(wall),
        F.hour(wall),
        F.minute(wall),
        F.date_part(F.lit("SECOND"), wall),
        F.lit(zone),
    )


def check_zone(zone: str | None) -> str | None:
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise EntityColumnError(
            "timezone", f"{zone!r} is not a known time zone (use an IANA name such as 'UTC' or 'Europe/Paris')"
        ) from None
    return zone


def instants(df: DataFrame, time_columns: Iterable[str], zone: str | None) -> DataFrame:
    """`df` with each time column as an instant; zone-less ones converted from `zone`."""
    for name in dict.fromkeys(time_columns):
        if name not in df.columns:
            raise EntityColumnError(name, "the lookup's time column is missing", df.columns)
        dtype = df.schema[name].dataType
        if isinstance(dtype, T.TimestampType):
            continue
        if isinstance(dtype, (T.TimestampNTZType, T.DateType)):
            if zone is None:
                raise NaiveEntityTimeError(name, dtype.simpleString())
            df = df.withColumn(name, _instant(name, zone))
            continue
        raise EntityColumnError(name, f"a time column must be a timestamp, not {dtype.simpleString()}")
    return df


def check_columns(df: DataFrame, needed: Iterable[str]) -> None:
    """Every needed column exists, and no column uses fs_spark's reserved prefix."""
    for name in df.columns:
        if name.startswith(RESERVED_PREFIX) or name.startswith("__fs"):
            raise EntityColumnError(name, f"names starting with {RESERVED_PREFIX!r} are reserved for fs_spark")
    for name in needed:
        if name not in df.columns:
            raise EntityColumnError(name, "is needed but missing", df.columns)


def numbered(df: DataFrame) -> DataFrame:
    """`df` with `_fs_row`: a number that grows with the rows' order, so the training set can be
    returned in the order it was given."""
    return df.select(F.monotonically_increasing_id().alias(ROW_COLUMN), "*")
