"""Materialization against both online stores (embedded SQLite, a real Redis): incremental runs,
and quarantine, rollback and deprecation reaching what is served. The oracle is a brute-force
latest row per key over the writes the served version holds."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import Entity, Feature, FeatureTable

pytestmark = pytest.mark.slow  # the online side end to end: materializations against a store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
# Keys declared in non-alphabetical order, one string and one integral part.
ITEMS = FeatureTable(name="items", entity=Entity(name="item", keys={"zone": "string", "item": "long"}),
                     event_time="ts", features=[Feature(name="price", dtype="double"), Feature(name="label", dtype="string")])
SCHEMA = "zone string, item long, ts timestamp, price double, label string"
FEATURES = ["items:price", "items:label"]


def oracle(batches: dict[int, list[tuple]], served: set[int]) -> dict[tuple, tuple]:
    """Latest row per key among the served writes: greatest event time, ties to the later write."""
    best: dict[tuple, tuple] = {}
    for number, rows in sorted(batches.items()):
        if number not in served:
            continue
        for zone, item, ts, price, label in rows:
            key = (zone, item)
            if key not in best or (ts, number) >= best[key][0]:
                best[key] = ((ts, number), (price, label))
    return {key: value for key, (_, value) in best.items()}


def online(store, keys) -> dict[tuple, tuple]:
    got = store.get_online_features(FEATURES, [{"zone": z, "item": i} for z, i in keys])
    return {key: (p, lb) for key, p, lb in zip(keys, got["price"], got["label"], strict=True) if (p, lb) != (None, None)}


def test_the_oracle_agrees_with_a_hand_worked_case():
    batches = {1: [("a", 1, T0, 1.0, "x"), ("a", 2, T0, 2.0, "y")],
               2: [("a", 1, T0, 9.0, "tie"), ("a", 2, T0 - timedelta(1), 0.0, "old")]}
    assert oracle(batches, {1, 2}) == {("a", 1): (9.0, "tie"), ("a", 2): (2.0, "y")}
    assert oracle(batches, {1}) == {("a", 1): (1.0, "x"), ("a", 2): (2.0, "y")}


def _items(store, spark):
    store.apply(ITEMS)
    batches: dict[int, list[tuple]] = {}

    def write(rows):
        version = store.write("items", spark.createDataFrame(rows, SCHEMA))
        batches[version.version_number] = rows
        return version

    return store, write, batches


@pytest.fixture
def items(online_store, spark):
    """On each store: the runs' logic is the same, the stores' writes and deletes are not."""
    return _items(online_store, spark)


@pytest.fixture
def embedded_items(store, spark):
    """On the embedded store only: what is checked here happens above the store (state, reads)."""
    return _items(store, spark)


def test_a_later_run_writes_only_the_keys_whose_latest_row_changed(items):
    store, write, batches = items
    write([("a", i, T0, float(i), f"l{i}") for i in range(50)])
    first = store.materialize("items")
    assert (first.kind, first.keys_written, first.version_number) == ("full", 50, 1)
    write([("a", 1, T0 + timedelta(hours=1), 100.0, "later"),    # replaces
           ("a", 2, T0 - timedelta(hours=1), -1.0, "earlier"),   # older than the stored row: kept out
           ("a", 3, T0, 33.0, None),                             # same time, later write: replaces, null kept
           ("b", 1, T0, 7.0, "new")])                            # a new key, same item number in another zone
    second = store.materialize("items")
    assert (second.kind, second.keys_written, second.version_number) == ("incremental", 3, 2)
    keys = [("a", i) for i in range(50)] + [("b", 1), ("b", 2)]
    expected = oracle(batches, {1, 2})
    assert online(store, keys) == expected and expected[("a", 3)] == (33.0, None)
    assert store.materialize("items").kind == "none"
    runs = sorted(store.catalog.rows("materializations"), key=lambda r: r["at"])
    assert [(r["kind"], r["keys_written"], r["version_number"]) for r in runs] == [
        ("full", 50, 1), ("incremental", 3, 2), ("none", 0, 2)]
    v1, v2 = (v.version_id for v in store.versions("items"))
    assert runs[0]["supplying_version_ids"] == [v1] and runs[1]["supplying_version_ids"] == [v2]


def test_an_incremental_run_over_several_writes_keeps_each_key_latest_row(items, spark, monkeypatch):
    """The path a stream's micro-batches take (their commits' files, one task), on each store."""
    _incremental_over_several_writes(items, spark, monkeypatch, "few rows")


@pytest.mark.parametrize("path", ["many rows", "files vacuumed"])
def test_an_incremental_run_that_reads_the_snapshot_keeps_each_key_latest_row(embedded_items, spark, monkeypatch,
                                                                              path):
    """The other two paths (the stores' writes are the ones the test above checks)."""
    _incremental_over_several_writes(embedded_items, spark, monkeypatch, path)


def _incremental_over_several_writes(items, spark, monkeypatch, path):
    """Three writes in one incremental run, with a key in all three (the newest write holding
    an older time), two rows of one key in one write, and ties: each way the new rows are
    read (their commits' files, one task; the snapshot, a shuffle by key; the snapshot again
    when compaction and VACUUM removed the files the commits added) serves the oracle's rows."""
    from delta.tables import DeltaTable

    import fs_spark.online.serving as serving

    store, write, batches = items
    write([("a", i, T0, float(i), f"l{i}") for i in range(5)])
    assert store.materialize("items").kind == "full"
    write([("a", 1, T0 + timedelta(hours=1), 11.0, "v2 early"), ("a", 1, T0 + timedelta(hours=3), 13.0, "v2 late"),
           ("a", 2, T0 + timedelta(hours=1), 21.0, "v2"), ("a", 3, T0 + timedelta(hours=1), 31.0, "v2 tie")])
    write([("a", 1, T0 + timedelta(hours=2), 12.0, "v3 older than v2"), ("a", 3, T0 + timedelta(hours=1), 32.0, "v3 tie"),
           ("b", 9, T0, 90.0, "v3 new key")])
    write([("a", 2, T0 + timedelta(hours=1), 22.0, "v4 tie"), ("a", 4, T0 - timedelta(hours=1), -4.0, "v4 too old")])
    if path == "many rows":
        monkeypatch.setattr(serving, "FEW_ROWS", 0)
    if path == "files vacuumed":
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        try:
            DeltaTable.forPath(spark, store.versions("items")[-1].storage_path).optimize().executeCompaction()
            store.vacuum("items", retention_hours=0, force=True, reason="test: the commits' own files gone")
        finally:
            spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    used = []
    for name in ("write_few", "write_latest"):
        monkeypatch.setattr(serving, name, lambda *a, _f=getattr(serving, name), _n=name, **k: used.append(_n) or _f(*a, **k))
    done = store.materialize("items")
    assert (done.kind, done.version_number) == ("incremental", 4)
    assert used == (["write_few"] if path == "few rows" else ["write_latest"])
    keys = [("a", i) for i in range(6)] + [("b", 9)]
    expected = oracle(batches, {1, 2, 3, 4})
    assert online(store, keys) == expected
    assert expected[("a", 1)] == (13.0, "v2 late") and expected[("a", 2)] == (22.0, "v4 tie")
    assert expected[("a", 3)] == (32.0, "v3 tie") and expected[("a", 4)] == (4.0, "l4")
    # keys whose stored row changed: a1, a2, a3, b9 (a4's new row is older than the stored one)
    assert done.keys_written == 4


def test_a_quarantined_write_is_withheld_at_once_and_replaced_by_the_good_version(items):
    store, write, batches = items
    write([("a", 1, T0, 1.0, "one"), ("a", 2, T0, 2.0, "two")])
    write([("a", 1, T0 + timedelta(1), 10.0, "bad"), ("a", 4, T0, 4.0, "bad-only")])
    store.materialize("items")
    keys = [("a", 1), ("a", 2), ("a", 4)]
    assert online(store, keys) == oracle(batches, {1, 2})
    store.quarantine_version("items", 2, "bad upstream file")
    # at once, before any materialization: no value of version 2 is served
    assert online(store, keys) == {("a", 2): (2.0, "two")}
    # Feast's spelling, as its documentation writes it
    lookup = store.get_online_features(features=["items:price"], entity_rows=[{"zone": "a", "item": 1}]).to_dict()
    assert lookup == {"zone": ["a"], "item": [1], "price": [None]} and type(lookup) is dict
    frame = store.get_online_features(features=FEATURES, entity_rows=[{"zone": "a", "item": 2}]).to_df()
    assert frame.to_dict("records") == [{"zone": "a", "item": 2, "price": 2.0, "label": "two"}]
    fixed = store.materialize("items")
    assert (fixed.kind, fixed.keys_written, fixed.keys_removed, fixed.version_number) == ("refresh", 1, 1, 1)
    assert fixed.withheld_versions == (2,)
    assert online(store, keys) == oracle(batches, {1})
    store.release_version("items", 2, "false alarm")
    back = store.materialize("items")
    assert (back.kind, back.version_number) == ("incremental", 2)
    assert online(store, keys) == oracle(batches, {1, 2})


def test_a_rollback_reaches_the_online_store(embedded_items):
    store, write, batches = embedded_items
    write([("a", 1, T0, 1.0, "one")])
    write([("a", 1, T0 + timedelta(1), 2.0, "two"), ("a", 2, T0, 2.0, "two")])
    store.materialize("items")
    store.rollback("items", 1, reason="version 2 was wrong")
    keys = [("a", 1), ("a", 2), ("a", 3)]
    assert online(store, keys) == {}  # both keys' vectors are of the rolled-over write
    done = store.materialize("items")
    assert (done.kind, done.version_number, done.keys_written, done.keys_removed) == ("refresh", 3, 1, 1)
    assert online(store, keys) == oracle(batches, {1})
    write([("a", 3, T0, 3.0, "three")])  # version 4: the rollback's rows and its own
    assert store.materialize("items").kind == "incremental"
    assert online(store, keys) == oracle(batches, {1, 4})


def test_a_retired_feature_is_refused_online_and_the_rest_served(embedded_items):
    from fs_spark.errors import RetiredFeatureError

    store, write, _ = embedded_items
    write([("a", 1, T0, 1.0, "one")])
    store.materialize("items")
    now = datetime.now(timezone.utc)
    store.deprecate("items", "label", announce=now - timedelta(days=2), end=now - timedelta(days=1),
                    replacement="items:price", reason="labels move to the catalog")
    with pytest.raises(RetiredFeatureError, match=r"items.label was retired on .*labels move.*use items:price"):
        store.get_online_features(FEATURES, [{"zone": "a", "item": 1}])
    assert store.get_online_features(["items:price"], [{"zone": "a", "item": 1}])["price"] == [1.0]


def test_each_materialization_is_a_lineage_node_and_openlineage_run(spark, tmp_path):
    from fs_spark import FeatureStore
    from fs_spark.config import LineageSettings, Settings, StoreSettings

    events = tmp_path / "openlineage.jsonl"
    lineage = LineageSettings(openlineage={"transport": {"type": "file", "log_file_path": str(events), "append": True}})
    store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(tmp_path / "s"), user="tester"),
                                                        lineage=lineage))
    store.apply(ITEMS)
    version = store.write("items", spark.createDataFrame([("a", 1, T0, 1.0, "x")], SCHEMA))
    done = store.materialize("items")
    node = f"online_store:{done.online_store}/items"
    upstream = store.lineage.upstream(node)
    assert f"feature_version:{version.version_id}" in upstream.nodes
    assert any(e.relation == "materialized" and e.dst == node for e in upstream.edges)
    assert upstream.nodes[node].detail.endswith("serves #1")
    runs = [e for e in map(json.loads, events.read_text().splitlines()) if e["job"]["name"] == "fs_spark.materialize.items"]
    assert [e["eventType"] for e in runs] == ["START", "COMPLETE"]
    assert runs[-1]["inputs"][0]["facets"]["version"]["datasetVersion"] == str(version.delta_version)
    assert runs[-1]["outputs"][0]["name"].endswith("/items")


def test_unknown_tables_features_and_bad_keys_are_named(embedded_items):
    from fs_spark import EntityColumnError, FeatureNotFoundError
    from fs_spark.errors import NotMaterializedError, OnlineRequestError, TableNotFoundError

    store, write, _ = embedded_items
    with pytest.raises(NotMaterializedError, match="'items' has not been materialized"):
        store.get_online_features(FEATURES, [{"zone": "a", "item": 1}])
    write([("a", 1, T0, 1.0, "one")])
    store.materialize("items")
    with pytest.raises(FeatureNotFoundError, match="Did you mean 'price'"):
        store.get_online_features(["items:prize"], [{"zone": "a", "item": 1}])
    with pytest.raises((TableNotFoundError, NotMaterializedError), match="itemz"):
        store.get_online_features(["itemz:price"], [{"zone": "a", "item": 1}])
    with pytest.raises(EntityColumnError, match=r"'item': is the key items.item \(long\), not str '1'"):
        store.get_online_features(FEATURES, [{"zone": "a", "item": "1"}])
    with pytest.raises(EntityColumnError, match=r"'zone': is the key items.zone \(string\), not int 7"):
        store.get_online_features(FEATURES, [{"zone": 7, "item": 1}])
    with pytest.raises(OnlineRequestError, match="no entity rows"):
        store.get_online_features(FEATURES, [])
    with pytest.raises(OnlineRequestError, match="at most 1000 per call"):
        store.get_online_features(FEATURES, [{"zone": "a", "item": 1}] * 1001)
    assert store.get_online_features(FEATURES, [{"zone": "a", "item": 1}, {"zone": "a", "item": 2**62}])["price"] == [1.0, None]


@pytest.mark.slow
def test_both_stores_hold_the_same_bytes_for_the_same_materialization(spark, tmp_path, redis_url):
    import redis

    from fs_spark import FeatureStore
    from fs_spark.config import OnlineSettings, Settings, StoreSettings
    from fs_spark.online.encoding import encode_key
    from fs_spark.online.factory import online_store_spec

    redis.Redis.from_url(redis_url).flushall()
    root = StoreSettings(root=str(tmp_path / "s"), user="tester")
    embedded = FeatureStore(spark=spark, settings=Settings(store=root))
    in_redis = FeatureStore(spark=spark, settings=Settings(store=root, online=OnlineSettings(kind="redis",
                                                                                           redis_url=redis_url)))
    embedded.apply(ITEMS)
    embedded.write("items", spark.createDataFrame([("a", i, T0, i / 3, None if i % 2 else f"l{i}") for i in range(20)],
                                                  SCHEMA))
    assert embedded.materialize("items").keys_written == in_redis.materialize("items").keys_written == 20
    keys = [encode_key("items", 1, ["a", i]) for i in range(20)]
    stores = [online_store_spec(s.settings.online, s.paths).open() for s in (embedded, in_redis)]
    first, second = (store.read(keys) for store in stores)
    assert first == second and all(first)


@pytest.mark.slow
def test_a_quarantine_while_a_serving_redis_is_down_is_refused_and_nothing_recorded(spark, tmp_path):
    from fs_spark import FeatureStore, OnlineStoreError
    from fs_spark.config import OnlineSettings, Settings, StoreSettings
    from servers import free_port, redis_server

    root = StoreSettings(root=str(tmp_path / "s"), user="tester")
    never = FeatureStore(spark=spark, settings=Settings(store=root, online=OnlineSettings(
        kind="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.3)))
    never.apply(ITEMS)
    never.write("items", spark.createDataFrame([("a", 1, T0, 1.0, "x")], SCHEMA))
    never.quarantine_version("items", 1, "never materialized: the Redis is not asked")
    never.release_version("items", 1)
    with redis_server(tmp_path) as url:
        store = FeatureStore(spark=spark, settings=Settings(store=root, online=OnlineSettings(
            kind="redis", redis_url=url, timeout_seconds=0.3)))
        store.materialize("items")
    # the Redis serving items is down: its values could not be withheld, so nothing is recorded,
    # whether the acting process is configured for that Redis or for the embedded store
    embedded = FeatureStore(spark=spark, settings=Settings(store=root))
    for acting in (store, embedded):
        with pytest.raises(OnlineStoreError, match=r"redis://127.0.0.1:\d+/0: the quarantine of items #1 is refused "
                                                   r"\(nothing recorded\)"):
            acting.quarantine_version("items", 1, "bad")
    assert max(store.catalog.rows("version_status"), key=lambda r: r["at"])["status"] == "released"


@pytest.mark.slow
def test_governance_reaches_every_store_a_table_is_materialized_into_whatever_the_acting_process_uses(
        spark, tmp_path, redis_url):
    """Two processes on one root, one configured for the embedded store, one for Redis, each
    materializing into its own: a rollback, a quarantine and a deprecation made through either
    withhold values in both, as a third process configured for each reads them."""
    import redis

    from fs_spark import FeatureStore
    from fs_spark.config import OnlineSettings, Settings, StoreSettings
    from fs_spark.errors import RetiredFeatureError

    redis.Redis.from_url(redis_url).flushall()
    root = StoreSettings(root=str(tmp_path / "s"), user="tester")
    in_redis = Settings(store=root, online=OnlineSettings(kind="redis", redis_url=redis_url))
    embedded, via_redis = FeatureStore(spark=spark, settings=Settings(store=root)), FeatureStore(spark=spark, settings=in_redis)
    embedded.apply(ITEMS)
    keys = [("a", i) for i in range(50)]
    batches = {}
    for n, price in ((1, 1.0), (2, 2.0)):
        rows = [(z, i, T0 + timedelta(minutes=n), price + i, f"v{n}") for z, i in keys]
        batches[embedded.write("items", spark.createDataFrame(rows, SCHEMA)).version_number] = rows
    for store in (embedded, via_redis):
        store.materialize("items")

    def readers():  # fresh processes, one per store
        return [FeatureStore(spark=spark, settings=s) for s in (Settings(store=root), in_redis)]

    for reader in readers():
        assert online(reader, keys) == oracle(batches, {1, 2})
    embedded.rollback("items", 1, reason="version 2 was wrong")  # through the embedded-configured process
    for reader in readers():  # version 2's values withheld in Redis too (a key then has no value served)
        assert online(reader, keys) == {}
    for store in (embedded, via_redis):
        store.materialize("items")
    for reader in readers():
        assert online(reader, keys) == oracle(batches, {1})
    via_redis.quarantine_version("items", 1, "bad upstream")  # through the Redis-configured process
    for reader in readers():
        assert online(reader, keys) == {}
    via_redis.release_version("items", 1)
    for reader in readers():
        assert online(reader, keys) == oracle(batches, {1})
    now = datetime.now(timezone.utc)
    embedded.deprecate("items", "label", announce=now - timedelta(days=2), end=now - timedelta(days=1),
                       replacement=None, reason="unused")
    for reader in readers():
        with pytest.raises(RetiredFeatureError, match="items.label"):
            reader.get_online_features(["items:label"], [{"zone": "a", "item": 1}])
        assert reader.get_online_features(["items:price"], [{"zone": "a", "item": 1}])["price"] == [2.0]
