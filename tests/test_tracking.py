"""Runs, metrics, models and deployments: one record with the feature store."""

from __future__ import annotations

import json

import pytest
from delta.tables import DeltaTable

from experiment_scenario import SPEND, T0
from fs_spark import Feature, RunRef, ValidationError
from fs_spark.errors import InvalidNameError, ModelNotFoundError, RunStateError

pytestmark = pytest.mark.slow  # the experiment scenario end to end: experiments, runs, models


def test_ids_are_global_time_ordered_uuid7(experiment):
    from fs_spark.ids import is_id

    run_ids = [experiment.runs[n].id for n in ("ingest", "first", "second")]
    assert all(is_id(i) for i in run_ids) and run_ids == sorted(run_ids)
    assert experiment.models["v1"].model_version_id < experiment.models["v2"].model_version_id
    assert is_id(experiment.deployments["v1"].deployment_id)


def test_run_records_params_stage_status_user_and_times(experiment):
    info = experiment.store.tracking.run(experiment.runs["first"].id)
    assert info.params == {"lr": 0.1}
    assert (info.stage, info.status, info.user, info.hypothesis) == ("training", "finished", "tester", "spend predicts churn")
    assert info.started_at <= info.ended_at
    assert [r.name for r in experiment.store.tracking.runs("churn")] == ["baseline", "more_history"]
    assert experiment.store.tracking.metrics(info.run_id) == {"val_auc": 0.71, "val_loss": 0.5}


def test_writes_through_a_run_carry_its_ids_into_provenance_and_delta_history(experiment, spark):
    run = experiment.runs["ingest"]
    version = experiment.versions["spend1"]
    assert (version.run_id, version.experiment_id) == (run.id, run.experiment_id)
    history = DeltaTable.forPath(spark, version.storage_path).history().where(f"version = {version.delta_version}")
    meta = json.loads(history.collect()[0]["userMetadata"])["fs_spark"]
    assert (meta["run_id"], meta["experiment_id"], meta["version_id"]) == (run.id, run.experiment_id, version.version_id)
    assert experiment.versions["spend2"].run_id is None  # written outside any run


def test_training_set_build_carries_run_ids_into_manifest_and_delta_history(experiment, spark):
    ts, run = experiment.sets["first"], experiment.runs["first"]
    assert (ts.manifest.run_id, ts.manifest.experiment_id, ts.manifest.context) == (run.id, run.experiment_id, "training")
    for path in (ts.manifest.output_path, ts.manifest.entity_path):
        meta = json.loads(DeltaTable.forPath(spark, path).history().collect()[0]["userMetadata"])["fs_spark"]
        assert (meta["training_set_id"], meta["run_id"]) == (ts.id, run.id)


def test_run_puts_its_spark_jobs_in_a_job_group_named_by_its_id(store, spark):
    store.apply(SPEND)
    tracker = spark.sparkContext.statusTracker()
    with store.start_run("jobs") as run:
        run.write("spend", spark.createDataFrame([(1, T0, 1.0)], "customer_id long, ts timestamp, amount double"))
        jobs = tracker.getJobIdsForGroup(run.id)
    assert jobs, "the write's jobs run in the run's job group"
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None  # restored after the run


def test_a_failing_block_ends_the_run_as_failed_with_the_error(store):
    with pytest.raises(ZeroDivisionError):
        with store.start_run("fails") as run:
            run.log_param("depth", 3)
            1 / 0
    info = store.tracking.run(run.id)
    assert info.status == "failed" and "ZeroDivisionError" in info.error and info.params == {"depth": 3}
    with pytest.raises(RunStateError, match="is failed; cannot log metrics"):
        run.log_metric("auc", 0.5)


def test_a_run_failed_by_a_refused_write_keeps_the_rules_but_no_values(store, spark):
    payments = SPEND.with_(name="payments", features=[Feature(name="amount", dtype="double", min_value=0)])
    store.apply(payments)
    with pytest.raises(ValidationError) as refused:
        with store.start_run("fails") as run:
            run.write("payments", spark.createDataFrame([(1, T0, -123.25)], "customer_id long, ts timestamp, amount double"))
    assert "-123.25" in str(refused.value)  # the writer sees the example
    error = store.tracking.run(run.id).error  # anyone listing runs does not
    assert error.startswith("ValidationError: batch refused for feature table 'payments'")
    assert "amount: rule range[0.0, None] broken by 1 row(s)" in error and "-123.25" not in error


def test_bad_run_arguments_are_refused(store):
    with pytest.raises(ValueError, match="stage must be one of"):
        store.start_run("x", stage="prod")
    with pytest.raises(InvalidNameError):
        store.start_run("../etc")
    with store.start_run("x") as run:
        with pytest.raises(TypeError, match="parameter 'cfg' must be"):
            run.log_params({"cfg": {"nested": 1}})
    assert [r.status for r in store.tracking.runs("x")] == ["finished"]


@pytest.mark.slow
def test_one_query_gives_the_best_feature_version_combination(experiment):
    best = experiment.store.tracking.best_feature_versions("val_auc", experiment="churn").collect()
    assert [r["val_auc"] for r in best] == [0.78, 0.71]
    expected = sorted(experiment.sets["second"].manifest.feature_version_ids)
    assert best[0]["feature_version_ids"] == expected
    assert best[0]["hypothesis"] == "recent spend helps"
    assert experiment.versions["spend2"].version_id in best[0]["feature_version_ids"]
    assert experiment.versions["spend1"].version_id in best[1]["feature_version_ids"]


def test_model_versions_record_their_run_training_sets_and_feature_versions(experiment):
    v1, v2 = experiment.models["v1"], experiment.models["v2"]
    assert (v1.model_name, v1.version, v2.version) == ("churn_model", 1, 2)
    assert v1.run_id == experiment.runs["first"].id and v1.training_set_ids == [experiment.sets["first"].id]
    assert v1.feature_version_ids == sorted(experiment.sets["first"].manifest.feature_version_ids)
    assert experiment.store.models.version(("churn_model", 2)).model_version_id == v2.model_version_id
    with pytest.raises(ModelNotFoundError, match="no model version"):
        experiment.store.models.version(("churn_model", 9))


def test_deployment_records_active_feature_set_and_lineage_snapshot(experiment):
    live = experiment.store.models.live("prod")
    assert live.deployment_id == experiment.deployments["v2"].deployment_id
    assert live.features == ["spend:amount", "spend_7d:total"]
    assert live.feature_version_ids == experiment.models["v2"].feature_version_ids
    kinds = {n["kind"] for n in live.lineage["nodes"]}
    assert {"source", "transformation", "feature_version", "training_set", "run", "model_version"} <= kinds
    keys = {n["key"] for n in live.lineage["nodes"]}
    assert f"feature_version:{experiment.versions['spend2'].version_id}" in keys
    assert f"model_version:{experiment.models['v1'].model_version_id}" not in keys


def test_retire_is_an_event_and_empties_the_environment(store, spark):
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 1.0)], "customer_id long, ts timestamp, amount double"))
    ts = store.create_training_set(spark.createDataFrame([(1, T0)], "customer_id long, ts timestamp"), ["spend:amount"])
    version = store.register_model("m", training_sets=[ts.id], run=RunRef())
    store.deploy(version.model_version_id, "staging")
    retired = store.models.retire("staging")
    assert retired.status == "retired" and store.models.live("staging") is None
    assert [d.status for d in store.models.deployments("staging")] == ["active", "retired"]
    with pytest.raises(ModelNotFoundError, match="nothing is live"):
        store.models.retire("staging")


def test_reads_through_a_run_are_recorded_and_its_hypothesis_marks_its_writes(store, spark):
    from fs_spark.catalog.schema import RUN_INPUTS

    store.apply(SPEND)
    with store.start_run("reads", hypothesis="weekly spend is enough") as run:
        written = run.write("spend", spark.createDataFrame([(1, T0, 1.0)], "customer_id long, ts timestamp, amount double"))
        assert run.read("spend").first()["amount"] == 1.0
    assert (written.hypothesis, written.run_id) == ("weekly spend is enough", run.id)
    [read] = [r for r in store.catalog.rows(RUN_INPUTS.name) if r["run_id"] == run.id]
    assert (read["version_id"], read["delta_version"]) == (written.version_id, written.delta_version)
    assert f"run:{run.id}" in store.lineage.downstream(written.version_id).nodes
