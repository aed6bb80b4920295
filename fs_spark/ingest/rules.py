"""Row rules of a feature table as Spark column expressions, so all of them run in one pass.

Each rule gives a boolean column that is true exactly when a row breaks it (never null), and a
way to show the offending value, so an error can name the feature, the rule and an example. A rule
also names the features whose values its example shows, so that the example of a feature tagged
sensitive is withheld, as its statistics are.
Duplicate (key, event time) rows are found with a window over a count; every other rule looks
at one row alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import parse_duration
from fs_spark.ingest.conform import PARSE_ERRORS
from fs_spark.storage.layout import time_bucket

DUPLICATE_COUNT = "_fs_duplicates"
EARLIEST_EVENT_TIME = datetime(1900, 1, 1, tzinfo=UTC)
_OPS = {
    "<": Column.__lt__,
    "<=": Column.__le__,
    ">": Column.__gt__,
    ">=": Column.__ge__,
    "==": Column.__eq__,
    "!=": Column.__ne__,
}


@dataclass(frozen=True)
class RowRule:
    subject: str  # a feature or column name, a rule name, or key+time for duplicates
    rule: str
    broken: Column
    example: Callable[[], Column]  # built only when a report needs it
    shows: tuple[str, ...] = ()  # the features whose values the example shows (keys and time are not features)

    @property
    def label(self) -> str:
        return f"{self.subject}:{self.rule}"


def _show(column: str) -> Callable[[], Column]:
    return lambda: F.coalesce(F.col(column).cast("string"), F.lit("null"))


def _row_key(table: FeatureTable) -> Callable[[], Column]:
    def build() -> Column:
        parts = [F.concat(F.lit(f"{k}="), _show(k)()) for k in table.keys]
        return F.concat_ws(", ", *parts, F.concat(F.lit(f"{table.event_time}="), _show(table.event_time)()))

    return build


def with_duplicate_count(df: DataFrame, table: FeatureTable) -> DataFrame:
    """Add the number of rows sharing each row's (key, event time) in this batch."""
    bucket = time_bucket(table)
    by = ([bucket] if bucket is not None else []) + [F.col(k) for k in table.keys] + [F.col(table.event_time)]
    return df.withColumn(DUPLICATE_COUNT, F.count(F.lit(1)).over(Window.partitionBy(*by)))


def duplicate_rule(table: FeatureTable) -> RowRule:
    """Needs the column added by `with_duplicate_count`."""
    subject = "+".join([*table.keys, table.event_time])
    return RowRule(subject, "unique_key_event_time", F.col(DUPLICATE_COUNT) > 1, _row_key(table))


def latest_plausible(table: FeatureTable, now: datetime) -> datetime:
    """The end of the next whole hour after now + max_future.

    Whole hours keep the generated code of the check the same from one write to the next, so
    Spark reuses it instead of compiling it again.
    """
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour + timedelta(hours=1) + parse_duration(table.max_future)


def row_rules(table: FeatureTable, now: datetime) -> list[RowRule]:
    """Every rule that looks at one row alone."""
    rules: list[RowRule] = []
    for key in table.keys:
        rules.append(RowRule(key, "key_not_null", F.col(key).isNull(), _row_key(table)))
    ts = table.event_time
    rules.append(RowRule(ts, "event_time_not_null", F.col(ts).isNull(), _row_key(table)))
    plausible = F.col(ts).between(F.lit(EARLIEST_EVENT_TIME), F.lit(latest_plausible(table, now)))
    rules.append(
        RowRule(
            ts,
            f"event_time_plausible[{EARLIEST_EVENT_TIME:%Y-%m-%d}, now+{table.max_future}]",
            F.col(ts).isNotNull() & ~plausible,
            _show(ts),
        )
    )
    for feature in table.features:
        col, name = F.col(feature.name), feature.name
        if not feature.nullable:
            rules.append(RowRule(name, "not_null", col.isNull(), _row_key(table)))
        if feature.dtype.is_floating and not feature.allow_nan:
            bad = F.isnan(col) | col.isin(float("inf"), float("-inf"))
            rules.append(RowRule(name, "finite", F.coalesce(bad, F.lit(False)), _show(name), (name,)))
        if feature.min_value is not None or feature.max_value is not None:
            low = F.lit(True) if feature.min_value is None else col >= F.lit(feature.min_value)
            high = F.lit(True) if feature.max_value is None else col <= F.lit(feature.max_value)
            finite = ~F.isnan(col) if feature.dtype.is_floating else F.lit(True)
            bad = col.isNotNull() & finite & ~(low & high)
            rules.append(RowRule(name, f"range[{feature.min_value}, {feature.max_value}]", bad, _show(name), (name,)))
        if feature.allowed_values is not None:
            bad = col.isNotNull() & ~col.isin(*feature.allowed_values)
            rules.append(RowRule(name, "allowed_values", bad, _show(name), (name,)))
    for rule in table.rules:
        rules.append(_cross_feature(rule))
    return rules


def _cross_feature(rule) -> RowRule:
    left, op, right = rule.parts()
    # NaN, where a feature allows it, makes a rule not apply, as null does.
    left_col = F.nanvl(F.col(left), F.lit(None).cast("double"))
    right_col = F.nanvl(F.col(right), F.lit(None).cast("double")) if isinstance(right, str) else F.lit(right)
    holds = _OPS[op](left_col, right_col)

    def example() -> Column:
        shown_right = _show(right)() if isinstance(right, str) else F.lit(str(right))
        return F.concat(F.lit(f"{left}="), _show(left)(), F.lit(f", {right}="), shown_right)

    shows = (left, right) if isinstance(right, str) else (left,)
    return RowRule(rule.name, f"rule[{rule.expression}]", F.coalesce(~holds, F.lit(False)), example, shows)


_EXACT_DOUBLE_LIMIT = 2**53  # every integer up to it in magnitude is exact in a double


def source_rules(batch: DataFrame, sources: dict[str, str]) -> list[RowRule]:
    """For each feature `conform` kept a source value of (`conform.source_values`), the rows
    whose value did not survive the conversion exactly: exact[long->double] for a long bound
    for a double (9007199254740993 would become ...992), cast[<source>-><declared>] for a
    narrowing that cast="safe" allowed (a long beyond an int's range, 2.5 for a long)."""
    types = {f.name: f.dataType for f in batch.schema.fields}
    rules = []
    for feature, source in sources.items():
        if not (isinstance(types[feature], T.DoubleType) and isinstance(types[source], T.LongType)):
            rules.append(_cast_rule(feature, source, types[source], types[feature]))
            continue
        value = F.col(source)
        size = F.abs(value)
        # Beyond 2**53 a double keeps the 53 leading bits: exact when the bits below them are 0.
        dropped_bits = F.length(F.bin(size)) - 53
        exact = (
            F.when(value == F.lit(-(2**63)), True)  # a power of two; abs() would overflow
            .when(size <= F.lit(_EXACT_DOUBLE_LIMIT), True)
            .otherwise(size % F.pow(F.lit(2), dropped_bits).cast("long") == 0)
        )  # 2**(1..10): exact
        exact_rule = RowRule(
            feature, "exact[long->double]", F.coalesce(~exact, F.lit(False)), _show(source), (feature,)
        )
        rules.append(exact_rule)
    return rules


def parse_rules(batch: DataFrame, table: FeatureTable) -> list[RowRule]:
    """For a batch parsed from JSON (`sources.parse_json`), one rule per column: broken where
    the record held a value the column's type does not take; the example is the source text."""
    if PARSE_ERRORS not in batch.columns:
        return []
    types = {f.name: f.dataType.simpleString() for f in batch.schema.fields}
    features = set(table.feature_names)
    columns = [*table.keys, table.event_time, *table.feature_names]
    return [
        RowRule(
            name,
            f"json[{types[name]}]",
            F.coalesce(F.col(PARSE_ERRORS)[name].isNotNull(), F.lit(False)),
            _source_text(name),
            (name,) if name in features else (),
        )
        for name in columns
    ]


def _source_text(column: str) -> Callable[[], Column]:
    return lambda: F.col(PARSE_ERRORS)[column]


def _cast_rule(feature: str, source: str, source_type: T.DataType, declared: T.DataType) -> RowRule:
    """Broken where the source value is not null and the cast value is null (out of range) or
    differs from it: compared as longs for an integral source, as doubles for a floating one,
    types in which both sides are exact."""
    common = "bigint" if isinstance(source_type, T.IntegralType) else "double"
    cast_value = F.col(feature).try_cast(common)
    changed = F.col(source).isNotNull() & (cast_value.isNull() | (cast_value != F.col(source).cast(common)))
    label = f"cast[{source_type.simpleString()}->{declared.simpleString()}]"
    return RowRule(feature, label, F.coalesce(changed, F.lit(False)), _show(source), (feature,))


def any_broken(rules: list[RowRule]) -> Column:
    out = F.lit(False)
    for rule in rules:
        out = out | rule.broken
    return out


def broken_labels(rules: list[RowRule]) -> Column:
    """The labels of every rule a row breaks, as array<string>."""
    return F.filter(F.array(*[F.when(r.broken, F.lit(r.label)) for r in rules]), lambda x: x.isNotNull())
