"""Feature value types, their Spark types, and which source types convert to them without loss."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum

import pyarrow as pa
from pyspark.sql import types as T


class FeatureType(str, Enum):
    BOOL = "bool"
    INT = "int"
    LONG = "long"
    FLOAT = "float"
    DOUBLE = "double"
    STRING = "string"
    DATE = "date"
    TIMESTAMP = "timestamp"

    @property
    def spark_type(self) -> T.DataType:
        return _SPARK[self]

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW[self]

    @property
    def is_numeric(self) -> bool:
        return self in (FeatureType.INT, FeatureType.LONG, FeatureType.FLOAT, FeatureType.DOUBLE)

    @property
    def is_floating(self) -> bool:
        return self in (FeatureType.FLOAT, FeatureType.DOUBLE)


_SPARK: dict[FeatureType, T.DataType] = {
    FeatureType.BOOL: T.BooleanType(),
    FeatureType.INT: T.IntegerType(),
    FeatureType.LONG: T.LongType(),
    FeatureType.FLOAT: T.FloatType(),
    FeatureType.DOUBLE: T.DoubleType(),
    FeatureType.STRING: T.StringType(),
    FeatureType.DATE: T.DateType(),
    FeatureType.TIMESTAMP: T.TimestampType(),
}

_ARROW: dict[FeatureType, pa.DataType] = {
    FeatureType.BOOL: pa.bool_(),
    FeatureType.INT: pa.int32(),
    FeatureType.LONG: pa.int64(),
    FeatureType.FLOAT: pa.float32(),
    FeatureType.DOUBLE: pa.float64(),
    FeatureType.STRING: pa.string(),
    FeatureType.DATE: pa.date32(),
    FeatureType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}

KEY_TYPES = (FeatureType.INT, FeatureType.LONG, FeatureType.STRING)

# Source Spark types accepted for each declared type: each converts exactly, never by rounding
# a value the user did not expect (long -> double is accepted as pandas and CSV readers make longs).
_ACCEPTS: dict[FeatureType, tuple[type[T.DataType], ...]] = {
    FeatureType.BOOL: (T.BooleanType,),
    FeatureType.INT: (T.ByteType, T.ShortType, T.IntegerType),
    FeatureType.LONG: (T.ByteType, T.ShortType, T.IntegerType, T.LongType),
    FeatureType.FLOAT: (T.ByteType, T.ShortType, T.FloatType),
    FeatureType.DOUBLE: (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType),
    FeatureType.STRING: (T.StringType, T.VarcharType, T.CharType),
    FeatureType.DATE: (T.DateType,),
    FeatureType.TIMESTAMP: (T.TimestampType,),
}

# Declared-type changes that old readers survive and Delta's type widening supports.
WIDENINGS: dict[FeatureType, frozenset[FeatureType]] = {
    FeatureType.INT: frozenset({FeatureType.LONG, FeatureType.DOUBLE}),
    FeatureType.FLOAT: frozenset({FeatureType.DOUBLE}),
}


def accepts(declared: FeatureType, source: T.DataType) -> bool:
    """True if a source column of Spark type `source` converts to `declared` without loss."""
    return isinstance(source, _ACCEPTS[declared])


# Narrowing conversions a write accepts with cast="safe": each value is checked in the
# validation pass and a value that does not survive the cast exactly breaks rule cast[...]
# (pandas makes int64 of every integer column, and float64 of one with a missing value).
_SAFE_CASTS: dict[FeatureType, tuple[type[T.DataType], ...]] = {
    FeatureType.INT: (T.LongType, T.FloatType, T.DoubleType),
    FeatureType.LONG: (T.FloatType, T.DoubleType),
    FeatureType.FLOAT: (T.IntegerType, T.LongType, T.DoubleType),
}


def casts_safely(declared: FeatureType, source: T.DataType) -> bool:
    """True if `source` converts to `declared` under cast="safe", value by value."""
    return isinstance(source, _SAFE_CASTS.get(declared, ()))


_DURATION_RE = re.compile(r"^(\d+)(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """Parse '30d', '12h', '15m', '45s' or '2w' into a timedelta.

    Example:
        >>> parse_duration("7d").days
        7
    """
    match = _DURATION_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a whole number and one of s, m, h, d, w (e.g. '7d')")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
