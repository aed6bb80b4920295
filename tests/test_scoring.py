"""Models that carry their features: log_model puts the feature spec inside the MLflow model
(a real tracking store), score_batch looks the features up from keys alone and scores on the
executors, and a model whose features have since changed is refused, naming them."""

from __future__ import annotations

from datetime import timedelta

import mlflow
import mlflow.sklearn
import pytest
from mlflow import MlflowClient
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.catalog.schema import SCORINGS
from fs_spark.config import MlflowSettings, Settings, StoreSettings
from fs_spark.errors import StaleModelFeaturesError
from fs_spark.scoring.scoring import StaleModelFeaturesWarning
from fs_spark.scoring.spec import FeatureSpec

from conftest import T0, delta_min_values, mlflow_store

pytestmark = pytest.mark.slow  # a real MLflow tracking store and Spark UDFs, every test

DAY = timedelta(days=1)
# A composite key of mixed types, declared (shop, item) while the rows list item first.
SALES = FeatureTable(
    name="sales",
    entity=Entity(name="item", keys={"shop": "string", "item": "int"}),
    event_time="ts",
    features=[Feature(name="price", dtype="double"), Feature(name="stock", dtype="long")],
)
SALES_SCHEMA = "item int, shop string, ts timestamp, price double, stock long"
ENTITIES = "shop string, item int, ts timestamp, demand double"


def demand(price: float, stock: int) -> float:
    """The label the model learns exactly: a linear function of its two features."""
    return 3.0 * price - 0.5 * stock + 7.0


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scoring")
    uri = mlflow_store(folder, "demand")
    settings = Settings(store=StoreSettings(root=str(folder / "store"), user="tester"),
                        mlflow=MlflowSettings(tracking_uri=uri, start_runs=True))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(SALES)
    rows = [(i, ["north", "south"][i % 2], T0, float(i % 7) + 1.0, i * 3 % 11) for i in range(40)]
    store.write("sales", spark.createDataFrame(rows, SALES_SCHEMA))
    later = [(i, ["north", "south"][i % 2], T0 + 2 * DAY, float(i % 5) + 10.0, i % 4) for i in range(0, 40, 2)]
    store.write("sales", spark.createDataFrame(later, SALES_SCHEMA))
    entities = spark.createDataFrame(
        [(["north", "south"][i % 2], i, T0 + DAY, demand(float(i % 7) + 1.0, i * 3 % 11)) for i in range(40)],
        ENTITIES)
    with store.start_run("demand", name="fit") as run:
        training = run.create_training_set(entities, ["sales:price", "sales:stock"], label="demand")
        frame = training.to_df()
        # missing features (a key never written) are imputed: the model scores every row
        model = make_pipeline(SimpleImputer(), LinearRegression()).fit(frame[["price", "stock"]], frame["demand"])
        version = run.log_model(model, mlflow.sklearn, training_set=training, registered_model_name="demand",
                                serialization_format="cloudpickle")
    return store, training, version, uri


def test_the_model_carries_its_feature_spec_and_is_registered_in_both_places(trained):
    store, training, version, uri = trained
    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info(version.artifact_uri)
    spec = FeatureSpec.from_metadata(info.metadata)
    assert spec.training_set_id == training.id and spec.input_columns == ["price", "stock"]
    assert spec.feature_version_ids == training.manifest.feature_version_ids == [store.version("sales", 2).version_id]
    assert version.training_set_ids == [training.id] and version.mlflow_model_id == info.model_id
    registered = MlflowClient(uri).get_model_version("demand", version.mlflow_registered_version)
    assert registered.tags["fs_spark.model_version_id"] == version.model_version_id
    assert registered.run_id == store.tracking.run(version.run_id).mlflow_run_id
    assert [v.model_version_id for v in store.models.versions("demand")] == [version.model_version_id]
    # the logged model sits in its run's experiment, with its artifacts there, not in MLflow's Default one
    logged = MlflowClient(uri).get_logged_model(info.model_id)
    run_experiment = MlflowClient(uri).get_run(registered.run_id).info.experiment_id
    assert logged.experiment_id == run_experiment != "0" and logged.source_run_id == registered.run_id
    assert logged.artifact_location.startswith(MlflowClient(uri).get_experiment(run_experiment).artifact_location)


def test_score_batch_looks_features_up_from_keys_and_scores_on_the_executors(trained, spark):
    store, _, version, uri = trained
    mlflow.set_tracking_uri(uri)
    keys = spark.createDataFrame([("north", 4, T0 + DAY), ("south", 3, T0 + 3 * DAY), ("north", 99, T0 + DAY),
                                  ("south", 4, T0 + DAY)], "shop string, item int, ts timestamp")
    scored = store.score_batch(version.model_version_id, keys).collect()
    assert [(r["shop"], r["item"]) for r in scored] == [("north", 4), ("south", 3), ("north", 99), ("south", 4)]
    # point in time: item 4 at T0+1 sees the first write; item 3 at T0+3 (odd: not rewritten) the first too
    assert (scored[0]["price"], scored[0]["stock"]) == (5.0, 1)
    assert scored[0]["prediction"] == pytest.approx(demand(5.0, 1))
    assert scored[1]["prediction"] == pytest.approx(demand(4.0, 9))
    assert scored[2]["price"] is None  # no such item: no features; the model imputes them
    assert scored[2]["prediction"] == scored[3]["prediction"]
    assert scored[3]["price"] is None  # ("south", 4) does not exist: the key is composite, in declared order
    # latest values when the rows carry no time; a feature given in the rows overrides the lookup
    latest = store.score_batch(("demand", 1), spark.createDataFrame([("north", 4, 2.0)], "shop string, item int, price double"))
    row = latest.collect()[0]
    assert (row["price"], row["stock"]) == (2.0, 0) and "ts" not in latest.columns
    assert row["prediction"] == pytest.approx(demand(2.0, 0))
    # an MLflow URI works as well as fs_spark's ID
    assert store.score_batch(version.artifact_uri, keys.limit(1)).collect()[0]["prediction"] == pytest.approx(
        demand(5.0, 1))


def test_predictions_written_to_a_path_are_a_lineage_node_of_the_model_version(trained, spark, tmp_path):
    store, _, version, uri = trained
    mlflow.set_tracking_uri(uri)
    keys = spark.createDataFrame([("north", 2, T0 + DAY)], "shop string, item int, ts timestamp")
    out = store.score_batch(version.model_version_id, keys, path=str(tmp_path / "predictions"))
    assert spark.read.format("delta").load(str(tmp_path / "predictions")).count() == out.count() == 1
    record = [r for r in store._catalog.rows(SCORINGS.name) if r["output_path"] == str(tmp_path / "predictions")]
    assert len(record) == 1 and record[0]["model_version_id"] == version.model_version_id
    assert record[0]["feature_version_ids"] == [store.version("sales", 2).version_id]
    node = f"predictions:{record[0]['scoring_id']}"
    upstream = set(store.lineage.upstream(node).nodes)
    assert f"model_version:{version.model_version_id}" in upstream
    assert f"feature_version:{store.version('sales', 1).version_id}" in upstream


def test_a_model_whose_features_changed_since_training_is_refused_naming_them(trained, spark):
    store, _, version, uri = trained
    mlflow.set_tracking_uri(uri)
    keys = spark.createDataFrame([("north", 2, T0 + DAY)], "shop string, item int, ts timestamp")
    first = store.version("sales", 1)
    store.quarantine_version("sales", 1, "prices were in cents")
    try:
        with pytest.raises(StaleModelFeaturesError, match=rf"sales #1 \({first.version_id}\) is quarantined: prices were in cents"):
            store.score_batch(version.model_version_id, keys)
        with pytest.warns(StaleModelFeaturesWarning, match="quarantined"):
            assert store.score_batch(version.model_version_id, keys, on_stale="warn").count() == 1
    finally:
        store.release_version("sales", 1, "false alarm")
    store.rollback("sales", 1, reason="the second write was wrong")
    with pytest.raises(StaleModelFeaturesError, match="sales #2 rolled back by #3"):
        store.score_batch(version.model_version_id, keys)
    with pytest.raises(ValueError, match="on_stale is 'error' or 'warn'"):
        store.score_batch(version.model_version_id, keys, on_stale="ignore")


def test_the_spark_submit_entry_point_scores_and_refuses_a_stale_model(trained, spark, tmp_path, capsys):
    """jobs/score_batch.py in process (the model is stale by now: the test above rolled back)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
    import score_batch  # jobs/ are scripts, not a package

    store, _, version, uri = trained
    mlflow.set_tracking_uri(uri)
    keys = str(tmp_path / "keys")
    spark.createDataFrame([("north", 2), ("south", 1)], "shop string, item int").write.parquet(keys)
    args = ["--root", store.paths.root, "--model", "demand:1", "--entities", keys, "--output", str(tmp_path / "out")]
    assert score_batch.main(args) == 2
    assert "scoring refused: StaleModelFeaturesError: model demand cannot be scored as trained" in capsys.readouterr().err
    with pytest.warns(StaleModelFeaturesWarning, match="rolled back"):
        assert score_batch.main([*args, "--on-stale", "warn"]) == 0
    assert '"rows": 2' in capsys.readouterr().out
    written = spark.read.format("delta").load(str(tmp_path / "out"))
    assert sorted(r["item"] for r in written.collect()) == [1, 2] and "prediction" in written.columns
    assert score_batch.model_reference(version.artifact_uri) == version.artifact_uri
    assert score_batch.model_reference(version.model_version_id) == version.model_version_id


def test_predictions_keep_no_statistics_of_a_feature_tagged_sensitive(trained, spark, tmp_path):
    """Last in the module: it tags price pii. Scored with on_stale="warn": run after the rollback
    above, the model is stale."""
    import warnings

    store, _, version, uri = trained
    mlflow.set_tracking_uri(uri)
    keys = spark.createDataFrame([("north", 2, T0 + DAY)], "shop string, item int, ts timestamp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StaleModelFeaturesWarning)
        store.score_batch(version.model_version_id, keys, path=str(tmp_path / "before"), on_stale="warn")
    assert {"price", "stock", "prediction"} <= set(delta_min_values(tmp_path / "before"))
    store.apply(SALES.with_(features=[Feature(name="price", dtype="double", tags=("pii",)), SALES.features[1]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StaleModelFeaturesWarning)
        scored = store.score_batch(version.model_version_id, keys, path=str(tmp_path / "after"), on_stale="warn")
    stats = delta_min_values(tmp_path / "after")
    assert "price" not in stats and {"shop", "item", "stock", "prediction"} <= set(stats)
    assert scored.first()["price"] is not None  # the value is the predictions' data; its statistics are not kept
