# Databricks notebook source
# MAGIC %md
# MAGIC # fs_spark: an experiment end to end, with its lineage
# MAGIC Features are written by a run, a training and a validation set are built in an MLflow-tracked
# MAGIC run, a (deliberately simple) model is scored and registered, deployed, and then traced: back to
# MAGIC the source data and feature versions it learned from, and forward from a feature version to the
# MAGIC deployment it reached. Runs in Databricks (fs_spark installed, Delta on the cluster) and as plain
# MAGIC Python; the widgets choose the store, the MLflow tracking URI and where the picture goes.

# COMMAND ----------

try:
    dbutils  # noqa: B018 (defined by Databricks)
except NameError:
    from fs_spark.notebook import local_dbutils

    dbutils = local_dbutils()
try:
    spark  # noqa: B018 (defined by Databricks)
except NameError:
    from fs_spark import get_session

    spark = get_session()

dbutils.widgets.text("store_root", "./fs_store", "Store root")
dbutils.widgets.text("definitions", "conf/features", "Definitions (YAML file or folder)")
dbutils.widgets.text("mlflow_tracking_uri", "sqlite:///mlflow.db", "MLflow tracking URI")
dbutils.widgets.text("lineage_html", "lineage.html", "Where to write the lineage picture")

# COMMAND ----------

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow

from fs_spark import FeatureStore, FeatureLookup, SourceInfo, load_definitions

store = FeatureStore(dbutils.widgets.get("store_root"), spark=spark)
store.apply(*load_definitions(dbutils.widgets.get("definitions")))
mlflow.set_tracking_uri(dbutils.widgets.get("mlflow_tracking_uri"))
mlflow.set_experiment("churn_notebook")
start = datetime(2024, 6, 1, tzinfo=timezone.utc)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Features, written by a run: each version records the run, source and transformation

# COMMAND ----------

schema = ("customer_id long, event_ts timestamp, spend_7d double, orders_7d int, min_order_7d double, "
          "max_order_7d double, segment string")
with store.start_run("churn_notebook", name="daily_features", hypothesis="recent spend predicts churn") as ingest:
    for day, customers in ((0, 40), (1, 20)):  # the second export updates half the customers
        at = start + timedelta(days=day)
        rows = [(c, at, float((c * 7 + day * 3) % 40), 1 + c % 3, 1.0, 9.0, "loyal") for c in range(customers)]
        version = ingest.write("customer_activity", spark.createDataFrame(rows, schema),
                               source=SourceInfo(description=f"orders export {at:%Y-%m-%d}", start=at, end=at + timedelta(days=1)))
        print(f"customer_activity version {version.version_number} by run {version.run_id}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Training and validation sets in one MLflow-tracked run; a simple model, scored

# COMMAND ----------

labels = spark.createDataFrame(
    [(c, start + timedelta(days=2), (c * 7) % 40 < 18) for c in range(40)],
    "customer_id long, event_ts timestamp, churned boolean",
)
train_rows, valid_rows = labels.where("customer_id % 4 != 0"), labels.where("customer_id % 4 = 0")
lookup = FeatureLookup(table_name="customer_activity", feature_names=["spend_7d", "orders_7d"],
                       lookup_key="customer_id", timestamp_lookup_key="event_ts")


def auc(frame) -> float:
    """Rank AUC of 'low spend means churn' (Mann-Whitney U), computed with pandas."""
    data = frame.toPandas()
    ranks = (-data["spend_7d"]).rank()
    positive = data["churned"]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


with mlflow.start_run(run_name="spend_threshold") as mlflow_run:
    with store.start_run("churn_notebook", name="spend_threshold", params={"rule": "low spend"}) as run:
        train = run.create_training_set(train_rows, [lookup], label="churned", name="churn_train")
        valid = run.create_training_set(valid_rows, [lookup], label="churned", name="churn_valid", context="validation")
        run.log_metrics({"train_auc": auc(train.load_df()), "val_auc": auc(valid.load_df())})
        artifact = Path(store.root.removeprefix("file:")) / "models" / "churn_threshold.json"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_text(json.dumps({"feature": "spend_7d", "rule": "low spend means churn"}))
        model = run.register_model("churn_threshold", training_sets=[train], artifact_uri=artifact.as_uri())
print(f"run {run.id} (MLflow {mlflow_run.info.run_id}): {run.metrics()}")
print(f"model {model.model_name} v{model.version}: MLflow model {model.mlflow_model_id}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Deployment: the active feature set and a lineage snapshot are recorded

# COMMAND ----------

deployment = store.deploy(model.model_version_id, "prod")
print(f"deployed {deployment.model_name} v{deployment.model_version} to {deployment.environment}: {deployment.features}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Lineage: back to the source, forward to the deployment, and a picture

# COMMAND ----------

upstream = store.lineage.upstream(model.model_version_id)
for node in upstream.of_kind("feature_version") + upstream.of_kind("source"):
    print(f"upstream {node.kind}: {node.label} ({node.detail})")
first_version = store.version("customer_activity", 1).version_id
reached = store.lineage.downstream(first_version).of_kind("deployment")
print(f"feature version 1 reached: {[d.label for d in reached]}")
behind = store.lineage.for_mlflow_run(mlflow_run.info.run_id)
print(f"behind MLflow run {mlflow_run.info.run_id}: {len(behind.training_set_ids)} training sets, "
      f"feature versions {behind.feature_version_ids}")
store.lineage.render(model.model_version_id, html=dbutils.widgets.get("lineage_html"))
print(f"lineage picture: {dbutils.widgets.get('lineage_html')}")
print(store.lineage.reconcile().to_text())
