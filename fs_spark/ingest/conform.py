"""Schema-level checks of a batch, done on the DataFrame's schema alone (no Spark job).

Unknown or missing columns, types that do not convert without loss, time-zone-naive timestamps
and units that disagree with the definition are refused here, before any data is read. Two kinds
of conversion are checked value by value in the validation pass instead, which `conform`
prepares by keeping the source value beside the converted one: a long into a double (always),
and the narrowing casts that `cast="safe"` allows (a long into an int, a double into a long...).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import types as T

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import FeatureType, accepts, casts_safely
from fs_spark.errors import SchemaMismatchError
from fs_spark.storage.layout import INTERNAL_COLUMNS


def _declared(table: FeatureTable) -> dict[str, tuple[FeatureType, str | None, str]]:
    """column -> (declared type, declared unit, role)"""
    out: dict[str, tuple[FeatureType, str | None, str]] = {k: (t, None, "key") for k, t in table.entity.keys.items()}
    out[table.event_time] = (FeatureType.TIMESTAMP, None, "event time")
    out.update({f.name: (f.dtype, f.unit, "feature") for f in table.features})
    return out


CASTS = ("none", "safe")


def conform(df: DataFrame, table: FeatureTable, cast: str = "none") -> DataFrame:
    """Select the table's columns from `df` in storage order, cast to the declared types.

    With cast="safe", narrowing casts (`casts_safely`) are accepted too; the value by value check
    is the validation pass's.

    Raises SchemaMismatchError listing every problem at once; the check reads no data.
    """
    if cast not in CASTS:
        raise ValueError(f"cast must be one of {CASTS}, not {cast!r}")
    declared = _declared(table)
    fields = {f.name: f for f in df.schema.fields}
    narrowed: set[str] = set()
    problems: list[str] = []
    unknown = sorted(set(fields) - set(declared) - {PARSE_ERRORS})
    if unknown:
        internal = [c for c in unknown if c in INTERNAL_COLUMNS]
        problems.append(
            f"unknown column(s) {unknown}"
            + (f" ({internal} are written by fs_spark itself)" if internal else "")
            + f"; the table has {sorted(declared)}"
        )
    missing = [c for c in declared if c not in fields]
    if missing:
        problems.append(f"missing column(s) {missing}")
    for name, (dtype, unit, role) in declared.items():
        field = fields.get(name)
        if field is None:
            continue
        if isinstance(field.dataType, T.TimestampNTZType) and dtype is FeatureType.TIMESTAMP:
            problems.append(
                f"{role} {name!r}: rule timezone_aware: timestamp_ntz has no time zone; "
                "convert it with to_utc_timestamp(col, '<zone>') first"
            )
        elif not accepts(dtype, field.dataType):
            if casts_safely(dtype, field.dataType) and cast == "safe" and role == "feature":
                narrowed.add(name)
                continue
            hint = (
                ' (cast="safe", or --cast safe, accepts it where every value fits)'
                if casts_safely(dtype, field.dataType) and role == "feature"
                else ""
            )
            problems.append(
                f"{role} {name!r}: rule type: declared {dtype.value}, found {field.dataType.simpleString()}{hint}"
            )
        source_unit = (field.metadata or {}).get("unit")
        if source_unit is not None and source_unit != unit:
            problems.append(f"{role} {name!r}: rule unit: declared {unit!r}, found {source_unit!r}")
    if problems:
        raise SchemaMismatchError(table.name, problems)
    # One SQL projection is one py4j call; a Column per cast is a hundred (names are validated
    # identifiers, so quoting them is safe). A long bound for a double, and a narrowed column,
    # keep their source value beside them, so the validation pass can refuse values the declared
    # type does not hold exactly; a narrowing cast that overflows gives null (TRY_CAST), never
    # an error from inside the job.
    casts = [
        f"{'TRY_CAST' if name in narrowed else 'CAST'}(`{name}` AS {dtype.spark_type.simpleString()}) AS `{name}`"
        for name, (dtype, _, _) in declared.items()
    ]
    kept = [
        f"`{name}` AS `{SOURCE_PREFIX}{name}`"
        for name, (dtype, _, _) in declared.items()
        if name in narrowed or (dtype is FeatureType.DOUBLE and isinstance(fields[name].dataType, T.LongType))
    ]
    if PARSE_ERRORS in fields:
        kept.append(f"`{PARSE_ERRORS}`")
    return df.selectExpr(*casts, *kept)


SOURCE_PREFIX = "_fs_source_"
# column -> the source text of a value present in a record but not of the column's type (a map,
# from `sources.parse_json`): validation refuses those rows by rule `json[<type>]`, so a value of
# the wrong JSON type is never stored as a null.
PARSE_ERRORS = "_fs_parse_errors"


def source_values(batch: DataFrame) -> dict[str, str]:
    """feature -> the column holding its source value, for the features `conform` kept one of."""
    return {c.removeprefix(SOURCE_PREFIX): c for c in batch.columns if c.startswith(SOURCE_PREFIX)}
