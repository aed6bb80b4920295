"""Distances between two distributions, each known by its quantile function.

A Spark job gives every feature's quantiles at fixed levels in one pass (`percentile_approx`),
so the distances are computed from quantiles rather than raw rows: Wasserstein-1 is the mean
gap between the quantile functions, Kolmogorov-Smirnov the largest gap between the CDFs read
off them, and PSI compares the share of each side in the baseline's decile bins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

EPSILON = 1e-4  # floor of a bin's share in PSI, so an empty bin scores high but finite


def cdf(quantiles: Sequence[float], levels: Sequence[float], x: np.ndarray) -> np.ndarray:
    """The CDF at `x` of the distribution whose quantile at `levels[i]` is `quantiles[i]`:
    the highest level whose quantile is at or below x (0 below the minimum)."""
    q = np.asarray(quantiles, dtype=float)
    p = np.concatenate([[0.0], np.asarray(levels, dtype=float)])
    return p[np.searchsorted(q, x, side="right")]


def wasserstein(a: Sequence[float], b: Sequence[float]) -> float:
    """Mean absolute gap between two quantile functions sampled at the same evenly spaced levels."""
    return float(np.mean(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


def kolmogorov_smirnov(a: Sequence[float], b: Sequence[float], levels: Sequence[float]) -> float:
    """Largest gap between the two CDFs, looked at every quantile either side has."""
    points = np.union1d(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    return float(np.max(np.abs(cdf(a, levels, points) - cdf(b, levels, points))))


def psi_from_shares(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two sets of bin shares."""
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(a: Sequence[float], b: Sequence[float], levels: Sequence[float], bins: int = 10) -> float:
    """PSI over the baseline's `bins` quantile bins (deciles by default); shares of each side read
    off its CDF at the bin edges. Edges that coincide (a baseline with few values) merge bins."""
    edges = np.unique(np.quantile(np.asarray(a, dtype=float), np.linspace(0, 1, bins + 1)[1:-1], method="lower"))

    def shares(q):
        at_edges = cdf(q, levels, edges)
        return np.diff(np.concatenate([[0.0], at_edges, [1.0]]))

    return psi_from_shares(shares(a), shares(b))


def categorical_psi(expected: Mapping[str, int], actual: Mapping[str, int]) -> float:
    """PSI over categories, values seen on either side included."""
    values = sorted(set(expected) | set(actual), key=str)
    e_total, a_total = sum(expected.values()) or 1, sum(actual.values()) or 1
    return psi_from_shares([expected.get(v, 0) / e_total for v in values], [actual.get(v, 0) / a_total for v in values])


def scale(quantiles: Sequence[float], levels: Sequence[float]) -> float:
    """The baseline's interquartile range (or full range when that is 0), to make Wasserstein unit-free."""
    q = np.asarray(quantiles, dtype=float)
    p = np.asarray(levels, dtype=float)
    iqr = float(np.interp(0.75, p, q) - np.interp(0.25, p, q))
    spread = iqr if iqr > 0 else float(q[-1] - q[0])
    return spread if spread > 0 and math.isfinite(spread) else 1.0
