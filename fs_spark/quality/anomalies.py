"""Anomalies in a table's history: a version whose row count, or a feature's null rate, mean or
quantiles, stands out from the versions before it.

Each version's figures are profiled once (one Spark job for every version not profiled yet,
grouped by the version column) and kept in the catalog's `version_profiles` table. A version is
judged against the versions written before it with a robust z-score, 0.6745 * (x - median) / MAD
(Iglewicz and Hoaglin), which a few earlier outliers do not move. With a season (`season_versions`,
say 7 for daily writes with a weekly rhythm) and enough history, the baseline is the versions at
the same phase of the season (x[n-7], x[n-14], ...), so a Monday is compared with Mondays.

Features tagged sensitive get row counts and null rates only: their values' means and quantiles
are never computed, stored or shown.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import VERSION_PROFILES
from fs_spark.config import AnomalySettings
from fs_spark.definitions.model import FeatureTable
from fs_spark.storage.layout import VERSION_COLUMN
from fs_spark.versions.series import ROLLBACK

FEATURE_FIGURES = ("null_rate", "mean", "p05", "p50", "p95")
_QUANTILES = (0.05, 0.5, 0.95)
_CONSISTENCY = 0.6745  # makes the MAD of normal data comparable to its standard deviation


@dataclass(frozen=True)
class Anomaly:
    """One figure of one version outside its baseline."""

    table: str
    feature: str | None  # None: the table's row count
    version_id: str
    version_number: int
    figure: str
    value: float
    median: float
    mad: float
    score: float  # the robust z-score; +-inf when the baseline never varied and this differs
    threshold: float
    baseline_versions: tuple[int, ...]
    seasonal: bool

    @property
    def baseline(self) -> str:
        kind = "seasonal " if self.seasonal else ""
        return (
            f"{kind}median {self.median:.6g} (MAD {self.mad:.3g}) of versions "
            f"{', '.join(f'#{n}' for n in self.baseline_versions)}; this version {self.value:.6g}"
        )


def robust_score(value: float, history: Sequence[float]) -> tuple[float, float, float]:
    """(median, MAD, robust z-score) of `value` against `history`."""
    median = statistics.median(history)
    mad = statistics.median(abs(x - median) for x in history)
    if mad == 0:
        return median, 0.0, 0.0 if value == median else math.copysign(math.inf, value - median)
    return median, mad, _CONSISTENCY * (value - median) / mad


def baseline_of(at: int, settings: AnomalySettings) -> tuple[list[int], bool]:
    """The positions (in version order) that position `at` is judged against, and whether they
    are seasonal: the same phase of the season where the history holds enough of them, else the
    `window` versions just before it."""
    season = settings.season_versions
    if season:
        same_phase = list(range(at - season, -1, -season))[: settings.window]
        if len(same_phase) >= settings.min_history:
            return sorted(same_phase), True
    before = list(range(max(0, at - settings.window), at))
    return before, False


Profiles = dict[str, dict[tuple[str | None, str], float | None]]  # version ID -> (feature, figure) -> value


def judge(
    table: str,
    versions: Sequence[FeatureVersion],
    profiles: Profiles,
    target: FeatureVersion,
    settings: AnomalySettings,
) -> list[Anomaly]:
    """Every figure of `target` that stands out from its baseline among `versions`."""
    order = [v for v in versions if v.version_id in profiles]
    at = next(i for i, v in enumerate(order) if v.version_id == target.version_id)
    positions, seasonal = baseline_of(at, settings)
    if len(positions) < settings.min_history:
        return []
    found = []
    for key, value in sorted(profiles[target.version_id].items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        if value is None:
            continue
        history = [profiles[order[i].version_id].get(key) for i in positions]
        known = [(order[i].version_number, h) for i, h in zip(positions, history, strict=True) if h is not None]
        if len(known) < settings.min_history:
            continue
        median, mad, score = robust_score(value, [h for _, h in known])
        if abs(score) > settings.threshold:
            feature, figure = key
            found.append(
                Anomaly(
                    table,
                    feature,
                    target.version_id,
                    target.version_number,
                    figure,
                    value,
                    median,
                    mad,
                    score,
                    settings.threshold,
                    tuple(n for n, _ in known),
                    seasonal,
                )
            )
    return found


def profiled(catalog: Catalog, table: str) -> Profiles:
    """The stored profiles of `table`'s versions."""
    out: Profiles = {}
    for row in catalog.rows(VERSION_PROFILES.name):
        if row["table_name"] != table:
            continue
        figures = out.setdefault(row["version_id"], {})
        if row["feature"] is None:
            figures[(None, "row_count")] = float(row["rows"])
        else:
            for figure in FEATURE_FIGURES:
                figures[(row["feature"], figure)] = row[figure]
    return out


def profile_versions(
    spark: SparkSession,
    catalog: Catalog,
    definition: FeatureTable,
    versions: Sequence[FeatureVersion],
    withheld: set[str],
) -> int:
    """Profile the versions of one definition version that have no profile yet, in one job per
    storage path; returns how many were profiled. `withheld` features get null rates only."""
    todo = [v for v in versions if v.mode != ROLLBACK]
    rows: list[dict[str, Any]] = []
    at = datetime.now(UTC)
    for path in sorted({v.storage_path for v in todo}):
        numbers = {v.version_number: v for v in todo if v.storage_path == path}
        numeric = [f.name for f in definition.features if f.dtype.is_numeric and f.name not in withheld]
        aggregates = [F.count(F.lit(1)).alias("_rows")]
        for feature in definition.features:
            column = F.col(feature.name)
            aggregates.append(F.sum(column.isNull().cast("long")).alias(f"{feature.name}__nulls"))
            if feature.name in numeric:
                value = F.when(~F.isnan(column.cast("double")), column.cast("double"))
                aggregates.append(F.avg(value).alias(f"{feature.name}__mean"))
                aggregates.append(F.percentile_approx(value, list(_QUANTILES), 10_000).alias(f"{feature.name}__q"))
        frame = spark.read.format("delta").load(path).where(F.col(VERSION_COLUMN).isin(sorted(numbers)))
        results = frame.groupBy(VERSION_COLUMN).agg(*aggregates).collect()
        for number in sorted(set(numbers) - {found[VERSION_COLUMN] for found in results}):
            rows.append(_row(numbers[number], None, 0, None, None, None, at))  # it wrote no rows
        for found in results:
            version = numbers[found[VERSION_COLUMN]]
            total = int(found["_rows"])
            rows.append(_row(version, None, total, None, None, None, at))
            for feature in definition.features:
                nulls = int(found[f"{feature.name}__nulls"] or 0)
                mean = found[f"{feature.name}__mean"] if feature.name in numeric else None
                quantiles = found[f"{feature.name}__q"] if feature.name in numeric else None
                rows.append(_row(version, feature.name, total, nulls / total if total else None, mean, quantiles, at))
    catalog.append(VERSION_PROFILES, rows)
    return len({r["version_id"] for r in rows})


def _row(
    version: FeatureVersion,
    feature: str | None,
    rows: int,
    null_rate: float | None,
    mean: Any,
    quantiles: Any,
    at: datetime,
) -> dict[str, Any]:
    low, mid, high = (float(q) if q is not None else None for q in (quantiles or (None, None, None)))
    return {
        "version_id": version.version_id,
        "table_name": version.table_name,
        "definition_version": version.definition_version,
        "version_number": version.version_number,
        "feature": feature,
        "rows": rows,
        "null_rate": null_rate,
        "mean": float(mean) if mean is not None else None,
        "p05": low,
        "p50": mid,
        "p95": high,
        "at": at,
    }
