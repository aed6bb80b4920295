"""Notebooks in Databricks source format run as plain Python with a local session."""

from __future__ import annotations

import pytest

import runpy
from pathlib import Path

from fs_spark.notebook import local_dbutils
from fs_spark.scoring.scoring import MODELS_EXPERIMENT

from conftest import mlflow_store

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CONF = Path(__file__).resolve().parent.parent / "conf" / "features"


def test_notebooks_are_in_databricks_source_format():
    for notebook in NOTEBOOKS.glob("*.py"):
        text = notebook.read_text()
        assert text.startswith("# Databricks notebook source\n"), notebook.name
        assert "# COMMAND ----------" in text, notebook.name


@pytest.mark.slow
def test_feature_quickstart_notebook_runs(spark, tmp_path, capsys):
    widgets = {"store_root": str(tmp_path / "store"), "definitions": str(CONF), "customers": "20"}
    runpy.run_path(str(NOTEBOOKS / "feature_quickstart.py"),
                   init_globals={"spark": spark, "dbutils": local_dbutils(widgets)})
    out = capsys.readouterr().out
    assert "version 1: 20 rows" in out
    assert "version 2: 18 rows, 2 quarantined" in out
    assert "as of version 1: 20 rows" in out and "as of version 2: 38 rows" in out


def test_local_widgets_fall_back_to_environment_then_default(monkeypatch):
    dbutils = local_dbutils({"a": "given"})
    dbutils.widgets.text("a", "default-a")
    dbutils.widgets.text("b", "default-b")
    dbutils.widgets.text("c", "default-c")
    monkeypatch.setenv("FS_SPARK_WIDGET_B", "from-env")
    assert [dbutils.widgets.get(n) for n in "abc"] == ["given", "from-env", "default-c"]


def test_a_widget_override_in_the_environment_is_no_setting_the_loader_refuses(monkeypatch):
    """The notebooks' documented override, FS_SPARK_WIDGET_STORE_ROOT, beside the settings loader."""
    from fs_spark.config import load_settings
    from fs_spark.errors import ConfigError

    env = {"FS_SPARK_WIDGET_STORE_ROOT": "/tmp/from-widget", "FS_SPARK_STORE__ROOT": "/tmp/from-settings"}
    assert load_settings(env=env).store.root == "/tmp/from-settings"
    monkeypatch.setenv("FS_SPARK_WIDGET_STORE_ROOT", "/tmp/from-widget")
    dbutils = local_dbutils()
    dbutils.widgets.text("store_root", "./fs_store")
    assert dbutils.widgets.get("store_root") == "/tmp/from-widget"
    with pytest.raises(ConfigError, match="no setting 'widgets'"):  # a misspelt setting is still refused
        load_settings(env={"FS_SPARK_WIDGETS__X": "1"})


@pytest.mark.slow
def test_experiment_notebook_runs_end_to_end(spark, tmp_path, capsys):
    import mlflow

    widgets = {"store_root": str(tmp_path / "store"), "definitions": str(NOTEBOOKS.parent / "conf" / "features"),
               "mlflow_tracking_uri": mlflow_store(tmp_path, "churn_notebook"), "lineage_html": str(tmp_path / "l.html")}
    before = mlflow.get_tracking_uri()
    try:
        runpy.run_path(str(NOTEBOOKS / "experiment.py"), init_globals={"spark": spark, "dbutils": local_dbutils(widgets)})
    finally:
        mlflow.set_tracking_uri(before)
    out = capsys.readouterr().out
    assert "customer_activity version 2 by run" in out
    assert "'val_auc': " in out and "MLflow model m-" in out
    assert "deployed churn_threshold v1 to prod: ['customer_activity:orders_7d', 'customer_activity:spend_7d']" in out
    assert "upstream source: orders export 2024-06-01" in out and "upstream source: orders export 2024-06-02" in out
    assert "feature version 1 reached: ['prod: churn_threshold v1']" in out
    assert "2 training sets" in out and "0 dangling, 0 unauthorised" in out
    assert (tmp_path / "l.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.slow
def test_score_batch_notebook_trains_logs_and_scores_from_keys(spark, tmp_path, capsys):
    import mlflow

    widgets = {"store_root": str(tmp_path / "store"), "definitions": str(CONF),
               "mlflow_tracking_uri": mlflow_store(tmp_path, MODELS_EXPERIMENT), "predictions": str(tmp_path / "p")}
    before = mlflow.get_tracking_uri()
    try:
        space = runpy.run_path(str(NOTEBOOKS / "score_batch.py"),
                               init_globals={"spark": spark, "dbutils": local_dbutils(widgets)})
    finally:
        mlflow.set_tracking_uri(before)
    out = capsys.readouterr().out
    assert "logged churn_scoring v1: models:/m-" in out and "scored 10 customers from their keys alone" in out
    # the oracle: the trained model itself, in pandas, on the features the predictions were made from
    written = spark.read.format("delta").load(str(tmp_path / "p")).toPandas().sort_values("customer_id")
    assert written["customer_id"].tolist() == list(range(0, 60, 6))
    assert written["spend_7d"].tolist() == [float((c * 7) % 40) for c in range(0, 60, 6)]
    expected = space["model"].predict(written[["spend_7d", "orders_7d"]]).astype(float)
    assert written["prediction"].tolist() == expected.tolist()
    assert f"{int(expected.sum())} predicted to churn" in out
