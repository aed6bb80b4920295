"""MLflow, both ways, against a real MLflow tracking store (sqlite, via sqlalchemy and alembic)."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow import MlflowClient

from experiment_scenario import SPEND, T0
from fs_spark import FeatureStore
from fs_spark.config import MlflowSettings, Settings, StoreSettings

SPEND_ROWS = "customer_id long, ts timestamp, amount double"

pytestmark = pytest.mark.slow  # a real MLflow tracking store, every test


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="module")
def linked(spark, tmp_path_factory, tracking_uri):
    """A store that starts an MLflow run for each of its runs, with one run trained end to end."""
    settings = Settings(store=StoreSettings(root=str(tmp_path_factory.mktemp("mlstore") / "store"), user="tester"),
                        mlflow=MlflowSettings(tracking_uri=tracking_uri, start_runs=True))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(SPEND)
    version = store.write("spend", spark.createDataFrame([(1, T0, 5.0), (2, T0, 7.0)], SPEND_ROWS))
    entities = spark.createDataFrame([(1, T0, 1), (2, T0, 0)], "customer_id long, ts timestamp, label int")
    with store.start_run("churn_mlflow", name="trial", params={"depth": 4}) as run:
        train = run.create_training_set(entities, ["spend:amount"], label="label", name="train")
        valid = run.create_training_set(entities, ["spend:amount"], label="label", context="validation")
        run.log_metrics({"val_auc": 0.9})
        model = run.register_model("churn", training_sets=[train])
    return store, version, run, train, valid, model


def test_fs_run_is_mirrored_by_an_mlflow_run_tagged_with_our_ids(linked):
    store, _, run, *_ = linked
    info = store.tracking.run(run.id)
    remote = MlflowClient().get_run(info.mlflow_run_id)
    assert remote.info.status == "FINISHED" and remote.info.run_name == "trial"
    assert remote.data.tags["fs_spark.run_id"] == run.id
    assert remote.data.tags["fs_spark.experiment_id"] == run.experiment_id
    assert remote.data.params == {"depth": "4"} and remote.data.metrics == {"val_auc": 0.9}


def test_training_sets_are_logged_as_dataset_inputs_with_context_delta_source_and_our_ids(linked):
    store, version, run, train, valid, _ = linked
    remote = MlflowClient().get_run(store.tracking.run(run.id).mlflow_run_id)
    inputs = {}
    for item in remote.inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        inputs[tags["fs_spark.training_set_id"]] = (item.dataset, tags)
    dataset, tags = inputs[train.id]
    assert tags["mlflow.data.context"] == "training" and inputs[valid.id][1]["mlflow.data.context"] == "validation"
    assert dataset.source_type == "delta_table" and dataset.name == "train"
    assert json.loads(dataset.source)["path"] == train.manifest.output_path
    assert tags["fs_spark.content_digest"] == train.manifest.content_digest
    assert tags["fs_spark.feature_version_ids"] == version.version_id
    assert train.manifest.mlflow_run_id == remote.info.run_id and train.manifest.context == "training"


def test_delta_version_zero_survives_in_our_own_tag(linked):
    """MLflow's Delta source drops version 0 (`if version:`); every training set table is at 0."""
    store, _, run, train, *_ = linked
    remote = MlflowClient().get_run(store.tracking.run(run.id).mlflow_run_id)
    [item] = [i for i in remote.inputs.dataset_inputs if any(t.value == train.id for t in i.tags)]
    assert train.manifest.output_delta_version == 0
    assert "delta_table_version" not in json.loads(item.dataset.source)  # MLflow's loss
    assert {t.key: t.value for t in item.tags}["fs_spark.delta_version"] == "0"  # kept by us


def test_model_version_is_an_mlflow_logged_model_and_registered_version(linked):
    store, _, run, train, _, model = linked
    assert model.mlflow_model_id and model.mlflow_registered_version == "1"
    logged = MlflowClient().get_logged_model(model.mlflow_model_id)
    assert logged.tags["fs_spark.model_version_id"] == model.model_version_id
    assert logged.source_run_id == store.tracking.run(run.id).mlflow_run_id
    registered = MlflowClient().get_model_version("churn", "1")
    assert registered.source == f"models:/{model.mlflow_model_id}" and registered.tags["fs_spark.training_set_ids"] == train.id


def test_for_mlflow_run_and_model_give_the_feature_versions_and_training_sets(linked):
    store, version, run, train, valid, model = linked
    mlflow_run_id = store.tracking.run(run.id).mlflow_run_id
    behind = store.lineage.for_mlflow_run(mlflow_run_id)
    assert behind.run_ids == [run.id] and behind.training_set_ids == sorted([train.id, valid.id])
    assert behind.feature_version_ids == [version.version_id] and behind.model_version_ids == [model.model_version_id]
    by_model = store.lineage.for_mlflow_model(model.mlflow_model_id)
    assert by_model.training_set_ids == [train.id] and by_model.mlflow_run_ids == [mlflow_run_id]
    assert store.lineage.mlflow_runs(version.version_id) == [mlflow_run_id]  # and the reverse


def test_a_build_inside_a_users_active_mlflow_run_is_logged_to_it(spark, tmp_path, tracking_uri):
    settings = Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
                        mlflow=MlflowSettings(tracking_uri=tracking_uri))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 5.0)], SPEND_ROWS))
    entities = spark.createDataFrame([(1, T0)], "customer_id long, ts timestamp")
    mlflow.set_experiment("users_own")
    with mlflow.start_run() as active:
        ts = store.create_training_set(entities, ["spend:amount"])
        with store.start_run("linked") as run:
            pass
    assert ts.manifest.mlflow_run_id == active.info.run_id and ts.manifest.context == "training"
    assert store.tracking.run(run.id).mlflow_run_id == active.info.run_id
    remote = MlflowClient().get_run(active.info.run_id)
    assert remote.info.status == "FINISHED"  # the user's run is theirs to end
    assert [t.value for i in remote.inputs.dataset_inputs for t in i.tags if t.key == "fs_spark.training_set_id"] == [ts.id]
    outside = store.create_training_set(entities, ["spend:amount"])
    assert outside.manifest.mlflow_run_id is None and outside.manifest.context is None
