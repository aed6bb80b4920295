"""A batch too large for one partition is written as it comes, not reordered (`optimize` lays it
out later): its duplicate (key, event time) check is a narrow aggregation over the key and time
columns, joined back only when pairs repeat. Checked against the window count the small path
uses, on composite keys of mixed types with NULLs."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.errors import ValidationError
from fs_spark.storage.delta_log import latest_version
from fs_spark.storage.layout import is_small

EVENTS = FeatureTable(name="events", entity=Entity(name="c", keys={"shop": "string", "customer_id": "long"}),
                      event_time="ts", features=[Feature(name="amount", dtype="double")])
ROWS = 600_000
COLUMNS = ("id AS customer_id", "CASE WHEN id % 3 = 0 THEN 'north' ELSE 'south' END AS shop",
           "timestamp'2024-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id % 100000) AS ts",
           "CAST(id AS double) + {extra} AS amount")


def _batch(spark, ids, extra=0.0):
    return spark.range(*ids).selectExpr(*[c.format(extra=extra) for c in COLUMNS])


def _with_repeats(spark):
    """The large batch, with ids 5 to 7 again (other amounts) and two rows of a NULL shop."""
    nulls = spark.createDataFrame([(1, None, 0.5), (1, None, 0.25)], "customer_id long, shop string, amount double")
    nulls = nulls.withColumn("ts", F.lit("2024-01-02 00:00:00").cast("timestamp")).select(
        "customer_id", "shop", "ts", "amount")
    return _batch(spark, (ROWS,)).unionByName(_batch(spark, (5, 8), extra=0.5)).unionByName(nulls)


def _repeated_rows_by_window(frame) -> int:
    """The oracle: rows sharing their (key, event time), by the window count of small batches."""
    window = Window.partitionBy("shop", "customer_id", "ts")
    return frame.withColumn("n", F.count(F.lit(1)).over(window)).where("n > 1").count()


def test_repeated_keys_in_a_large_batch_are_refused_in_strict_mode_before_anything_is_written(store, spark):
    store.apply(EVENTS)
    path = store.write("events", _batch(spark, (ROWS, ROWS + 10))).storage_path
    before = latest_version(spark, path)
    batch = _with_repeats(spark)
    assert _repeated_rows_by_window(batch) == 8  # ids 5, 6, 7 twice, and the NULL shop's pair
    with pytest.raises(ValidationError, match=r"shop\+customer_id\+ts.*unique_key_event_time") as refused:
        store.write("events", batch)
    assert "unique_key_event_time broken by 8 row(s)" in str(refused.value)  # as the oracle counts
    assert "key_not_null broken by 2 row(s)" in str(refused.value)
    assert latest_version(spark, path) == before and len(store.versions("events")) == 1


def test_repeated_keys_in_a_large_batch_are_quarantined_with_null_keys_matching(store, spark):
    store.apply(EVENTS)
    batch = _with_repeats(spark)
    assert not is_small(batch)  # the large path
    version = store.write("events", batch, mode="quarantine")
    assert (version.row_count, version.quarantined_row_count) == (ROWS - 3, 8)
    assert store.read("events").agg(F.sum("amount")).first()[0] == sum(range(ROWS)) - 5 - 6 - 7
    [event] = store.catalog.rows("quarantine_events")
    counts = json.loads(event["rule_counts_json"])
    assert counts["shop+customer_id+ts:unique_key_event_time"] == _repeated_rows_by_window(batch) == 8
    written = store.read("events").where("customer_id IN (5, 6, 7) OR shop IS NULL").count()
    assert written == 0
