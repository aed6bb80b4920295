"""Feature definitions as values: keyword-only, immutable, validated on creation.

A `FeatureTable` says everything fs_spark knows about a set of features: its entity keys, its
event-time column, each feature's schema and rules, the source and transformation that derive
it, and its parents. Definitions serialise to plain dicts (and YAML) and back without loss.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import textwrap
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fs_spark.definitions.types import KEY_TYPES, FeatureType, parse_duration
from fs_spark.errors import FeatureNotFoundError
from fs_spark.names import check_name

Scalar = bool | int | float | str
RESERVED_PREFIX = "_fs_"


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def with_(self, **changes: Any):
        """Return a validated copy with `changes` applied."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-safe dict without the fields left at their defaults."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return cls.model_validate(data)


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class Feature(_Definition):
    """One feature: its type and the rules every value must keep."""

    name: str
    dtype: FeatureType
    description: str = ""
    unit: str | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()
    nullable: bool = True
    min_value: float | None = None
    max_value: float | None = None
    allowed_values: tuple[Scalar, ...] | None = None
    allow_nan: bool = False

    _name = field_validator("name")(lambda v: check_name(v, "feature"))

    @model_validator(mode="after")
    def _rules_fit_type(self) -> Feature:
        has_range = self.min_value is not None or self.max_value is not None
        if has_range and not self.dtype.is_numeric:
            raise ValueError(f"feature {self.name!r}: a range needs a numeric type, not {self.dtype.value}")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise ValueError(f"feature {self.name!r}: min_value {self.min_value} > max_value {self.max_value}")
        if self.allow_nan and not self.dtype.is_floating:
            raise ValueError(f"feature {self.name!r}: allow_nan needs a float or double type")
        if self.allowed_values is not None:
            if not self.allowed_values:
                raise ValueError(f"feature {self.name!r}: allowed_values is empty")
            if self.dtype in (FeatureType.DATE, FeatureType.TIMESTAMP, FeatureType.BOOL):
                raise ValueError(f"feature {self.name!r}: allowed_values is not supported for {self.dtype.value}")
            want = str if self.dtype is FeatureType.STRING else (int, float)
            bad = [v for v in self.allowed_values if not isinstance(v, want) or isinstance(v, bool)]
            if bad:
                raise ValueError(f"feature {self.name!r}: allowed_values {bad} do not match type {self.dtype.value}")
        return self


class Entity(_Definition):
    """What the features describe, and the key columns that identify one instance of it."""

    name: str
    keys: dict[str, FeatureType]
    description: str = ""

    _name = field_validator("name")(lambda v: check_name(v, "entity"))

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: dict[str, FeatureType]) -> dict[str, FeatureType]:
        if not keys:
            raise ValueError("an entity needs at least one key column")
        for key, dtype in keys.items():
            check_name(key, "key")
            if dtype not in KEY_TYPES:
                raise ValueError(f"key {key!r} has type {dtype.value}; keys must be int, long or string")
        return keys


class Source(_Definition):
    """Where the rows of a feature table come from."""

    name: str
    kind: Literal["table", "path", "query", "stream", "external"] = "table"
    location: str = ""
    description: str = ""

    _name = field_validator("name")(lambda v: check_name(v, "source"))


class Transformation(_Definition):
    """The code that derives a table's features: a fingerprint of it, its parameters and windows."""

    name: str
    fingerprint: str
    parameters: dict[str, Scalar] = Field(default_factory=dict)
    windows: tuple[str, ...] = ()
    description: str = ""

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, parameters: dict[str, Scalar]) -> dict[str, Scalar]:
        return dict(sorted(parameters.items()))  # their order means nothing: one canonical order

    @field_validator("windows")
    @classmethod
    def _windows(cls, windows: tuple[str, ...]) -> tuple[str, ...]:
        for window in windows:
            parse_duration(window)
        return windows

    @classmethod
    def from_function(
        cls,
        function: Callable[..., Any],
        *,
        parameters: dict[str, Scalar] | None = None,
        windows: tuple[str, ...] = (),
        description: str = "",
    ) -> Transformation:
        """Fingerprint `function`'s source code, so a change of code shows as a new fingerprint.

        Example:
            >>> def spend_7d(df): return df
            >>> Transformation.from_function(spend_7d, windows=("7d",)).name
            'spend_7d'
        """
        source = textwrap.dedent(inspect.getsource(function)).strip()
        fingerprint = "sha256:" + hashlib.sha256(source.encode()).hexdigest()
        return cls(
            name=function.__qualname__,
            fingerprint=fingerprint,
            parameters=dict(parameters or {}),
            windows=tuple(windows),
            description=description or (inspect.getdoc(function) or "").split("\n")[0],
        )


_RULE_RE = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*([a-z][a-z0-9_]*|-?\d+(?:\.\d+)?)\s*$")


class CrossFeatureRule(_Definition):
    """A rule between features of one row, as `left op right` (for example `min_7d <= max_7d`).

    Only this small grammar is accepted, so a rule can never smuggle in SQL.
    """

    name: str
    expression: str

    _name = field_validator("name")(lambda v: check_name(v, "rule"))

    @field_validator("expression")
    @classmethod
    def _expression(cls, expression: str) -> str:
        if not _RULE_RE.fullmatch(expression):
            raise ValueError(
                f"rule expression {expression!r} must be '<feature> <op> <feature or number>' "
                "with op one of <, <=, >, >=, ==, !="
            )
        return expression

    def parts(self) -> tuple[str, str, str | float]:
        left, op, right = _RULE_RE.fullmatch(self.expression).groups()  # type: ignore[union-attr]
        return left, op, (right if right[0].isalpha() else float(right))


class FeatureTable(_Definition):
    """A set of features sharing an entity and an event time, stored as one Delta table.

    Example:
        >>> table = FeatureTable(
        ...     name="customer_activity",
        ...     entity=Entity(name="customer", keys={"customer_id": "long"}),
        ...     event_time="event_ts",
        ...     features=[Feature(name="spend_7d", dtype="double", min_value=0)],
        ... )
        >>> table.feature_names
        ('spend_7d',)
    """

    name: str
    entity: Entity
    event_time: str
    features: tuple[Feature, ...]
    description: str = ""
    owner: str | None = None
    tags: tuple[str, ...] = ()
    ttl: str | None = None
    source: Source | None = None
    transformation: Transformation | None = None
    parents: tuple[str, ...] = ()
    rules: tuple[CrossFeatureRule, ...] = ()
    definition_version: int = Field(default=1, ge=1)
    time_partition: Literal["day", "month", "year", "none"] = "month"
    max_future: str = "1d"
    evolution: Literal["additive", "widening"] = "widening"  # what a revision may change; more needs a new version

    _name = field_validator("name")(lambda v: check_name(v, "table"))
    _event_time = field_validator("event_time")(lambda v: check_name(v, "event-time column"))
    _ttl = field_validator("ttl")(_duration)
    _max_future = field_validator("max_future")(_duration)

    @field_validator("parents")
    @classmethod
    def _parents(cls, parents: tuple[str, ...]) -> tuple[str, ...]:
        for parent in parents:
            table, sep, feature = parent.partition(":")
            if not sep:
                raise ValueError(f"parent {parent!r} must be written 'table:feature'")
            check_name(table, "table")
            check_name(feature, "feature")
        return parents

    @model_validator(mode="after")
    def _consistent(self) -> FeatureTable:
        if not self.features:
            raise ValueError(f"feature table {self.name!r} has no features")
        columns = [*self.entity.keys, self.event_time, *self.feature_names]
        duplicates = sorted({c for c in columns if columns.count(c) > 1})
        if duplicates:
            raise ValueError(f"feature table {self.name!r}: column names used twice: {duplicates}")
        reserved = [c for c in columns if c.startswith(RESERVED_PREFIX)]
        if reserved:
            raise ValueError(
                f"feature table {self.name!r}: names starting with {RESERVED_PREFIX!r} are reserved: {reserved}"
            )
        numeric = {f.name for f in self.features if f.dtype.is_numeric}
        for rule in self.rules:
            left, _, right = rule.parts()
            for side in (left, right):
                if isinstance(side, str) and side not in numeric:
                    raise ValueError(
                        f"feature table {self.name!r}: rule {rule.name!r} uses {side!r}, "
                        f"which is not a numeric feature of this table (numeric features: {sorted(numeric)})"
                    )
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.entity.keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def tagged(self, tags: Iterable[str]) -> tuple[str, ...]:
        """The features carrying one of `tags`, on themselves or through the table's own tags."""
        wanted = set(tags)
        if wanted & set(self.tags):
            return self.feature_names
        return tuple(f.name for f in self.features if wanted & set(f.tags))

    def feature(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise FeatureNotFoundError(self.name, [name], self.feature_names)

    def canonical_json(self) -> str:
        """The full definition as canonical JSON: equal definitions give equal text.

        Fields come in declaration order and keys in the order declared (their order is part of
        the definition: lookups pair entity columns with keys by position), so the text is not
        key-sorted; the one dict whose order means nothing, a transformation's parameters, is
        sorted when the definition is made."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))

    def definition_hash(self) -> str:
        return "sha256:" + hashlib.sha256(self.canonical_json().encode()).hexdigest()
