"""Composite keys keep their declared order everywhere, and entity keys are compared in a type
that never narrows: an entity value that no key can hold matches nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import (
    EntityColumnError,
    Entity,
    Feature,
    FeatureLookup,
    FeatureTable,
    dump_definitions,
    load_definitions,
)

pytestmark = pytest.mark.usefixtures("production_plans")  # results checked as production plans them

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)

# Two keys of one type, declared in non-alphabetical order: swapping them would still type-check.
EDGES = FeatureTable(
    name="edges",
    entity=Entity(name="edge", keys={"src": "long", "dst": "long"}),
    event_time="ts",
    features=[Feature(name="weight", dtype="double")],
)
# Two keys of different types, also not in alphabetical order.
ACCOUNTS = FeatureTable(
    name="accounts",
    entity=Entity(name="account", keys={"region": "string", "account": "int"}),
    event_time="ts",
    features=[Feature(name="balance", dtype="double")],
)


def test_key_order_survives_yaml_and_the_catalog(store, tmp_path):
    file = tmp_path / "defs.yaml"
    file.write_text(dump_definitions([EDGES, ACCOUNTS]))
    assert [t.keys for t in load_definitions(file)] == [("src", "dst"), ("region", "account")]
    store.apply(*load_definitions(file))
    assert store.get_table("edges").keys == ("src", "dst")
    assert store.get_table("accounts").keys == ("region", "account")
    assert store.plan(EDGES, ACCOUNTS)[0].action == "unchanged"  # re-applying is not a key change
    swapped = EDGES.with_(entity=Entity(name="edge", keys={"dst": "long", "src": "long"}))
    assert [c.kind for c in store.plan(swapped)[0].changes] == ["change_keys"]


def test_same_typed_keys_pair_by_declared_position_through_write_build_and_replay(store, spark):
    store.apply(EDGES)
    store.write("edges", spark.createDataFrame(
        [(1, 2, T0, 12.0), (2, 1, T0, 21.0), (1, 3, T0, 13.0)], "src long, dst long, ts timestamp, weight double"))
    read = {(r.src, r.dst): r.weight for r in store.read("edges").collect()}
    assert read == {(1, 2): 12.0, (2, 1): 21.0, (1, 3): 13.0}
    assert store.read("edges").columns[:2] == ["src", "dst"]

    labels = spark.createDataFrame(
        [(0, 1, 2), (1, 2, 1), (2, 3, 1), (3, 1, None), (4, None, 2)], "eid long, a_src long, a_dst long")
    labels = labels.selectExpr("*", f"timestamp'{(T0 + HOUR).isoformat()}' AS at")
    lookup = FeatureLookup(table_name="edges", lookup_key=["a_src", "a_dst"], timestamp_lookup_key="at")
    built = store.create_training_set(labels, [lookup])
    expected = [(0, 12.0), (1, 21.0), (2, None), (3, None), (4, None)]
    assert [(r.eid, r.weight) for r in built.load_df().collect()] == expected
    assert built.manifest.lookups[0].keys == ("src", "dst")
    assert built.manifest.lookups[0].entity_keys == ("a_src", "a_dst")
    replayed = store.load_training_set(built.id)
    assert [(r.eid, r.weight) for r in replayed.load_df().collect()] == expected


def test_keys_of_different_types_are_checked_against_the_key_in_their_position(store, spark):
    store.apply(ACCOUNTS)
    store.write("accounts", spark.createDataFrame(
        [("eu", 7, T0, 1.5), ("us", 7, T0, 2.5)], "region string, account int, ts timestamp, balance double"))
    labels = spark.createDataFrame([("eu", 7), ("us", 7), ("eu", 8)], "r string, a long")
    labels = labels.selectExpr("*", f"timestamp'{(T0 + HOUR).isoformat()}' AS ts")
    built = store.create_training_set(labels, [FeatureLookup(table_name="accounts", lookup_key=["r", "a"])])
    assert [r.balance for r in built.load_df().collect()] == [1.5, 2.5, None]
    with pytest.raises(EntityColumnError, match=r"'a'.*is bigint but key accounts.region is string"):
        store.create_training_set(labels, [FeatureLookup(table_name="accounts", lookup_key=["a", "r"])])


@pytest.mark.parametrize("ansi", [pytest.param("true", marks=pytest.mark.slow), "false"])
def test_an_entity_value_outside_the_key_type_matches_nothing(store, spark, ansi):
    """An int key looked up with long entity values: 2**32 + 7 would wrap onto 7 if narrowed,
    2**31 would overflow; compared as longs, neither matches and nothing fails."""
    store.apply(ACCOUNTS)
    store.write("accounts", spark.createDataFrame(
        [("eu", 7, T0, 1.5), ("eu", -2147483648, T0, 9.0)], "region string, account int, ts timestamp, balance double"))
    labels = spark.createDataFrame(
        [("eu", 7), ("eu", 2**32 + 7), ("eu", 2**31), ("eu", -(2**31)), ("eu", -(2**31) - 2**32)], "region string, account long")
    labels = labels.selectExpr("*", f"timestamp'{(T0 + HOUR).isoformat()}' AS ts")
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    try:
        built = store.create_training_set(labels, [FeatureLookup(table_name="accounts")])
        assert [r.balance for r in built.load_df().collect()] == [1.5, None, None, 9.0, None]
    finally:
        spark.conf.unset("spark.sql.ansi.enabled")


def test_narrower_entity_columns_match_wider_keys(store, spark):
    store.apply(EDGES)
    store.write("edges", spark.createDataFrame([(1, 2, T0, 12.0)], "src long, dst long, ts timestamp, weight double"))
    labels = spark.createDataFrame([(1, 2), (2, 1)], "src short, dst int")
    labels = labels.selectExpr("*", f"timestamp'{(T0 + HOUR).isoformat()}' AS ts")
    built = store.create_training_set(labels, ["edges:weight"])
    assert [r.weight for r in built.load_df().collect()] == [12.0, None]


@pytest.mark.parametrize("key_type", ["int", "long"])
def test_every_integral_entity_type_matches_every_integral_key_type(store, spark, key_type):
    table = FeatureTable(name="scores", entity=Entity(name="thing", keys={"id": key_type}), event_time="ts",
                         features=[Feature(name="score", dtype="double")])
    store.apply(table)
    store.write("scores", spark.createDataFrame([(7, T0, 0.7), (-3, T0, -0.3)], f"id {key_type}, ts timestamp, score double"))
    labels = spark.createDataFrame([(7, 7, 7, 7), (-3, -3, -3, -3), (8, 8, 8, 8)],
                                   "k_byte tinyint, k_short smallint, k_int int, k_long long")
    labels = labels.selectExpr("*", f"timestamp'{(T0 + HOUR).isoformat()}' AS ts")
    lookups = [FeatureLookup(table_name="scores", lookup_key=column, rename_outputs={"score": f"via_{column}"})
               for column in ("k_byte", "k_short", "k_int", "k_long")]
    rows = store.create_training_set(labels, lookups).load_df().collect()
    for column in ("k_byte", "k_short", "k_int", "k_long"):
        assert [r[f"via_{column}"] for r in rows] == [0.7, -0.3, None], column
    as_text = labels.selectExpr("CAST(k_int AS string) AS id", "ts")
    with pytest.raises(EntityColumnError, match=f"'id'.*is string but key scores.id is {key_type}"):
        store.create_training_set(as_text, ["scores:score"])
