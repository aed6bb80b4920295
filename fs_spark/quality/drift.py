"""Drift of a feature version against a baseline: the previous version, or a training set's data.

For numbers: PSI over the baseline's deciles, Kolmogorov-Smirnov, and Wasserstein-1 in units of
the baseline's interquartile range (so one threshold fits every feature); for categories: PSI
and the values new or missing; for all: null and NaN rates, and schema changes between the
definitions the two sides were written under (reads conform rows to one definition, so the
frames themselves would never show one). Against a
training set, also sampling bias: how many of the population's keys, and how much of its time
range, the training set's entity rows cover. Every feature is profiled in the same pass
(`profile.profile_pair`). Breaches of the thresholds in `conf/` become alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fs_spark.config import DriftThresholds
from fs_spark.definitions.compatibility import diff
from fs_spark.definitions.model import FeatureTable
from fs_spark.progress import step
from fs_spark.quality import distances as D
from fs_spark.quality.profile import LEVELS, OTHER, SideProfile, is_numeric, profile_pair


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric or categorical
    psi: float | None
    ks: float | None
    wasserstein: float | None  # in baseline IQRs
    null_rate: tuple[float, float]  # baseline, current
    nan_rate: tuple[float, float]
    new_categories: tuple[str, ...] = ()
    missing_categories: tuple[str, ...] = ()
    breaches: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemaDrift:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()  # "name: old -> new"

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class SamplingBias:
    key_coverage: float  # distinct training-set keys / distinct population keys (approximate)
    time_coverage: float  # share of the population's time range the training set's times span
    time_ks: float  # KS distance between the training set's times and the population's
    breaches: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift]
    schema: SchemaDrift
    rows: tuple[int, int]  # baseline, current
    sampling: SamplingBias | None = None
    breaches: list[tuple[str, str, float, float]] = field(default_factory=list)  # feature, metric, value, threshold


def _rate(count: int, rows: int) -> float:
    return count / rows if rows else 0.0


def _numeric(name: str, a: SideProfile, b: SideProfile) -> tuple[float | None, float | None, float | None]:
    qa, qb = a.quantiles.get(name) or [], b.quantiles.get(name) or []
    if not qa or not qb:
        return None, None, None
    return (
        D.numeric_psi(qa, qb, LEVELS),
        D.kolmogorov_smirnov(qa, qb, LEVELS),
        D.wasserstein(qa, qb) / D.scale(qa, LEVELS),
    )


RETYPED = {"change_type", "widen_type", "change_unit", "change_keys", "change_event_time"}


def schema_drift(old: FeatureTable, new: FeatureTable) -> SchemaDrift:
    """Features added, removed and retyped (or re-unit-ed) from the definition the baseline was
    written under to the one the current version was written under."""
    changes = diff(old, new)
    return SchemaDrift(
        added=tuple(sorted(c.subject for c in changes if c.kind == "add_feature")),
        removed=tuple(sorted(c.subject for c in changes if c.kind == "drop_feature")),
        changed=tuple(sorted(f"{c.subject}: {c.detail}" for c in changes if c.kind in RETYPED)),
    )


def _comparable(baseline: DataFrame, current: DataFrame, features: list[str]):
    """The features both sides have as the same kind (number or category), each side cast to a
    common type where the two differ (a widened int is compared as a number)."""
    shared = [
        f
        for f in features
        if f in baseline.columns
        and f in current.columns
        and is_numeric(baseline.schema[f].dataType) == is_numeric(current.schema[f].dataType)
    ]
    common = {
        f: ("double" if is_numeric(baseline.schema[f].dataType) else "string")
        for f in shared
        if baseline.schema[f].dataType != current.schema[f].dataType
    }

    def cast(frame: DataFrame) -> DataFrame:
        return frame.select(*[F.col(f).cast(common[f]).alias(f) if f in common else F.col(f) for f in shared])

    return shared, cast(baseline), cast(current)


def compare(
    baseline: DataFrame,
    current: DataFrame,
    features: list[str],
    thresholds: DriftThresholds,
    schema: SchemaDrift,
    rows: tuple[int, int] | None = None,
) -> DriftResult:
    """Drift of `features` from `baseline` to `current`. A feature whose kind changed (a number
    become a category) is only reported in `schema`."""
    shared, baseline, current = _comparable(baseline, current, features)
    step(f"profiling {len(shared)} features")
    a, b = profile_pair(baseline, current, shared, rows=rows)
    results, breaches = [], []
    for done, name in enumerate(shared):
        step("checking drift", done, len(shared))
        numeric = is_numeric(baseline.schema[name].dataType)
        null_rate = (_rate(a.nulls[name], a.rows), _rate(b.nulls[name], b.rows))
        nan_rate = (_rate(a.nans.get(name, 0), a.rows), _rate(b.nans.get(name, 0), b.rows))
        new_values: tuple[str, ...] = ()
        missing: tuple[str, ...] = ()
        if numeric:
            psi, ks, wasserstein = _numeric(name, a, b)
        else:
            ca, cb = a.categories[name], b.categories[name]
            psi, ks, wasserstein = D.categorical_psi(ca, cb), None, None
            new_values = tuple(sorted(v for v in cb if v not in ca and v != OTHER))
            missing = tuple(sorted(v for v in ca if v not in cb and v != OTHER))
        measured = {
            "psi": psi,
            "ks": ks,
            "wasserstein": wasserstein,
            "null_rate": abs(null_rate[1] - null_rate[0]),
            "nan_rate": abs(nan_rate[1] - nan_rate[0]),
            "new_categories": float(len(new_values)),
            "missing_categories": float(len(missing)),
        }
        broken = []
        for metric, value in measured.items():
            limit = getattr(thresholds, metric)
            if value is not None and limit is not None and math.isfinite(value) and value > limit:
                broken.append(metric)
                breaches.append((name, metric, value, limit))
        results.append(
            FeatureDrift(
                name,
                "numeric" if numeric else "categorical",
                psi,
                ks,
                wasserstein,
                null_rate,
                nan_rate,
                new_values,
                missing,
                tuple(broken),
            )
        )
    if schema.any and thresholds.schema_changes:
        breaches.append(
            ("", "schema_changes", float(len(schema.added) + len(schema.removed) + len(schema.changed)), 0.0)
        )
    return DriftResult(results, schema, (a.rows, b.rows), None, breaches)


def sampling_bias(
    sample: DataFrame, population: DataFrame, keys: list[str], time: str, thresholds: DriftThresholds
) -> SamplingBias:
    """How well the training set's entity rows (`sample`) cover the population's keys and times.
    Both frames have the key columns and a time column named `time`."""
    a, b = profile_pair(population.select(*keys, time), sample.select(*keys, time), [time], keys=keys)
    coverage = (b.distinct_keys or 0) / a.distinct_keys if a.distinct_keys else 0.0
    qa, qb = a.quantiles.get(time) or [], b.quantiles.get(time) or []
    if qa and qb and qa[-1] > qa[0]:
        span = (min(qb[-1], qa[-1]) - max(qb[0], qa[0])) / (qa[-1] - qa[0])
        time_coverage, time_ks = max(0.0, min(1.0, span)), D.kolmogorov_smirnov(qa, qb, LEVELS)
    else:
        time_coverage, time_ks = (1.0 if qa and qb else 0.0), 0.0
    broken = []
    if coverage < thresholds.min_key_coverage:
        broken.append("key_coverage")
    if time_coverage < thresholds.min_time_coverage:
        broken.append("time_coverage")
    return SamplingBias(min(coverage, 1.0), time_coverage, time_ks, tuple(broken))
