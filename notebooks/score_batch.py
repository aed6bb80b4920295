# Databricks notebook source
# MAGIC %md
# MAGIC # fs_spark: a model that carries its features
# MAGIC A training set is built, a scikit-learn model is trained on it and logged with `log_model`, which
# MAGIC puts the model's features inside the MLflow model. `score_batch` then scores rows that hold only
# MAGIC customer keys: the features are looked up as the training set's were, and the model runs on the
# MAGIC executors. Runs in Databricks (fs_spark installed, Delta on the cluster) and as plain Python.

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
dbutils.widgets.text("predictions", "/tmp/fs_spark_predictions", "Where to write the predictions (Delta)")

# COMMAND ----------

from datetime import datetime, timedelta, timezone

import mlflow
import mlflow.sklearn
from sklearn.linear_model import LogisticRegression

from fs_spark import FeatureStore, load_definitions

store = FeatureStore(dbutils.widgets.get("store_root"), spark=spark)
store.apply(*load_definitions(dbutils.widgets.get("definitions")))
mlflow.set_tracking_uri(dbutils.widgets.get("mlflow_tracking_uri"))
start = datetime(2024, 6, 1, tzinfo=timezone.utc)
schema = ("customer_id long, event_ts timestamp, spend_7d double, orders_7d int, min_order_7d double, "
          "max_order_7d double, segment string")
rows = [(c, start, float((c * 7) % 40), 1 + c % 3, 1.0, 9.0, "loyal") for c in range(60)]
store.write("customer_activity", spark.createDataFrame(rows, schema))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Train and log: the model's features go with it

# COMMAND ----------

labels = spark.createDataFrame([(c, start + timedelta(days=1), int((c * 7) % 40 < 18)) for c in range(60)],
                               "customer_id long, event_ts timestamp, churned int")
with store.start_run("churn_scoring", name="logistic") as run:
    training_set = run.create_training_set(labels, ["customer_activity:spend_7d", "customer_activity:orders_7d"],
                                           label="churned")
    frame = training_set.to_df()
    model = LogisticRegression().fit(frame[["spend_7d", "orders_7d"]], frame["churned"])
    version = run.log_model(model, mlflow.sklearn, training_set=training_set, registered_model_name="churn_scoring",
                            serialization_format="cloudpickle")
print(f"logged {version.model_name} v{version.version}: {version.artifact_uri}, trained on {version.feature_version_ids}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Score rows that hold only keys
# MAGIC With the lookups' time column the features are those of that time (rows without it get the
# MAGIC latest values within the table's time to live).

# COMMAND ----------

keys = spark.createDataFrame([(c, start + timedelta(days=1)) for c in range(0, 60, 6)],
                             "customer_id long, event_ts timestamp")
scored = store.score_batch(version.model_version_id, keys, path=dbutils.widgets.get("predictions"))
churners = scored.where("prediction = 1").count()
print(f"scored {scored.count()} customers from their keys alone: {churners} predicted to churn")
print(f"predictions in {dbutils.widgets.get('predictions')}, upstream of them: "
      f"{len(store.lineage.upstream(version.model_version_id).of_kind('feature_version'))} feature version(s)")
