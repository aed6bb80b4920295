"""`default_values` mean one thing online and offline: the value of an entity row that finds no
feature row in its window: no history for the key, or only rows older than the lookback. A
stored null is a value and stays null on both sides."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fs_spark import Entity, Feature, FeatureLookup, FeatureTable

NOW = datetime.now(timezone.utc)
SPEND = FeatureTable(name="spend", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts",
                     features=[Feature(name="amount", dtype="double")])


def test_defaults_fill_rows_with_no_history_and_rows_older_than_the_lookback_on_both_sides(store, spark):
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame(
        [(1, NOW - timedelta(hours=3), 10.0), (3, NOW - timedelta(minutes=5), None), (4, NOW - timedelta(minutes=5), 4.0)],
        "customer_id long, ts timestamp, amount double"))
    store.materialize("spend")
    lookup = [FeatureLookup(table_name="spend", feature_names=["amount"], lookback_window="1h",
                            default_values={"amount": -1.0})]
    keys = [1, 2, 3, 4]  # too old, no history, a stored null, a value
    expected = [-1.0, -1.0, None, 4.0]
    online = store.get_online_features(lookup, [{"customer_id": k} for k in keys])
    assert online["amount"] == expected
    entities = spark.createDataFrame([(k, datetime.now(timezone.utc)) for k in keys], "customer_id long, ts timestamp")
    built = {r["customer_id"]: r["amount"] for r in store.create_training_set(entities, lookup).to_arrow().to_pylist()}
    assert [built[k] for k in keys] == expected
