"""Drift checks: distances against exact computations, shifted data caught, resampled data passed,
alerts recorded and sent, quarantine on breach, sampling bias, and bad requests refused."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from fs_spark import Entity, Feature, FeatureStore, FeatureTable, VersionQuarantinedError
from fs_spark.catalog.schema import DRIFT_CHECKS, DRIFT_SCORES
from fs_spark.cli import run
from fs_spark.config import AlertSettings, DriftThresholds, QualitySettings, Settings, StoreSettings
from fs_spark.errors import DriftBaselineError
from fs_spark.quality import distances as D
from fs_spark.quality.profile import LEVELS

from conftest import json_endpoint

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
N = 20_000
SENSORS = FeatureTable(
    name="sensors",
    entity=Entity(name="device", keys={"device_id": "long"}),
    event_time="ts",
    features=[Feature(name="temp", dtype="double", allow_nan=True), Feature(name="load", dtype="double"),
              Feature(name="mode", dtype="string")],
)
SCHEMA = "device_id long, ts timestamp, temp double, load double, mode string"


# --- the distances, against exact computations on raw samples --------------------------------


def _exact_ks(a, b):
    points = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), points, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), points, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def _exact_psi(a, b):
    edges = np.quantile(a, np.linspace(0, 1, 11)[1:-1])
    share = lambda x: np.bincount(np.searchsorted(edges, x, side="right"), minlength=10) / len(x)  # noqa: E731
    return D.psi_from_shares(share(a), share(b))


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_distances_from_quantiles_match_exact_ones(shift):
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 50_000), rng.normal(shift, 1, 50_000)
    qa, qb = np.quantile(a, LEVELS), np.quantile(b, LEVELS)
    assert D.kolmogorov_smirnov(qa, qb, LEVELS) == pytest.approx(_exact_ks(a, b), abs=0.015)
    assert D.wasserstein(qa, qb) == pytest.approx(np.mean(np.abs(np.sort(a) - np.sort(b))), abs=0.03)
    assert D.numeric_psi(qa, qb, LEVELS) == pytest.approx(_exact_psi(a, b), abs=0.02 + 0.05 * _exact_psi(a, b))


def test_categorical_psi_counts_values_seen_on_one_side_only():
    assert D.categorical_psi({"a": 50, "b": 50}, {"a": 50, "b": 50}) == 0.0
    assert D.categorical_psi({"a": 50, "b": 50}, {"a": 50, "c": 50}) > 1.0


# --- checks on a real store --------------------------------------------------------------------


def _batch(spark, seed, *, shift=0.0, nulls=0.0, modes=("idle", "run", "stop"), day=0, devices=N):
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    load = rng.normal(0.5, 0.1, devices)
    table = pa.table({
        "device_id": pa.array(np.arange(devices), pa.int64()),
        "ts": pa.array([T0 + timedelta(days=day, seconds=i) for i in range(devices)], pa.timestamp("us", tz="UTC")),
        "temp": rng.normal(20 + shift, 2, devices),
        "load": pa.array(load, mask=rng.random(devices) < nulls),
        "mode": rng.choice(list(modes), devices).astype(str),
    })
    return spark.createDataFrame(table)  # Arrow: a second, not a minute, for 20k rows


@pytest.fixture(scope="module")
def drifting(spark, tmp_path_factory):
    """Version 1 and 2 from the same distribution; 3 shifted, with more nulls and a new mode."""
    folder = tmp_path_factory.mktemp("drift")
    settings = Settings(store=StoreSettings(root=str(folder / "store"), user="tester"), quality=QualitySettings(
        drift=DriftThresholds(min_key_coverage=0.5), alerts=AlertSettings(kind="file", path=str(folder / "alerts.jsonl"))))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(SENSORS)
    for seed, day, changes in ((1, 0, {}), (2, 1, {}), (3, 2, {"shift": 1.5, "nulls": 0.2, "modes": ("idle", "run", "stop", "fault")})):
        store.write("sensors", _batch(spark, seed, day=day, **changes))
    entities = spark.createDataFrame([(i, T0 + timedelta(days=1)) for i in range(0, N, 10)], "device_id long, ts timestamp")
    ts = store.create_training_set(entities, ["sensors:temp", "sensors:load", "sensors:mode"])
    return store, ts, folder / "alerts.jsonl"


@pytest.mark.slow
def test_resampled_data_of_the_same_distribution_is_not_drift(drifting):
    store, _, _ = drifting
    report = store.quality.check_drift("sensors", version=2)
    assert not report.breached, report.to_text()
    temp = report.feature("temp")
    assert temp.psi < 0.01 and temp.ks < 0.03 and temp.wasserstein < 0.05
    assert report.result.rows == (N, N) and not report.result.schema.any


@pytest.mark.slow
def test_shifted_data_breaches_every_distance_and_names_the_feature(drifting):
    store, _, alerts_file = drifting
    report = store.quality.check_drift("sensors")  # version 3 against version 2
    assert report.breached and report.baseline == f"version:{store.version('sensors', 2).version_id}"
    temp, load, mode = (report.feature(n) for n in ("temp", "load", "mode"))
    assert set(temp.breaches) == {"psi", "ks", "wasserstein"} and temp.ks > 0.25
    assert load.breaches == ("null_rate",) and load.null_rate[1] == pytest.approx(0.2, abs=0.02)
    assert mode.new_categories == ("fault",) and "new_categories" in mode.breaches
    recorded = [a for a in store.quality.alerts("sensors") if a["check_id"] == report.check_id]
    assert {(a["feature"], a["metric"]) for a in recorded} == {
        ("temp", "psi"), ("temp", "ks"), ("temp", "wasserstein"), ("load", "null_rate"), ("mode", "new_categories"),
        ("mode", "psi")}
    sent = [json.loads(line) for line in alerts_file.read_text().splitlines()]
    assert {a["alert_id"] for a in recorded} <= {a["alert_id"] for a in sent}
    scores = [r for r in store.catalog.rows(DRIFT_SCORES.name) if r["check_id"] == report.check_id]
    assert {r["feature"]: r["breaches"] for r in scores}["temp"] == ["psi", "ks", "wasserstein"]
    [check] = [r for r in store.catalog.rows(DRIFT_CHECKS.name) if r["check_id"] == report.check_id]
    assert check["breaches"] == len(recorded) and check["version_number"] == 3
    assert "BREACH" in report.to_text() and "temp" in report.to_text()


@pytest.mark.slow
def test_against_a_training_set_measures_drift_and_sampling_bias(drifting):
    store, ts, _ = drifting
    steady = store.quality.check_drift("sensors", version=2, baseline=ts.id, features=["temp"])
    assert not steady.feature("temp").breaches
    sampling = steady.result.sampling
    assert sampling.key_coverage == pytest.approx(0.1, abs=0.02)  # one device in ten
    assert "key_coverage" in sampling.breaches  # below the 0.5 asked for
    assert sampling.time_coverage < 0.6  # all entity rows sit on day 1 of days 0-2
    shifted = store.quality.check_drift("sensors", version=3, baseline=ts.id)
    assert "ks" in shifted.feature("temp").breaches


@pytest.mark.slow
def test_breach_quarantines_the_version_when_configured_and_builds_refuse_it(spark, tmp_path):
    settings = Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
                        quality=QualitySettings(quarantine_on_breach=True))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(SENSORS)
    store.write("sensors", _batch(spark, 1, devices=2000))
    store.write("sensors", _batch(spark, 2, shift=3.0, day=1, devices=2000))
    report = store.quality.check_drift("sensors")
    assert report.quarantined and "quarantined" in report.to_text()
    entities = spark.createDataFrame([(1, T0 + timedelta(days=3))], "device_id long, ts timestamp")
    with pytest.raises(VersionQuarantinedError, match="drift check"):
        store.create_training_set(entities, ["sensors:temp"])


@pytest.mark.slow
def test_bad_drift_requests_are_refused_by_name(drifting):
    store, _, _ = drifting
    with pytest.raises(DriftBaselineError, match="sensors.*#1 has no previous version"):
        store.quality.check_drift("sensors", version=1)
    with pytest.raises(DriftBaselineError, match="baseline must be 'previous' or a training set ID"):
        store.quality.check_drift("sensors", baseline="yesterday")


@pytest.mark.slow
def test_drift_cli_prints_the_report_and_fails_on_breach(drifting):
    store, _, _ = drifting
    out = io.StringIO()
    assert run(["--root", store.root, "drift", "sensors", "--version", "2"], out=out) == 0
    assert "0 breach(es)" in out.getvalue()
    out = io.StringIO()
    assert run(["--root", store.root, "drift", "sensors", "--fail-on-breach"], out=out) == 1
    assert "temp" in out.getvalue() and "BREACH" in out.getvalue()


@pytest.mark.slow
def test_drift_job_runs_under_spark_submit(drifting):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from fs_spark.session import submit_args

    store, _, _ = drifting
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2]", *submit_args(),
               "jobs/drift_check.py", "--root", store.root, "--table", "sensors", "--fail-on-breach"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=root, env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert any(b[:2] == ["temp", "ks"] for b in result["breaches"])
    assert result["version_id"] == store.version("sensors", 3).version_id and len(result["alert_ids"]) == len(result["breaches"])


def _alert():
    return {"alert_id": "a1", "table_name": "sensors", "feature": "temp", "metric": "ks", "value": 0.4,
            "threshold": 0.1, "version_id": "v", "baseline": "version:u"}


def test_webhook_sink_posts_alerts_and_a_dead_endpoint_is_an_error():
    from fs_spark.quality.alerts import AlertSinkError, make_sink

    with json_endpoint() as (base, received):
        url = f"{base}/alerts"
        make_sink(AlertSettings(kind="webhook", url=url)).send([_alert()])
    assert received == [("/alerts", {"alerts": [_alert()]})]
    with pytest.raises(AlertSinkError, match="webhook .* failed"):
        make_sink(AlertSettings(kind="webhook", url=url, timeout_seconds=2)).send([_alert()])
    with pytest.raises(AlertSinkError, match="quality.alerts.url is not set"):
        make_sink(AlertSettings(kind="webhook"))


def test_log_sink_writes_one_warning_per_alert(caplog):
    from fs_spark.quality.alerts import make_sink

    with caplog.at_level("WARNING", logger="fs_spark.alerts"):
        make_sink(AlertSettings()).send([_alert()])
    assert "fs_spark alert: a1 sensors.temp ks=0.4 > 0.1" in caplog.text


@pytest.mark.slow
def test_schema_drift_comes_from_the_definitions_each_version_was_written_under(spark, tmp_path):
    """Reads conform every version to one definition, so only the definitions show what changed."""
    counters = FeatureTable(
        name="counters", entity=Entity(name="device", keys={"device_id": "long"}), event_time="ts",
        features=[Feature(name="hits", dtype="int"), Feature(name="mode", dtype="string")])
    store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester")))
    store.apply(counters)
    rows = [(i, T0 + timedelta(seconds=i), i % 7, "idle") for i in range(500)]
    store.write("counters", spark.createDataFrame(rows, "device_id long, ts timestamp, hits int, mode string"))
    widened = counters.with_(features=[
        Feature(name="hits", dtype="long"), Feature(name="mode", dtype="string"),
        Feature(name="humidity", dtype="double")])
    store.apply(widened)
    later = [(i, T0 + timedelta(days=1, seconds=i), i % 7, "idle", 0.5) for i in range(500)]
    store.write("counters", spark.createDataFrame(later, "device_id long, ts timestamp, hits long, mode string, humidity double"))

    report = store.quality.check_drift("counters")
    assert report.result.schema.added == ("humidity",) and report.result.schema.removed == ()
    assert report.result.schema.changed == ("hits: int -> long",)
    assert report.feature("hits").ks == 0.0  # same values, compared as numbers across the widening
    assert ("", "schema_changes", 2.0, 0.0) in report.result.breaches
    assert "schema: added ['humidity']" in report.to_text()
    [check] = [r for r in store.catalog.rows(DRIFT_CHECKS.name) if r["check_id"] == report.check_id]
    assert check["schema_changes"] == ["added humidity", "changed hits: int -> long"]

    # A breaking change is a new definition version; its first version is compared with the last of the old one.
    retyped = widened.with_(definition_version=2, features=[
        Feature(name="hits", dtype="string"), Feature(name="humidity", dtype="double")])
    store.apply(retyped)
    newest = [(i, T0 + timedelta(days=2, seconds=i), str(i % 7), 0.5) for i in range(500)]
    store.write("counters", spark.createDataFrame(newest, "device_id long, ts timestamp, hits string, humidity double"))
    crossing = store.quality.check_drift("counters")
    assert crossing.baseline == f"version:{report.version.version_id}"
    assert crossing.result.schema.removed == ("mode",) and crossing.result.schema.changed == ("hits: long -> string",)
    assert [f.feature for f in crossing.result.features] == ["humidity"]  # a number become a category is not measured
