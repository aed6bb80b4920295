"""Every validation rule refuses its bad input, names table, feature, rule and value, and
leaves the table unchanged; quarantine mode keeps the good rows and records the bad ones."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from fs_spark import Entity, Feature, FeatureTable, SchemaMismatchError, ValidationError

from conftest import ACTIVITY_SCHEMA, T0, activity_rows, batch_maker


# the refusal is raised inside generated code in production: checked there
pytestmark = pytest.mark.usefixtures("production_plans")


def _set(index, **values):
    """Change fields of row `index` of a good batch."""
    names = [c.split()[0] for c in ACTIVITY_SCHEMA.split(", ")]

    def mutate(rows):
        row = list(rows[index])
        for name, value in values.items():
            row[names.index(name)] = value
        rows[index] = tuple(row)
        return rows

    return mutate


ROW_RULE_CASES = [
    ("negative_spend", _set(3, spend_7d=-5.0), "spend_7d", "range[0.0, None]", "-5.0"),
    ("visits_above_max", _set(3, visits=5000), "visits", "range[0.0, 1000.0]", "5000"),
    ("visits_null", _set(3, visits=None), "visits", "not_null", "customer_id=3"),
    ("spend_nan", _set(3, spend_7d=float("nan")), "spend_7d", "finite", "NaN"),
    ("spend_inf", _set(3, spend_7d=float("inf")), "spend_7d", "finite", "Infinity"),
    ("spend_minus_inf", _set(3, spend_7d=float("-inf")), "spend_7d", "finite", "-Infinity"),
    ("segment_not_allowed", _set(3, segment="vip"), "segment", "allowed_values", "vip"),
    ("key_null", _set(3, customer_id=None), "customer_id", "key_not_null", "customer_id=null"),
    ("event_time_null", _set(3, event_ts=None), "event_ts", "event_time_not_null", "event_ts=null"),
    ("event_time_too_old", _set(3, event_ts=datetime(1850, 1, 1, tzinfo=timezone.utc)), "event_ts",
     "event_time_plausible", "1850-01-01"),
    ("event_time_future", _set(3, event_ts=datetime(2100, 1, 1, tzinfo=timezone.utc)), "event_ts",
     "event_time_plausible", "2100-01-01"),
    ("duplicate_key_time", _set(3, customer_id=2, event_ts=T0 + timedelta(days=2, hours=2)),
     "customer_id+event_ts", "unique_key_event_time", "customer_id=2"),
    ("cross_rule", _set(3, min_7d=9.0, max_7d=1.0), "min_le_max", "rule[min_7d <= max_7d]", "min_7d=9.0"),
]


def _delta_version(store):
    path = store.paths.table("customer_activity", 1)
    return DeltaTable.forPath(store.spark, path).history(1).first().version


@pytest.mark.parametrize("case, mutate, subject, rule, example", ROW_RULE_CASES, ids=[c[0] for c in ROW_RULE_CASES])
def test_strict_mode_refuses_each_broken_rule(refusing_store, spark, case, mutate, subject, rule, example):
    store, activity = refusing_store, batch_maker(spark)
    rows = mutate(activity_rows(10))
    with pytest.raises(ValidationError) as caught:
        store.write("customer_activity", activity(rows))
    error = caught.value
    assert [(v.feature, v.rule, v.count) for v in error.violations if v.rule.startswith(rule.split("[")[0])] == [
        (subject, rule if "plausible" not in rule else error.violations[0].rule, 1 if "unique" not in rule else 2)
    ]
    message = str(error)
    assert "customer_activity" in message and subject in message and rule.split("[")[0] in message
    assert example in message
    assert store.versions("customer_activity") == []
    assert _delta_version(store) == 0  # only the table's creation: nothing was committed
    assert _data_files(store) == []  # and the refused job's finished tasks left no file behind


def _data_files(store) -> list[str]:
    root = store.paths.table("customer_activity", 1).removeprefix("file:")
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root)
                  for f in files if "_delta_log" not in d)


def test_strict_mode_reports_every_broken_rule_at_once(refusing_store, spark):
    store, activity = refusing_store, batch_maker(spark)
    rows = activity_rows(10)
    rows = _set(1, spend_7d=-1.0)(rows)
    rows = _set(2, segment="vip")(rows)
    rows = _set(4, segment="gone")(rows)
    with pytest.raises(ValidationError) as caught:
        store.write("customer_activity", activity(rows))
    counts = {(v.feature, v.rule): v.count for v in caught.value.violations}
    assert counts == {("spend_7d", "range[0.0, None]"): 1, ("segment", "allowed_values"): 2}


def test_nan_is_accepted_where_the_feature_allows_it(store, activity):
    rows = _set(3, min_7d=float("nan"))(activity_rows(10))
    version = store.write("customer_activity", activity(rows))
    assert version.row_count == 10


def _bad_schema(spark, batch):
    good = batch(activity_rows(5))
    return {
        "unknown_column": (good.withColumn("colour", F.lit("red")), "unknown column(s) ['colour']"),
        "missing_column": (good.drop("segment"), "missing column(s) ['segment']"),
        "feature_as_string": (good.withColumn("spend_7d", F.col("spend_7d").cast("string")),
                              "feature 'spend_7d': rule type: declared double, found string"),
        "double_into_int": (good.withColumn("visits", F.col("visits").cast("double")),
                            "feature 'visits': rule type: declared int, found double"),
        "naive_timestamp": (good.withColumn("event_ts", F.col("event_ts").cast("timestamp_ntz")),
                            "event time 'event_ts': rule timezone_aware"),
        "timestamp_as_string": (good.withColumn("event_ts", F.col("event_ts").cast("string")),
                                "event time 'event_ts': rule type: declared timestamp, found string"),
        "key_as_string": (good.withColumn("customer_id", F.col("customer_id").cast("string")),
                          "key 'customer_id': rule type: declared long, found string"),
        "wrong_unit": (good.withColumn("spend_7d", F.col("spend_7d").alias("spend_7d", metadata={"unit": "usd"})),
                       "feature 'spend_7d': rule unit: declared 'eur', found 'usd'"),
        "internal_column": (good.withColumn("_fs_version", F.lit(1)), "written by fs_spark itself"),
    }


@pytest.mark.parametrize(
    "case",
    ["unknown_column", "missing_column", "feature_as_string", "double_into_int", "naive_timestamp",
     "timestamp_as_string", "key_as_string", "wrong_unit", "internal_column"],
)
def test_schema_problems_are_refused_before_any_job(refusing_store, spark, case):
    store = refusing_store
    frame, expected = _bad_schema(spark, batch_maker(spark))[case]
    with pytest.raises(SchemaMismatchError) as caught:
        store.write("customer_activity", frame)
    assert "customer_activity" in str(caught.value) and expected in str(caught.value)
    assert store.versions("customer_activity") == []


def test_quarantine_mode_writes_good_rows_and_quarantines_bad_ones(store, activity, spark):
    rows = activity_rows(10)
    rows = _set(1, spend_7d=-1.0)(rows)
    rows = _set(2, segment="vip", visits=None)(rows)
    version = store.write("customer_activity", activity(rows), mode="quarantine")
    assert (version.row_count, version.quarantined_row_count, version.mode) == (8, 2, "quarantine")

    written = store.read("customer_activity").orderBy("customer_id").collect()
    assert [r.customer_id for r in written] == [0, 3, 4, 5, 6, 7, 8, 9]

    event = store.catalog.table("quarantine_events").collect()
    assert len(event) == 1 and event[0].version_id == version.version_id and event[0].row_count == 2
    assert json.loads(event[0].rule_counts_json) == {
        "spend_7d:range[0.0, None]": 1, "segment:allowed_values": 1, "visits:not_null": 1
    }
    bad = spark.read.format("delta").load(event[0].quarantine_path).orderBy("customer_id").collect()
    assert [(r.customer_id, sorted(r._fs_rules)) for r in bad] == [
        (1, ["spend_7d:range[0.0, None]"]),
        (2, ["segment:allowed_values", "visits:not_null"]),
    ]
    assert {r._fs_version_id for r in bad} == {version.version_id}
    stats = version.stats["features"]["spend_7d"]
    assert (stats["min"], stats["max"], stats["null_count"]) == (0.0, 9.0, 0)


def test_quarantine_mode_quarantines_every_row_of_a_duplicated_key_time(store, activity):
    rows = _set(3, customer_id=2, event_ts=T0 + timedelta(days=2, hours=2))(activity_rows(6))
    version = store.write("customer_activity", activity(rows), mode="quarantine")
    assert (version.row_count, version.quarantined_row_count) == (4, 2)


def test_a_huge_example_value_is_cut_in_the_message(refusing_store, spark):
    huge = "x" * 10_000_000
    with pytest.raises(ValidationError) as caught:
        refusing_store.write("customer_activity", batch_maker(spark)(_set(3, segment=huge)(activity_rows(5))))
    message = str(caught.value)
    assert len(message) < 1000 and "segment: rule allowed_values" in message
    assert "x" * 80 + "... (10000000 characters)" in message


LONGS = FeatureTable(
    name="longs",
    entity=Entity(name="thing", keys={"id": "long"}),
    event_time="ts",
    features=[Feature(name="amount", dtype="double")],
)


def test_a_long_into_a_double_is_accepted_only_where_every_value_is_exact(store, spark):
    store.apply(LONGS)
    exact = [2**53, -(2**53), 2**62, 2**63 - 2**10, -5, None]  # large powers of two are exact too
    rows = [(i, T0, v) for i, v in enumerate(exact)]
    version = store.write("longs", spark.createDataFrame(rows, "id long, ts timestamp, amount long"))
    assert version.row_count == len(exact)
    assert [r.amount for r in store.read("longs").orderBy("id").collect()] == [None if v is None else float(v) for v in exact]

    inexact = rows + [(10, T0, 2**53 + 1), (11, T0, -(2**53) - 1), (12, T0, 2**63 - 1)]
    with pytest.raises(ValidationError) as caught:
        store.write("longs", spark.createDataFrame(inexact, "id long, ts timestamp, amount long"))
    assert [(v.feature, v.rule, v.count) for v in caught.value.violations] == [("amount", "exact[long->double]", 3)]
    assert "9007199254740993" in str(caught.value) or "9223372036854775807" in str(caught.value)
    assert len(store.versions("longs")) == 1

    quarantined = store.write("longs", spark.createDataFrame(inexact[-3:] + [(13, T0, 7)], "id long, ts timestamp, amount long"),
                              mode="quarantine")
    assert (quarantined.row_count, quarantined.quarantined_row_count) == (1, 3)
    assert store.read("longs", version=2).where("id = 13").first().amount == 7.0
