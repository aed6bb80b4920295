"""Profiles of two DataFrames, every feature at once: the data behind the drift distances.

Both sides are unioned with a side marker and aggregated together, so one job reads both and
computes, for every numeric feature, its quantiles (NaN left out), nulls and NaNs, and for every
key column set, its approximate distinct count; a second job counts the values of categorical
features. A table of 20 features costs two jobs, not twenty.

Quantile sketches cost far more per value than counting (measured: 27 of 34 seconds for 2 x 4M
rows x 20 features), so quantiles come from a uniform sample of at most `sample_rows` rows per
side, drawn in the same pass; counts of nulls, NaNs and categories use every row. With 200,000
rows the sampled CDF is within 0.003 of the true one (Dvoretzky-Kiefer-Wolfowitz, 95%), far below
any drift threshold worth setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

LEVELS = tuple(i / 100 for i in range(101))
TOP_CATEGORIES = 1000  # values kept per categorical feature and side; the rest count as OTHER
OTHER = "\u0000other"
SIDE = "_fs_side"
KEY = "_fs_key"
SAMPLED = "_fs_sampled"


@dataclass
class SideProfile:
    rows: int = 0
    nulls: dict[str, int] = field(default_factory=dict)
    nans: dict[str, int] = field(default_factory=dict)
    quantiles: dict[str, list[float]] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    distinct_keys: int | None = None


def is_numeric(data_type: T.DataType) -> bool:
    return isinstance(data_type, (T.NumericType, T.DateType, T.TimestampType, T.TimestampNTZType)) and not isinstance(
        data_type, T.BooleanType
    )


def _as_number(column: str, data_type: T.DataType):
    if isinstance(data_type, (T.TimestampType, T.TimestampNTZType)):
        return F.unix_micros(F.col(column).cast("timestamp")).cast("double") / 1e6
    if isinstance(data_type, T.DateType):
        return F.unix_date(F.col(column)).cast("double")
    return F.col(column).cast("double")


def profile_pair(
    baseline: DataFrame,
    current: DataFrame,
    columns: list[str],
    keys: list[str] | None = None,
    accuracy: int = 1_000,
    sample_rows: int | None = 200_000,
    rows: tuple[int, int] | None = None,
) -> tuple[SideProfile, SideProfile]:
    """Profile `columns` (present on both sides, same names) of the two frames.

    Args:
        sample_rows: the most rows per side the quantiles are computed from (None: all).
        rows: the row counts of the two sides, when known (otherwise counted, which Delta and
            Parquet answer from metadata).
    """
    types = {c: baseline.schema[c].dataType for c in columns}
    numeric = [c for c in columns if is_numeric(types[c])]
    categorical = [c for c in columns if c not in numeric]
    extra = [F.xxhash64(*keys).alias(KEY)] if keys else []
    both = baseline.select(F.lit(0).alias(SIDE), *columns, *extra).unionByName(
        current.select(F.lit(1).alias(SIDE), *columns, *extra)
    )
    sampled = F.lit(True)
    if sample_rows is not None:
        counts = rows or (baseline.count(), current.count())
        fractions = [min(1.0, sample_rows / n) if n else 1.0 for n in counts]
        if min(fractions) < 1.0:  # drawn in a projection: aggregates refuse random arguments
            share = F.when(F.col(SIDE) == 0, F.lit(fractions[0])).otherwise(F.lit(fractions[1]))
            both = both.withColumn(SAMPLED, F.rand(17) < share)
            sampled = F.col(SAMPLED)
    sides = (SideProfile(), SideProfile())

    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, column in enumerate(columns):
        aggregates.append(F.count_if(F.col(column).isNull()).alias(f"n{i}"))
    floating = {c for c in numeric if isinstance(types[c], (T.FloatType, T.DoubleType))}
    for i, column in enumerate(numeric):
        value = _as_number(column, types[column])
        if column in floating:
            aggregates.append(F.count_if(F.isnan(value)).alias(f"nan{i}"))
            value = F.when(~F.isnan(value), value)
        aggregates.append(F.percentile_approx(F.when(sampled, value), list(LEVELS), accuracy).alias(f"q{i}"))
    if keys:
        aggregates.append(F.approx_count_distinct(KEY).alias("keys"))
    for row in both.groupBy(SIDE).agg(*aggregates).collect():
        side = sides[row[SIDE]]
        side.rows = row["rows"]
        side.nulls = {c: row[f"n{i}"] for i, c in enumerate(columns)}
        for i, column in enumerate(numeric):
            side.nans[column] = row[f"nan{i}"] if column in floating else 0
            side.quantiles[column] = list(row[f"q{i}"] or [])
        side.distinct_keys = row["keys"] if keys else None

    if categorical:
        pairs = F.explode(
            F.array(*[F.struct(F.lit(c).alias("feature"), F.col(c).cast("string").alias("value")) for c in categorical])
        )
        value_counts = (
            both.select(SIDE, pairs.alias("p"))
            .where(F.col("p.value").isNotNull())
            .groupBy(SIDE, F.col("p.feature").alias("feature"), F.col("p.value").alias("value"))
            .count()
        )
        rank = F.row_number().over(Window.partitionBy(SIDE, "feature").orderBy(F.desc("count"), "value"))
        capped = value_counts.withColumn(
            "value", F.when(rank <= TOP_CATEGORIES, F.col("value")).otherwise(F.lit(OTHER))
        )
        for row in capped.groupBy(SIDE, "feature", "value").agg(F.sum("count").alias("n")).collect():
            sides[row[SIDE]].categories.setdefault(row["feature"], {})[row["value"]] = row["n"]
        for side in sides:
            for column in categorical:
                side.categories.setdefault(column, {})
    return sides
