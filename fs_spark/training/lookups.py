"""`FeatureLookup`: which features of which table a training set takes, and how to join them.

The names follow Databricks Feature Engineering (`FeatureLookup(table_name=..., feature_names=...,
lookup_key=..., timestamp_lookup_key=...)`); Feast-style `"table:feature"` strings work as well and
become one lookup per table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from fs_spark.definitions.types import parse_duration
from fs_spark.errors import FeatureLookupError
from fs_spark.names import check_name


class FeatureLookup(BaseModel):
    """Features of one table, joined as of each entity row's time.

    Args:
        table_name: the feature table.
        feature_names: the features to take (default: all of the table's features).
        lookup_key: the entity columns matched to the table's keys, in key order (default: the
            table's key names).
        timestamp_lookup_key: the entity column holding each row's time (default: a column named
            like the table's event-time column).
        lookback_window: take only feature rows at most this old (a timedelta or "7d", "12h");
            default: the table's ttl, if it has one, else unlimited.
        rename_outputs: feature name -> output column name.
        default_values: feature name -> value used when no feature row is found (a found row's
            null stays null).
        version: pin a version: a version number (of the current definition version) or a
            feature version ID. Default: the latest version when the training set is built.
        delta_version: pin the version by the feature table's Delta version: the latest feature
            version committed at or before it.

    Example:
        >>> FeatureLookup(table_name="customer_activity", feature_names=["spend_7d"],
        ...               lookup_key="customer_id", lookback_window="30d").lookback
        datetime.timedelta(days=30)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    table_name: str
    feature_names: tuple[str, ...] | None = None
    lookup_key: tuple[str, ...] | None = None
    timestamp_lookup_key: str | None = None
    lookback_window: timedelta | str | None = None
    rename_outputs: dict[str, str] = {}
    default_values: dict[str, Any] = {}
    version: int | str | None = None
    delta_version: int | None = None

    def __init__(self, **data: Any):  # keyword-only, as every definition
        super().__init__(**data)

    _table = field_validator("table_name")(lambda v: check_name(v, "table"))

    @field_validator("feature_names", "lookup_key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("lookback_window")
    @classmethod
    def _duration(cls, value: timedelta | str | None) -> timedelta | str | None:
        if isinstance(value, str):
            parse_duration(value)
        if isinstance(value, timedelta) and value <= timedelta(0):
            raise ValueError("lookback_window must be positive")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FeatureLookup:
        if self.version is not None and self.delta_version is not None:
            raise ValueError("pin either version or delta_version, not both")
        if isinstance(self.version, bool) or (isinstance(self.version, int) and self.version < 1):
            raise ValueError("version numbers start at 1")
        if self.delta_version is not None and self.delta_version < 0:
            raise ValueError("delta_version cannot be negative")
        return self

    @property
    def lookback(self) -> timedelta | None:
        if isinstance(self.lookback_window, str):
            return parse_duration(self.lookback_window)
        return self.lookback_window

    def output_name(self, feature: str) -> str:
        return self.rename_outputs.get(feature, feature)


def as_lookups(items: Sequence[FeatureLookup | str]) -> list[FeatureLookup]:
    """Lookups from `FeatureLookup`s and `"table:feature"` strings (strings of one table become
    one lookup, placed where the table's first string was)."""
    result: list[FeatureLookup] = []
    by_table: dict[str, int] = {}
    for item in items:
        if isinstance(item, FeatureLookup):
            result.append(item)
            continue
        if not isinstance(item, str) or item.count(":") != 1:
            raise ValueError(f"a lookup is a FeatureLookup or a 'table:feature' string, not {item!r}")
        table, feature = item.split(":")
        if table in by_table:
            merged = result[by_table[table]]
            names = (*(merged.feature_names or ()), feature)
            result[by_table[table]] = merged.model_copy(update={"feature_names": names})
        else:
            by_table[table] = len(result)
            result.append(FeatureLookup(table_name=table, feature_names=[feature]))
    return result


def check_outputs(outputs: Iterable[tuple[str, str, str]], entity_columns: Iterable[str] = ()) -> None:
    """The one rule of training sets and online reads for output columns, as (table, feature,
    output): two features may not share an output, nor take an entity column's name (one
    would hide the other); `rename_outputs` gives one another name."""
    seen: dict[str, str] = {}
    entities = set(entity_columns)
    for table, feature, output in outputs:
        where = f"{table}.{feature}"
        if output in seen:
            raise FeatureLookupError(
                table,
                f"output column {output!r} of {where} is also the output of {seen[output]}; "
                "rename one with rename_outputs",
            )
        if output in entities:
            raise FeatureLookupError(
                table, f"output column {output!r} of {where} is already an entity column; rename it with rename_outputs"
            )
        seen[output] = where
