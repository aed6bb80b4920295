"""`fs-spark watch`: each notification rule fires on its own cause, names the table, feature,
version, figure and threshold, reaches the sink (a real JSON-lines file), and is not sent twice."""

from __future__ import annotations

import io
import json

import pytest
from conftest import ACTIVITY_SCHEMA, activity_rows, activity_table

from fs_spark import FeatureLookup
from fs_spark.cli.app import run
from fs_spark.config import (
    AlertSettings,
    HealthThresholds,
    NotifySettings,
    ObservabilitySettings,
    QualitySettings,
    Settings,
    StoreSettings,
)
from fs_spark.observability.watch import watch
from fs_spark.store import FeatureStore


@pytest.mark.slow
def test_churn_staleness_and_lineage_are_alerted_once_each(spark, tmp_path):
    sent = tmp_path / "alerts.jsonl"
    settings = Settings(
        store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
        quality=QualitySettings(alerts=AlertSettings(kind="file", path=str(sent))),
        observability=ObservabilitySettings(health=HealthThresholds(online_staleness_seconds=0.001),
                                            notify=NotifySettings(churn_max_versions=2, churn_window_hours=1)))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(activity_table())
    store.write("customer_activity", spark.createDataFrame(activity_rows(4), ACTIVITY_SCHEMA))
    store.materialize("customer_activity")
    assert watch(store).alerts == ()  # one version, materialized: nothing to say

    for start in (4, 8):
        store.write("customer_activity", spark.createDataFrame(activity_rows(4, start=start), ACTIVITY_SCHEMA))
    entities = spark.createDataFrame([(1, activity_rows(1, start=1)[0][1])], "customer_id long, ts timestamp")
    lookup = FeatureLookup(table_name="customer_activity", feature_names=["visits"], lookup_key="customer_id",
                           timestamp_lookup_key="ts")
    with store.start_run("watch", name="m") as run_:
        model = run_.register_model("untraced", training_sets=[run_.create_training_set(entities, [lookup])])

    first = watch(store)
    by_metric = {a["metric"]: a for a in first.alerts}
    assert set(by_metric) == {"version_churn", "online_staleness_seconds", "lineage_incomplete"}, first.alerts
    churn = by_metric["version_churn"]
    assert (churn["table_name"], churn["value"], churn["threshold"]) == ("customer_activity", 3.0, 2.0)
    stale = by_metric["online_staleness_seconds"]
    assert stale["table_name"] == "customer_activity" and stale["value"] > 0.001 and stale["threshold"] == 0.001
    assert "serves #1, latest servable #3" in stale["baseline"]
    assert f"model_version:{model.model_version_id}" in by_metric["lineage_incomplete"]["baseline"]
    lines = [json.loads(line) for line in sent.read_text().splitlines()]
    assert sorted(a["metric"] for a in lines) == sorted(by_metric)  # the sink got what the catalog got
    assert {a["alert_id"] for a in lines} <= {r["alert_id"] for r in store.catalog.rows("alerts")}

    again = watch(store)  # the same breaches: recorded already, not sent again
    assert again.alerts == () and again.repeated == 3
    out = io.StringIO()
    assert run(["--root", store.root, "watch"], out=out) == 0 and "0 alert(s) sent" in out.getvalue()
