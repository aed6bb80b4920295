"""JSON records (Kafka values, JSON-lines files) parsed into a table's columns: a value present
but of the wrong JSON type breaks the rule `json[<type>]` of its column, in strict and in
quarantine mode; it is never stored as a null."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pyspark.sql import functions as F
from conftest import T0

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.errors import ValidationError
from fs_spark.ingest.sources import parse_json

EVENTS = FeatureTable(name="events", entity=Entity(name="e", keys={"id": "long"}), event_time="ts",
                      features=[Feature(name="val", dtype="double"), Feature(name="seq", dtype="long"),
                                Feature(name="flag", dtype="bool"), Feature(name="note", dtype="string"),
                                Feature(name="secret", dtype="double", tags=("pii",))])


def _record(i: int, **changes) -> str:
    row = {"id": i, "ts": (T0 + timedelta(hours=i)).isoformat(), "val": 1.5, "seq": 7, "flag": True, "note": "x",
           "secret": 2.0}
    row.update(changes)
    return json.dumps(row)


def _frame(spark, records):
    return parse_json(spark.createDataFrame([(r,) for r in records], "value string"), EVENTS)


@pytest.fixture
def events(store):
    store.apply(EVENTS)
    return store


def test_values_of_the_wrong_json_type_are_quarantined_with_their_rule(events, spark):
    records = [_record(1), _record(2, val="abc"), _record(3, seq="12x"), _record(4, seq=2.5), _record(5, flag="true"),
               _record(6, val=None, seq=None, note=None),  # JSON nulls are nulls, not wrong types
               _record(7, note=12), _record(8, val=3)]     # a number is text for a string; an int is a double
    version = events.write("events", _frame(spark, records), mode="quarantine")
    assert (version.row_count, version.quarantined_row_count) == (4, 4)
    kept = {r.id: (r.val, r.seq, r.note) for r in events.read("events").collect()}
    assert kept == {1: (1.5, 7, "x"), 6: (None, None, None), 7: (1.5, 7, "12"), 8: (3.0, 7, "x")}
    bad = spark.read.format("delta").load(events.paths.quarantine("events", 1)).collect()
    assert {r.id: sorted(r._fs_rules) for r in bad} == {
        2: ["val:json[double]"], 3: ["seq:json[bigint]"], 4: ["seq:json[bigint]"], 5: ["flag:json[boolean]"]}


def test_a_strict_write_is_refused_naming_the_feature_the_rule_and_the_source_text(events, spark):
    with pytest.raises(ValidationError) as refused:
        events.write("events", _frame(spark, [_record(1), _record(2, val="abc")]))
    assert ("val", "json[double]") in refused.value.rules()
    assert '"abc"' in str(refused.value) or "abc" in str(refused.value)
    assert events.versions("events") == []
    with pytest.raises(ValidationError) as withheld:  # a sensitive feature's text is not shown
        events.write("events", _frame(spark, [_record(1, secret="424242")]))
    assert ("secret", "json[double]") in withheld.value.rules() and "424242" not in str(withheld.value)


def test_a_key_or_time_of_the_wrong_type_breaks_its_rule_too(events, spark):
    version = events.write("events", _frame(spark, ['{"id": "7a", "ts": "2024-01-01T00:00:00Z"}',
                                                    '{"id": 8, "ts": "yesterday"}', _record(9)]), mode="quarantine")
    assert (version.row_count, version.quarantined_row_count) == (1, 2)
    bad = spark.read.format("delta").load(events.paths.quarantine("events", 1)).collect()
    rules = sorted(rule for r in bad for rule in r._fs_rules)
    assert "id:json[bigint]" in rules and "ts:json[timestamp]" in rules


EVERY_TYPE = ("bool", "int", "long", "float", "double", "string", "date", "timestamp")


def test_every_feature_type_beside_sensitive_ones_writes_quarantines_builds_and_scores(store, spark, tmp_path):
    """A feature of each type, plain and tagged pii: Delta keeps statistics of no boolean (it
    cannot) and of no sensitive column, in the feature table, its quarantine table, a training
    set and a predictions table."""
    from datetime import date

    from conftest import delta_min_values

    from fs_spark.storage.layout import kept_stats_columns, write_new_table

    features = [Feature(name=f"plain_{t}", dtype=t, min_value=0 if t == "int" else None) for t in EVERY_TYPE]
    features += [Feature(name=f"pii_{t}", dtype=t, tags=("pii",)) for t in EVERY_TYPE]
    table = FeatureTable(name="typed", entity=Entity(name="e", keys={"id": "long"}), event_time="ts", features=features)
    store.apply(table)
    values = {"bool": True, "int": 4, "long": 5, "float": 1.5, "double": 424242.4375, "string": "s3cr3t",
              "date": date(2031, 7, 9), "timestamp": T0 + timedelta(days=3)}
    schema = "id long, ts timestamp, " + ", ".join(f"{f.name} {f.dtype.spark_type.simpleString()}" for f in features)
    good = (1, T0, *[values[t] for t in EVERY_TYPE], *[values[t] for t in EVERY_TYPE])
    bad = (2, T0, *[(-1 if t == "int" else values[t]) for t in EVERY_TYPE], *[values[t] for t in EVERY_TYPE])
    version = store.write("typed", spark.createDataFrame([good, bad], schema), mode="quarantine")
    assert (version.row_count, version.quarantined_row_count) == (1, 1)
    entities = spark.createDataFrame([(1, T0 + timedelta(days=1))], "id long, ts timestamp")
    built = store.create_training_set(entities, [f"typed:{f.name}" for f in features])
    assert built.to_arrow().to_pylist()[0]["pii_double"] == 424242.4375
    predictions = tmp_path / "predictions"
    frame = built.load_df().withColumn("prediction", F.lit(0.5))
    write_new_table(frame, str(predictions), kept_stats_columns(frame.schema, {f"pii_{t}" for t in EVERY_TYPE}))
    for path in (store.paths.table("typed", 1), store.paths.quarantine("typed", 1),
                 store.paths.training_set(built.id, "data"), predictions):
        kept = set(delta_min_values(path))
        assert not {c for c in kept if c.startswith("pii_")}, (path, kept)
        assert "plain_bool" not in kept and {"plain_int", "plain_double", "plain_string", "plain_date"} <= kept, path
