"""Reconciliation: every recorded link is checked; a removal without an authorised record is reported."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from delta.tables import DeltaTable

from experiment_scenario import SPEND, T0
from fs_spark.catalog.schema import MAINTENANCE_EVENTS, MODEL_VERSIONS
from fs_spark.cli import run
from fs_spark.ids import new_id
from fs_spark.observability.health import check_health
from fs_spark.observability.watch import watch
from fs_spark.session import submit_args

ROOT = Path(__file__).resolve().parent.parent
ROWS = "customer_id long, ts timestamp, amount double"

pytestmark = pytest.mark.slow  # reconciliation of a whole store


@pytest.fixture
def built(store, spark):
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 1.0), (2, T0, 2.0)], ROWS))
    store.write("spend", spark.createDataFrame([(3, T0, 3.0)], ROWS))
    entities = spark.createDataFrame([(1, T0), (3, T0)], "customer_id long, ts timestamp")
    ts = store.create_training_set(entities, ["spend:amount"])
    store.register_model("m", training_sets=[ts])
    return ts


@pytest.mark.slow
def test_forced_vacuum_is_an_authorised_removal(store, built, spark):
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, built.lookups[0].storage_path).optimize().executeCompaction()
        store.vacuum("spend", retention_hours=0, force=True, reason="disk full")
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    [event] = store.catalog.rows(MAINTENANCE_EVENTS.name)
    assert (event["forced"], event["affected_training_sets"], event["reason"]) == (True, [built.id], "disk full")
    report = store.lineage.reconcile()
    [link] = report.dangling
    assert link.holder == f"training_set:{built.id}" and link.target == f"feature_version:{built.manifest.feature_version_ids[0]}"
    assert "missing" in link.problem and link.authorised_by == event["event_id"]
    assert report.ok
    # health reports the run: one dangling link, authorised, so nothing to degrade for
    reconciled = check_health(store).check("lineage").detail["last_reconcile"]
    assert (reconciled["links_checked"], reconciled["dangling"], reconciled["unauthorised"]) == (report.checked, 1, 0)


def _delete_a_data_file(spark, path: str) -> None:
    """Delete one of the files the table's current version lists (a writer may also leave an
    empty file that the log never lists)."""
    listed = sorted(spark.read.format("delta").load(path).inputFiles())
    os.remove(listed[0].removeprefix("file:"))


def test_files_deleted_by_hand_and_records_that_point_nowhere_are_unauthorised(store, built, spark):
    _delete_a_data_file(spark, built.lookups[0].storage_path)
    ghost = new_id()
    store.catalog.append(MODEL_VERSIONS, [{
        "model_version_id": new_id(), "model_id": new_id(), "model_name": "orphan", "version": 1, "run_id": None,
        "experiment_id": None, "training_set_ids": [ghost], "feature_version_ids": [], "artifact_uri": None,
        "mlflow_model_id": None, "mlflow_registered_version": None, "user": "someone",
        "created_at": datetime.now(timezone.utc),
    }])
    report = store.lineage.reconcile()
    problems = {(d.target.split(":")[0], d.problem.split(":")[0]) for d in report.unauthorised}
    assert ("feature_version", "unreadable at Delta version 2") in problems
    assert ("training_set", "no such training set record") in problems
    assert not report.ok
    lineage = check_health(store).check("lineage")
    assert lineage.status == "degraded"
    assert lineage.detail["last_reconcile"]["unauthorised"] == len(report.unauthorised) >= 2
    assert lineage.detail["last_reconcile"]["unauthorised_links"] == [str(d) for d in report.unauthorised]
    unreconciled = [a["baseline"] for a in watch(store).alerts if a["metric"] == "lineage_unreconciled"]
    assert len(unreconciled) == len(report.unauthorised) and any(ghost in a for a in unreconciled)
    # the anomaly check of the table with the deleted file failed without stopping watch's other rules
    failed = check_health(store).check("last_failed_job")
    assert (failed.status, failed.detail["operation"], failed.detail["table"]) == ("degraded", "anomalies", "spend")
    out = io.StringIO()
    assert run(["--root", store.root, "reconcile"], out=out) == 1
    assert "UNAUTHORISED" in out.getvalue() and ghost in out.getvalue()


@pytest.mark.slow
def test_reconcile_job_runs_under_spark_submit(store, built, spark):
    _delete_a_data_file(spark, built.manifest.output_path)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", *submit_args(),
               "jobs/reconcile.py", "--root", store.root]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["checked"] >= 5 and result["dangling"] == 1
    assert result["unauthorised"][0].startswith(f"training_set:{built.id} -> delta:")


def test_cli_lists_runs_models_and_draws_lineage(experiment, tmp_path):
    root = experiment.store.root
    out = io.StringIO()
    assert run(["--root", root, "runs", "--experiment", "churn"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "baseline" in lines[0] and "val_auc=0.71" in lines[0] and "val_auc=0.78" in lines[1]
    out = io.StringIO()
    run(["--root", root, "models"], out=out)
    assert "churn_model v2" in out.getvalue() and "deployment prod: churn_model v2 active" in out.getvalue()
    out = io.StringIO()
    html, dot = tmp_path / "l.html", tmp_path / "l.dot"
    version = experiment.versions["spend2"].version_id
    assert run(["--root", root, "lineage", version, "--direction", "downstream", "--html", str(html), "--dot", str(dot)], out=out) == 0
    text = out.getvalue()
    assert "deployment" in text and "churn_model v2" in text and "churn_model v1" not in text
    assert html.read_text().startswith("<!DOCTYPE html>") and dot.read_text().startswith("digraph")


def test_a_live_feature_dropped_without_a_deprecation_is_unauthorised(store, spark):
    from datetime import timedelta

    from fs_spark import Entity, Feature, FeatureTable

    table = FeatureTable(name="profile", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts",
                         features=[Feature(name="age", dtype="int"), Feature(name="tier", dtype="string"),
                                   Feature(name="city", dtype="string")])
    store.apply(table)
    store.write("profile", spark.createDataFrame([(1, T0, 30, "gold", "Lyon")], "customer_id long, ts timestamp, age int, tier string, city string"))
    ts = store.create_training_set(spark.createDataFrame([(1, T0)], "customer_id long, ts timestamp"),
                                   ["profile:age", "profile:tier", "profile:city"])
    store.deploy(store.register_model("m", training_sets=[ts]).model_version_id, "prod")
    now = datetime.now(timezone.utc)
    event = store.deprecate("profile", "tier", announce=now - timedelta(days=2), end=now - timedelta(days=1), reason="unused")
    assert event.feature == "tier"
    store.apply(table.with_(features=[table.features[2]], definition_version=2))  # age and tier dropped
    report = store.lineage.reconcile()
    by_target = {d.target: d for d in report.dangling}
    assert by_target["feature:profile:age"].authorised_by is None
    assert by_target["feature:profile:tier"].authorised_by is not None
    assert "feature:profile:city" not in by_target and not report.ok
