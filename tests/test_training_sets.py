"""Point-in-time training sets: each rule of the semantics, with tiny inline data."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import (
    Entity,
    EntityColumnError,
    Feature,
    FeatureLookup,
    FeatureLookupError,
    FeatureTable,
    InvalidNameError,
    NaiveEntityTimeError,
    TableNotFoundError,
    VersionNotFoundError,
    VersionQuarantinedError,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)

SPEND = FeatureTable(
    name="spend",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="amount", dtype="double", allow_nan=True), Feature(name="tier", dtype="string")],
)
CLICKS = FeatureTable(
    name="clicks",
    entity=Entity(name="page", keys={"page": "string", "region": "int"}),
    event_time="seen_at",
    features=[Feature(name="clicks", dtype="long")],
    ttl="2d",
)
SPEND_SCHEMA = "customer_id long, ts timestamp, amount double, tier string"
ENTITY_SCHEMA = "customer_id long, ts timestamp, churned boolean"


@pytest.fixture
def spend(store, spark):
    store.apply(SPEND)

    def write(rows):
        return store.write("spend", spark.createDataFrame(rows, SPEND_SCHEMA))

    return write


def entities(spark, rows, schema=ENTITY_SCHEMA):
    return spark.createDataFrame(rows, schema)


def rows_of(training_set, *columns):
    frame = training_set.load_df()
    return [tuple(r[c] for c in columns) for r in frame.collect()]


def test_takes_the_latest_row_at_or_before_the_entity_time(store, spark, spend):
    spend([(1, T0, 1.0, "a"), (1, T0 + 2 * DAY, 2.0, "b"), (1, T0 + 4 * DAY, 4.0, "c")])
    ents = entities(spark, [(1, T0 - DAY, True), (1, T0, True), (1, T0 + 3 * DAY, False), (1, T0 + 4 * DAY, True)])
    ts = store.create_training_set(ents, ["spend:amount"], label="churned")
    assert rows_of(ts, "amount") == [(None,), (1.0,), (2.0,), (4.0,)]
    feast_style = store.get_historical_features(ents, features=["spend:amount"])
    assert rows_of(feast_style, "amount") == rows_of(ts, "amount")


def test_lookback_window_leaves_old_rows_out(store, spark, spend):
    spend([(1, T0, 1.0, "a")])
    ents = entities(spark, [(1, T0 + 2 * DAY, True), (1, T0 + 3 * DAY + timedelta(seconds=1), True)])
    lookup = FeatureLookup(table_name="spend", feature_names=["amount"], lookback_window="3d")
    ts = store.create_training_set(ents, [lookup])
    assert rows_of(ts, "amount") == [(1.0,), (None,)]
    assert ts.lookups[0].lookback_micros == 3 * 86_400 * 1_000_000


def test_tied_event_times_go_to_the_later_write(store, spark, spend):
    spend([(1, T0, 1.0, "first")])
    spend([(1, T0, 2.0, "second")])
    ts = store.create_training_set(entities(spark, [(1, T0 + DAY, True)]), ["spend:amount", "spend:tier"])
    assert rows_of(ts, "amount", "tier") == [(2.0, "second")]


def test_latest_null_is_not_filled_from_older_row(store, spark, spend):
    spend([(1, T0, 1.0, "a"), (1, T0 + DAY, None, "b"), (2, T0, float("nan"), None)])
    ents = entities(spark, [(1, T0 + 2 * DAY, True), (2, T0 + 2 * DAY, True)])
    ts = store.create_training_set(ents, ["spend:amount", "spend:tier"])
    (a1, t1), (a2, t2) = rows_of(ts, "amount", "tier")
    assert (a1, t1) == (None, "b")
    assert math.isnan(a2) and t2 is None  # NaN stays NaN, null stays null


def test_entity_rows_keep_their_order_count_and_duplicates(store, spark, spend):
    spend([(1, T0, 1.0, "a"), (2, T0, 2.0, "b")])
    given = [(2, T0 + DAY, True), (1, T0 + DAY, False), (2, T0 + DAY, True), (None, T0, True),
             (1, None, False), (9, T0 + DAY, True), (1, T0 + DAY, False)]
    ts = store.create_training_set(entities(spark, given, "customer_id long, ts timestamp, churned boolean"), ["spend:amount"], label="churned")
    assert rows_of(ts, "customer_id", "amount", "churned") == [
        (2, 2.0, True), (1, 1.0, False), (2, 2.0, True), (None, None, True), (1, None, False), (9, None, True), (1, 1.0, False),
    ]
    assert ts.manifest.row_count == ts.manifest.entity_row_count == 7


def test_defaults_fill_only_rows_with_no_match(store, spark, spend):
    spend([(1, T0, None, "a")])
    lookup = FeatureLookup(table_name="spend", feature_names=["amount", "tier"], default_values={"amount": -1.0, "tier": "none"})
    ts = store.create_training_set(entities(spark, [(1, T0, True), (2, T0, True)]), [lookup])
    assert rows_of(ts, "amount", "tier") == [(None, "a"), (-1.0, "none")]


def test_as_of_hides_rows_committed_later(store, spark, spend):
    spend([(1, T0, 1.0, "a")])
    cutoff = datetime.now(timezone.utc)
    spend([(1, T0 + DAY, 5.0, "backfill")])
    ents = entities(spark, [(1, T0 + 2 * DAY, True)])
    past = store.create_training_set(ents, ["spend:amount"], as_of=cutoff)
    now = store.create_training_set(ents, ["spend:amount"])
    assert rows_of(past, "amount") == [(1.0,)]
    assert rows_of(now, "amount") == [(5.0,)]
    assert past.manifest.as_of == cutoff
    assert past.lookups[0].version_number == 1 and now.lookups[0].version_number == 2


def test_versions_pinned_by_number_id_or_delta_version(store, spark, spend):
    first = spend([(1, T0, 1.0, "a")])
    second = spend([(1, T0 + DAY, 2.0, "b")])
    ents = entities(spark, [(1, T0 + 2 * DAY, True)])
    pins = [{"version": 1}, {"version": first.version_id}, {"delta_version": first.delta_version}, {}]
    results = []
    for pin in pins:
        ts = store.create_training_set(ents, [FeatureLookup(table_name="spend", feature_names=["amount"], **pin)])
        results.append((rows_of(ts, "amount")[0][0], ts.manifest.feature_version_ids))
    assert results == [(1.0, [first.version_id])] * 3 + [(2.0, [second.version_id])]


def test_unknown_and_quarantined_versions_are_refused(store, spark, spend):
    first = spend([(1, T0, 1.0, "a")])
    spend([(1, T0 + DAY, 2.0, "b")])
    ents = entities(spark, [(1, T0 + 2 * DAY, True)])
    with pytest.raises(VersionNotFoundError, match="spend"):
        store.create_training_set(ents, [FeatureLookup(table_name="spend", version=7)])
    with pytest.raises(VersionNotFoundError, match="Delta version"):
        store.create_training_set(ents, [FeatureLookup(table_name="spend", delta_version=0)])
    store.quarantine_version("spend", 1, reason="bad upstream file")
    with pytest.raises(VersionQuarantinedError, match="bad upstream file") as raised:
        store.create_training_set(ents, ["spend:amount"])  # version 2 holds version 1's rows too
    assert raised.value.version_ids == [first.version_id]
    store.release_version("spend", 1)
    assert rows_of(store.create_training_set(ents, ["spend:amount"]), "amount") == [(2.0,)]


def test_zone_less_entity_times_need_a_zone(store, spark, spend):
    spend([(1, T0, 1.0, "a"), (1, T0 + timedelta(hours=1), 2.0, "b")])
    naive = spark.createDataFrame([(1, datetime(2024, 1, 1, 1, 30))], "customer_id long, ts timestamp_ntz")
    with pytest.raises(NaiveEntityTimeError, match="'ts'.*timezone="):
        store.create_training_set(naive, ["spend:amount"])
    # 01:30 in Paris is 00:30 UTC: before the second row.
    paris = store.create_training_set(naive, ["spend:amount"], timezone="Europe/Paris")
    utc = store.create_training_set(naive, ["spend:amount"], timezone="UTC")
    assert rows_of(paris, "amount") == [(1.0,)] and rows_of(utc, "amount") == [(2.0,)]
    assert paris.manifest.timezone == "Europe/Paris"
    with pytest.raises(EntityColumnError, match="Mars/Olympus"):
        store.create_training_set(naive, ["spend:amount"], timezone="Mars/Olympus")


def test_several_tables_with_different_keys_and_time_columns(store, spark, spend):
    store.apply(CLICKS)
    spend([(1, T0, 1.0, "a")])
    store.write("clicks", spark.createDataFrame(
        [("home", 1, T0, 10), ("home", 2, T0, 20), ("cart", 1, T0 - 5 * DAY, 30)],
        "page string, region int, seen_at timestamp, clicks long"))
    ents = spark.createDataFrame(
        [(1, T0 + DAY, "home", 2, T0 + DAY, "x", True), (1, T0 + DAY, "cart", 1, T0, "y", False)],
        "customer_id long, ts timestamp, url string, reg long, visit timestamp, note string, churned boolean",
    )
    lookups = [
        FeatureLookup(table_name="clicks", lookup_key=["url", "reg"], timestamp_lookup_key="visit",
                      rename_outputs={"clicks": "page_clicks"}),
        "spend:amount",
    ]
    ts = store.create_training_set(ents, lookups, label="churned", exclude_columns=["note"])
    frame = ts.load_df()
    assert frame.columns == ["customer_id", "ts", "url", "reg", "visit", "page_clicks", "amount", "churned"]
    # cart's only row is 5 days old: beyond the table's 2-day ttl, the default lookback.
    assert rows_of(ts, "page_clicks", "amount") == [(20, 1.0), (None, 1.0)]
    assert [lk.table_name for lk in ts.lookups] == ["clicks", "spend"]


def test_a_table_never_written_gives_nulls(store, spark, spend):
    ts = store.create_training_set(entities(spark, [(1, T0, True)]), ["spend:amount"])
    assert rows_of(ts, "amount") == [(None,)]
    assert ts.manifest.feature_version_ids == [] and ts.lookups[0].delta_version is None


@pytest.mark.parametrize(
    "lookups, frame_schema, error, words",
    [
        (["nope:amount"], ENTITY_SCHEMA, TableNotFoundError, "nope"),
        (["spend:colour"], ENTITY_SCHEMA, FeatureLookupError, "colour"),
        ([FeatureLookup(table_name="spend", lookup_key="cust")], ENTITY_SCHEMA, EntityColumnError, "'cust'"),
        ([FeatureLookup(table_name="spend", timestamp_lookup_key="when")], ENTITY_SCHEMA, EntityColumnError, "'when'"),
        (["spend:amount"], "customer_id string, ts timestamp, churned boolean", EntityColumnError, "customer_id.*string"),
        (["spend:amount"], "customer_id long, ts string, churned boolean", EntityColumnError, "'ts'.*timestamp"),
        (["spend:amount"], "customer_id long, ts timestamp, amount double", FeatureLookupError, "'amount'.*rename"),
        (["spend:amount", FeatureLookup(table_name="spend", feature_names=["amount"])], ENTITY_SCHEMA, FeatureLookupError, "also the output"),
        ([FeatureLookup(table_name="spend", feature_names=["amount"], default_values={"amount": "zero"})], ENTITY_SCHEMA, FeatureLookupError, "double"),
        ([FeatureLookup(table_name="spend", lookup_key=["customer_id", "ts"])], ENTITY_SCHEMA, FeatureLookupError, "one entity column per key"),
        (["spend:amount"], "customer_id long, ts timestamp, _fs_row long", EntityColumnError, "reserved"),
    ],
)
def test_bad_lookups_and_entity_frames_are_refused(store, spark, spend, lookups, frame_schema, error, words):
    spend([(1, T0, 1.0, "a")])
    before = len(store.training_sets())
    with pytest.raises(error, match=words):
        store.create_training_set(spark.createDataFrame([], frame_schema), lookups)
    assert len(store.training_sets()) == before  # nothing recorded


def test_lookup_definitions_are_validated():
    with pytest.raises(ValueError, match="either version or delta_version"):
        FeatureLookup(table_name="spend", version=1, delta_version=3)
    with pytest.raises(ValueError, match="duration"):
        FeatureLookup(table_name="spend", lookback_window="soon")
    with pytest.raises(InvalidNameError, match="table"):
        FeatureLookup(table_name="../spend")


@pytest.mark.slow
def test_the_readme_worked_example(store, spark, spend):
    at = lambda h, m=0: T0 + timedelta(hours=h, minutes=m)  # noqa: E731
    spend([(1, at(9), 10.0, None), (1, at(12), None, None), (2, at(9), 5.0, None)])
    spend([(1, at(12), 30.0, None)])
    ents = entities(spark, [(1, at(8), True), (1, at(9), True), (1, at(12, 30), True), (1, at(12, 30), True),
                            (2, at(11, 30), True), (3, at(12), True)])
    lookup = FeatureLookup(table_name="spend", feature_names=["amount"], lookback_window="2h")
    assert rows_of(store.create_training_set(ents, [lookup]), "amount") == [(None,), (10.0,), (30.0,), (30.0,), (None,), (None,)]
    without_write_2 = lookup.model_copy(update={"version": 1})
    assert rows_of(store.create_training_set(ents, [without_write_2]), "amount")[2] == (None,)
