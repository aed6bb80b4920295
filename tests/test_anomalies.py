"""Anomalies over a table's history of versions: the robust score against numpy, the seasonal
baseline by hand, and versions whose mean or row count stand out found end to end, each an alert;
a sensitive feature's values never profiled."""

from __future__ import annotations

import random
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import T0

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.catalog.schema import ALERTS
from fs_spark.config import AnomalySettings, GovernanceSettings, QualitySettings, Settings, StoreSettings
from fs_spark.quality.anomalies import baseline_of, judge, robust_score
from fs_spark.store import FeatureStore

TABLE = FeatureTable(
    name="orders",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="basket", dtype="double"), Feature(name="items", dtype="int"),
              Feature(name="income", dtype="double", tags=("pii",))],
)
SCHEMA = "customer_id long, ts timestamp, basket double, items int, income double"


def numpy_score(value, history):
    h = np.array(history, dtype=float)
    median = np.median(h)
    mad = np.median(np.abs(h - median))
    return median, mad, (0.6745 * (value - median) / mad if mad else (0.0 if value == median else np.sign(value - median) * np.inf))


@pytest.mark.parametrize("value, history", [(10, [1, 2, 3, 4, 100]), (12, [10, 11, 9, 10, 10]),
                                            (10, [10, 10, 10, 10, 10]), (7, [10, 10, 10, 10]), (-3.5, [0.5, -1.0, 2.0, 0.0, 1.5, -0.5])])
def test_the_robust_score_agrees_with_numpy(value, history):
    assert robust_score(value, history) == pytest.approx(numpy_score(value, history))


def test_the_robust_score_on_a_hand_worked_case():
    # median 3; deviations 2, 1, 0, 1, 97: MAD 1; 0.6745 * (10 - 3) / 1
    assert robust_score(10, [1, 2, 3, 4, 100]) == (3, 1, pytest.approx(4.7215))


def test_the_seasonal_baseline_takes_the_same_phase_when_history_allows():
    weekly = AnomalySettings(season_versions=7, min_history=3, window=20)
    assert baseline_of(30, weekly) == ([2, 9, 16, 23], True)
    assert baseline_of(10, weekly) == (list(range(0, 10)), False)  # one Monday before: too few
    assert baseline_of(30, AnomalySettings(window=5)) == ([25, 26, 27, 28, 29], False)


def test_a_weekly_peak_is_no_anomaly_with_a_season_and_one_without():
    rows = [1000 if n % 7 == 6 else 100 + n % 3 for n in range(29)]  # every seventh version is a peak
    versions = [SimpleNamespace(version_id=f"v{n}", version_number=n + 1) for n in range(29)]
    profiles = {f"v{n}": {(None, "row_count"): float(r)} for n, r in enumerate(rows)}
    peak = versions[27]  # n = 27: 27 % 7 == 6
    plain = judge("t", versions, profiles, peak, AnomalySettings(min_history=3))
    assert [(a.figure, a.seasonal) for a in plain] == [("row_count", False)]
    seasonal = judge("t", versions, profiles, peak, AnomalySettings(min_history=3, season_versions=7))
    assert seasonal == []
    # a peak missing on its day is an anomaly in its season
    profiles["v27"] = {(None, "row_count"): 100.0}
    [missing] = judge("t", versions, profiles, peak, AnomalySettings(min_history=3, season_versions=7))
    assert missing.seasonal and missing.baseline_versions == (7, 14, 21) and missing.score < -3.5


def _batch(spark, day: int, n: int, basket_mean: float, seed: int):
    rng = random.Random(seed)
    rows = [(i, T0 + timedelta(days=day), rng.gauss(basket_mean, 1.0), rng.randint(1, 5), rng.gauss(50_000, 5000))
            for i in range(n)]
    return rows, spark.createDataFrame(rows, SCHEMA)


@pytest.mark.slow
def test_a_shifted_mean_and_a_short_version_are_alerted_with_their_figures(spark, tmp_path):
    settings = Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
                        quality=QualitySettings(anomalies=AnomalySettings(min_history=5)))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(TABLE)
    written = {}
    for day in range(6):
        rows, frame = _batch(spark, day, 200, 10.0, seed=day)
        written[store.write("orders", frame).version_id] = rows
    quiet = store.quality.check_anomalies("orders")
    assert quiet.anomalies == () and quiet.profiled == 6

    # the profiles against pandas-free arithmetic over the rows written
    for row in store.catalog.rows("version_profiles"):
        rows = written[row["version_id"]]
        if row["feature"] == "basket":
            assert row["mean"] == pytest.approx(sum(r[2] for r in rows) / len(rows))
            assert row["p05"] < row["p50"] < row["p95"] and row["null_rate"] == 0
        if row["feature"] == "income":  # tagged pii: a null rate, never its values
            assert (row["mean"], row["p05"], row["p50"], row["p95"], row["null_rate"]) == (None, None, None, None, 0)
        if row["feature"] is None:
            assert row["rows"] == len(rows) == 200

    _, shifted = _batch(spark, 6, 200, 60.0, seed=6)
    version = store.write("orders", shifted)
    report = store.quality.check_anomalies("orders")
    assert report.profiled == 1 and report.version.version_id == version.version_id
    found = {(a.feature, a.figure) for a in report.anomalies}
    assert {("basket", "mean"), ("basket", "p50")} <= found and not any(f in ("items", "income") for f, _ in found)
    mean = next(a for a in report.anomalies if (a.feature, a.figure) == ("basket", "mean"))
    assert mean.value == pytest.approx(60, abs=0.5) and mean.median == pytest.approx(10, abs=0.3)
    assert mean.baseline_versions == (1, 2, 3, 4, 5, 6) and mean.score > 3.5
    alerts = {(a["feature"], a["metric"]): a for a in store.catalog.rows("alerts")}
    alert = alerts[("basket", "anomaly_mean")]
    assert (alert["table_name"], alert["version_id"], alert["threshold"]) == ("orders", version.version_id, 3.5)
    assert alert["value"] == pytest.approx(mean.score) and "median 10" in alert["baseline"]

    # checked after each write, by setting: a short batch is a row-count anomaly
    watched = FeatureStore(spark=spark, settings=settings.model_copy(
        update={"quality": QualitySettings(anomalies=AnomalySettings(min_history=5, after_write=True))}))
    _, short = _batch(spark, 7, 20, 10.0, seed=7)
    small = watched.write("orders", short)
    counted = {(a["feature"], a["metric"]) for a in store.catalog.rows("alerts") if a["version_id"] == small.version_id}
    assert (None, "anomaly_row_count") in counted


def test_a_principal_denied_a_feature_sees_no_figure_of_its_anomalies(spark, tmp_path):
    """An anomaly alert's baseline names the feature's median and value: data of the feature."""
    (tmp_path / "policy.yaml").write_text(
        "principals:\n  tester: {roles: [admin]}\n  alice: {roles: [analyst]}\nrules:\n"
        "  - {name: everything, roles: [admin], actions: [read, write, admin]}\n"
        "  - {name: analysts_read, roles: [analyst], actions: [read]}\n"
        "  - {name: no_basket, roles: [analyst], actions: [read], features: [basket], effect: deny}\n")

    def opened(user):
        return FeatureStore(spark=spark, settings=Settings(
            store=StoreSettings(root=str(tmp_path / "store"), user=user),
            governance=GovernanceSettings(policy_file=str(tmp_path / "policy.yaml")),
            quality=QualitySettings(anomalies=AnomalySettings(min_history=3))))

    store = opened("tester")
    store.apply(TABLE)
    for day in range(3):
        store.write("orders", _batch(spark, day, 50, 10.0, seed=day)[1])
    store.write("orders", _batch(spark, 3, 50, 60.0, seed=3)[1])
    assert ("basket", "mean") in {(a.feature, a.figure) for a in store.quality.check_anomalies("orders").anomalies}
    store.catalog.append(ALERTS, [{**{c: None for c, _, _ in ALERTS.columns}, "alert_id": "lineage-1",
                                   "metric": "lineage_dangling", "baseline": "deployment:x -> model_version:y"}])
    as_tester = {(a["feature"], a["metric"]): a for a in store.quality.alerts()}
    assert "median 10" in as_tester[("basket", "anomaly_mean")]["baseline"]
    as_alice = {(a["feature"], a["metric"]): a for a in opened("alice").quality.alerts()}
    hidden = as_alice[("basket", "anomaly_mean")]
    assert (hidden["value"], hidden["threshold"], hidden["baseline"]) == (None, None, None)
    assert as_alice[(None, "lineage_dangling")]["baseline"] == "deployment:x -> model_version:y"
