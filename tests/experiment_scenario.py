"""One small experiment, end to end, shared by the tracking, lineage and MLflow tests.

Two feature tables (one derived, with a transformation and a parent feature), two writes of
`spend` from two sources, two runs that build training sets on different feature versions, log
metrics and register model versions, and two deployments to prod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from fs_spark import Entity, Feature, FeatureLookup, FeatureTable, Source, SourceInfo, Transformation

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)

SPEND = FeatureTable(
    name="spend",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="amount", dtype="double")],
    source=Source(name="payments", kind="path", location="s3://raw/payments", description="raw payments"),
)
SPEND_7D = FeatureTable(
    name="spend_7d",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="total", dtype="double")],
    transformation=Transformation(name="rolling_sum", fingerprint="sha256:5d41402abc4b2a76", parameters={"days": 7}, windows=("7d",)),
    parents=("spend:amount",),
)


@dataclass
class Scenario:
    store: object
    versions: dict = field(default_factory=dict)   # name -> FeatureVersion
    runs: dict = field(default_factory=dict)       # name -> Run
    sets: dict = field(default_factory=dict)       # name -> TrainingSet
    models: dict = field(default_factory=dict)     # name -> ModelVersion
    deployments: dict = field(default_factory=dict)
    openlineage_file: object = None


def lookups(spend_version=None):
    return [
        FeatureLookup(table_name="spend", feature_names=["amount"], lookup_key="customer_id",
                      timestamp_lookup_key="ts", version=spend_version),
        FeatureLookup(table_name="spend_7d", feature_names=["total"], lookup_key="customer_id", timestamp_lookup_key="ts"),
    ]


def build(store, spark) -> Scenario:
    s = Scenario(store)
    store.apply(SPEND, SPEND_7D)
    spend = "customer_id long, ts timestamp, amount double"
    entities = spark.createDataFrame([(1, T0 + 5 * DAY, True), (2, T0 + 5 * DAY, False), (1, T0 + 9 * DAY, False)],
                                     "customer_id long, ts timestamp, churned boolean")
    with store.start_run("churn_features", name="ingest", stage="training") as ingest:
        s.runs["ingest"] = ingest
        s.versions["spend1"] = ingest.write("spend", spark.createDataFrame([(1, T0, 10.0), (2, T0, 20.0)], spend),
                                            source=SourceInfo(description="s3://raw/payments/2024-01-01"))
        s.versions["spend7d"] = ingest.write("spend_7d", spark.createDataFrame([(1, T0, 10.0), (2, T0, 20.0)], spend.replace("amount", "total")))
    s.versions["spend2"] = store.write("spend", spark.createDataFrame([(1, T0 + 7 * DAY, 30.0)], spend),
                                       source=SourceInfo(description="s3://raw/payments/2024-01-08"))
    with store.start_run("churn", name="baseline", hypothesis="spend predicts churn", params={"lr": 0.1}) as first:
        s.runs["first"] = first
        s.sets["first"] = first.create_training_set(entities, lookups(spend_version=1), label="churned", name="churn_v1")
        first.log_metrics({"val_auc": 0.71, "val_loss": 0.5})
        s.models["v1"] = first.register_model("churn_model", training_sets=[s.sets["first"]], artifact_uri="file:///m/1")
    with store.start_run("churn", name="more_history", hypothesis="recent spend helps", params={"lr": 0.05}) as second:
        s.runs["second"] = second
        s.sets["second"] = second.create_training_set(entities, lookups(), label="churned", name="churn_v2")
        second.log_metrics({"val_auc": 0.78})
        s.models["v2"] = second.register_model("churn_model", training_sets=[s.sets["second"]])
    s.deployments["v1"] = store.deploy(s.models["v1"].model_version_id, "prod")
    s.deployments["v2"] = store.deploy(("churn_model", 2), "prod")
    return s
