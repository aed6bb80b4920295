"""The online stores' bytes, and both stores (embedded SQLite, a real Redis): every type
round-trips, keys match as the training side matches them, a reader never sees part of a
batch, a later row wins, and a store that is down fails fast."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.online.encoding import (
    OnlineEncodingError,
    decode_value,
    encode_key,
    encode_value,
    make_decoder,
    translated,
    value_order,
    value_revision,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
EVERY_TYPE = FeatureTable(
    name="every_type",
    entity=Entity(name="thing", keys={"region": "string", "id": "int"}),
    event_time="ts",
    features=[Feature(name=f"f_{t}", dtype=t) for t in
              ("bool", "int", "long", "float", "double", "string", "date", "timestamp")],
)
ROW = (True, -(2**31), 2**63 - 1, 1.5, -0.1, "naïve: ü", date(1969, 12, 31), datetime(1900, 1, 1, tzinfo=timezone.utc))


def test_every_type_and_null_round_trips():
    for values in (ROW, (None,) * 8, (False, 0, 0, -0.0, float("inf"), "", date(1970, 1, 1), T0)):
        vector = decode_value(EVERY_TYPE, encode_value(EVERY_TYPE, 12, T0 + timedelta(microseconds=7), values))
        assert (vector.version_number, vector.event_time, vector.values) == (12, T0 + timedelta(microseconds=7), values)


def test_the_bytes_are_the_documented_layout():
    """An oracle written from the docstring, byte by byte."""
    table = FeatureTable(name="t", entity=Entity(name="e", keys={"k": "long"}), event_time="ts",
                         features=[Feature(name="a", dtype="int"), Feature(name="b", dtype="string"),
                                   Feature(name="c", dtype="double")])
    expected = (struct.pack(">BIIq", 2, 4, 3, 1_704_067_200_000_000) + b"\x01" + struct.pack(">i", -5)
                + b"\x01" + struct.pack(">I", 2) + b"hi" + b"\x00")
    assert encode_value(table, 3, T0, (-5, "hi", None), revision=4) == expected
    assert value_revision(expected) == 4


def test_format_1_values_written_before_revisions_were_stored_still_decode():
    """A value an older fs_spark wrote (no revision field) reads as it did, and orders as it did."""
    table = FeatureTable(name="t", entity=Entity(name="e", keys={"k": "long"}), event_time="ts",
                         features=[Feature(name="a", dtype="int"), Feature(name="b", dtype="string")])
    old = struct.pack(">BIq", 1, 3, 1_704_067_200_000_000) + b"\x01" + struct.pack(">i", -5) + b"\x00"
    assert decode_value(table, old) == (3, T0, (-5, None))
    assert value_revision(old) is None
    assert value_order(old) == (1_704_067_200_000_000, 3)
    assert value_order(old) < value_order(encode_value(table, 4, T0, (1, "x"), revision=2))


def test_a_value_of_an_older_revision_reads_in_the_latest_features_order():
    """Added features are None, as the Delta table's older rows; a widened int reads as a float."""
    older = FeatureTable(name="t", entity=Entity(name="e", keys={"k": "long"}), event_time="ts",
                         features=[Feature(name="a", dtype="int"), Feature(name="b", dtype="string")])
    latest = older.with_(features=[Feature(name="z", dtype="bool"), Feature(name="a", dtype="double"),
                                   Feature(name="b", dtype="string")])
    data = encode_value(older, 2, T0, (7, "hi"), revision=1)
    vector = translated(older, latest, make_decoder(older))(data)
    assert vector == (2, T0, (None, 7.0, "hi")) and type(vector.values[1]) is float
    assert translated(older, older, make_decoder(older))(data) == (2, T0, (7, "hi"))


def test_keys_are_unambiguous_and_integral_types_match_as_longs():
    assert encode_key("t", 2, ("eu", 7)) == b"fs:t:v2:s2:eui7;"
    assert encode_key("t", 2, ("a:b", 1)) != encode_key("t", 2, ("a", "b:1"))
    assert encode_key("t", 1, (7,)) != encode_key("t", 2, (7,))  # definition versions never share a key
    assert encode_key("t", 1, (2**40,)) == b"fs:t:v1:i1099511627776;"
    with pytest.raises(OnlineEncodingError, match="neither an integer nor a string"):
        encode_key("t", 1, (True,))


def test_values_the_encoding_cannot_hold_are_named():
    with pytest.raises(OnlineEncodingError, match=r"every_type.f_int: 2147483648 is not a int"):
        encode_value(EVERY_TYPE, 1, T0, (True, 2**31, *ROW[2:]))
    with pytest.raises(OnlineEncodingError, match="has 8 features, the row gives 2"):
        encode_value(EVERY_TYPE, 1, T0, (True, 1))
    with pytest.raises(OnlineEncodingError, match="no time zone"):
        encode_value(EVERY_TYPE, 1, datetime(2024, 1, 1), ROW)
    other = EVERY_TYPE.with_(features=list(EVERY_TYPE.features[:7]))
    with pytest.raises(OnlineEncodingError, match="left over"):
        decode_value(other, encode_value(EVERY_TYPE, 1, T0, ROW))
    with pytest.raises(OnlineEncodingError, match="not an fs_spark online value"):
        decode_value(EVERY_TYPE, b"\x09rubbish")


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.slow)])
def kv(request, tmp_path):
    """Each online store, opened twice: a writer's handle and a reader's."""
    from fs_spark.online.factory import OnlineStoreSpec

    if request.param == "redis":
        import redis

        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushall()
        return OnlineStoreSpec("redis", url, 1.0)
    return OnlineStoreSpec("embedded", str(tmp_path / "online.db"), 1.0)


def test_each_store_reads_what_it_wrote_with_its_state(kv):
    store = kv.open()
    keys = [encode_key("t", 1, (i,)) for i in range(3)]
    assert store.write([(keys[0], b"a"), (keys[1], b"b")], state={"table:t": b"4"}) == 2
    assert store.read([keys[1], keys[2], keys[0]]) == [b"b", None, b"a"]
    assert store.state(["table:t", "other"]) == [b"4", None]
    store.write([(keys[1], b"B")], delete=[keys[0]], state={"table:t": b"5"})
    again = kv.open()  # another handle sees the committed state
    assert again.read_with_state(keys, ["table:t"]) == ([None, b"B", None], [b"5"])
    assert again.read([]) == [] and again.state([]) == []


def test_only_a_later_row_replaces_a_stored_vector(kv):
    """Incremental runs keep the stored vector when the new row is older (event time, then version)."""
    store = kv.open()
    key = encode_key("t", 1, (1,))
    table = FeatureTable(name="t", entity=Entity(name="e", keys={"k": "long"}), event_time="ts",
                         features=[Feature(name="a", dtype="int")])
    stored = encode_value(table, 2, T0, (1,))
    store.write([(key, stored)])
    for version, at, replaced in ((3, T0 - timedelta(seconds=1), False), (1, T0, False), (3, T0, True),
                                  (4, T0 + timedelta(hours=1), True)):
        newer = encode_value(table, version, at, (version,))
        assert store.write_newer([(key, newer)]) == int(replaced)
        assert store.read([key]) == [newer if replaced else stored]
        stored = store.read([key])[0]


_WRITER = """
import sys
from fs_spark.online.factory import OnlineStoreSpec
store = OnlineStoreSpec(sys.argv[1], sys.argv[2], 5.0).open()
for batch in range(1, 41):
    store.write([(b"k%04d" % i, b"%d" % batch) for i in range(500)], state={"t": b"%d" % batch})
"""


def test_a_reader_never_sees_part_of_a_batch(kv):
    store = kv.open()
    keys = [b"k%04d" % i for i in range(500)]
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, kv.kind, kv.location])
    seen = set()
    try:
        while writer.poll() is None or len(seen) < 1:
            values, (mark,) = store.read_with_state(keys, ["t"])
            batches = {v for v in values if v is not None}
            assert len(batches) <= 1 and (not batches or None not in values), "a reader saw part of a batch"
            if kv.kind == "redis":  # one MGET: the state and the vectors of one transaction
                assert mark in batches or (mark is None and not batches)
            seen |= batches
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert store.read(keys) == [b"40"] * 500 and store.state(["t"]) == [b"40"]
    assert len(seen) >= 1


def test_a_redis_that_is_down_fails_fast_with_its_address():
    import time

    from fs_spark.online.base import OnlineStoreError
    from fs_spark.online.factory import OnlineStoreSpec
    from servers import free_port

    store = OnlineStoreSpec("redis", f"redis://127.0.0.1:{free_port()}/0", 0.5).open()
    started = time.monotonic()
    with pytest.raises(OnlineStoreError, match=r"online store redis://127.0.0.1:\d+/0: read failed: ConnectionError"):
        store.read([b"k"])
    with pytest.raises(OnlineStoreError, match="write failed"):
        store.write([(b"k", b"v")])
    assert time.monotonic() - started < 10  # bounded: no retry loop, no hang


@pytest.mark.slow
def test_a_stuck_redis_times_out_and_its_late_reply_is_never_taken_for_the_next(redis_url):
    """A Redis that stops answering (CLIENT PAUSE) fails a read within its timeout; once it
    answers again, the next read gets its own keys, not the late reply to the first."""
    import time

    import redis

    from fs_spark.online.base import OnlineStoreError
    from fs_spark.online.factory import OnlineStoreSpec

    admin = redis.Redis.from_url(redis_url)
    admin.mset({b"stuck:a": b"A", b"stuck:b": b"B"})
    store = OnlineStoreSpec("redis", redis_url, 0.3).open()
    assert store.read([b"stuck:a"]) == [b"A"]  # the read connection is open before the pause
    admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    started = time.monotonic()
    with pytest.raises(OnlineStoreError, match="read failed: TimeoutError"):
        store.read([b"stuck:a"])
    assert time.monotonic() - started < 1.2  # the timeout, not the pause
    time.sleep(1.6)
    assert store.read([b"stuck:b", b"stuck:none"]) == [b"B", None]
    assert store.state(["nothing"]) == [None]
    store.close()


@pytest.mark.slow
def test_materialized_vectors_equal_a_training_set_built_now(online_store, spark):
    """No training/serving skew: for 3,000 random keys (and keys never written), the online
    vector is the row a point-in-time training set picks for an entity time of now, value for
    value (the training set keeps the entity rows' order)."""
    import random

    from fs_spark import FeatureNotFoundError

    store = online_store
    table = FeatureTable(name="profile", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts",
                         features=[Feature(name="spend", dtype="double"), Feature(name="tier", dtype="string"),
                                   Feature(name="seen", dtype="timestamp"), Feature(name="visits", dtype="int")])
    store.apply(table)
    rng = random.Random(5)
    schema = "customer_id long, ts timestamp, spend double, tier string, seen timestamp, visits int"
    for batch in range(3):  # later writes replace some keys, sometimes at the same event time
        rows = {k: (k, T0 + timedelta(hours=rng.randrange(5)), rng.choice([None, rng.random()]),
                    rng.choice(["a", "b", None]), T0 + timedelta(minutes=rng.randrange(999)), rng.randrange(-9, 9))
                for k in rng.sample(range(3000), 2000)}
        store.write("profile", spark.createDataFrame(list(rows.values()), schema))
    done = store.materialize("profile")
    assert (done.kind, done.keys_written) == ("full", len({r.customer_id for r in store.read("profile").collect()}))

    keys = rng.sample(range(3000), 2995) + list(range(3000, 3005))  # 3000..3004 were never written
    features = ["profile:spend", "profile:tier", "profile:seen", "profile:visits"]
    online: dict[str, list] = {}
    for start in range(0, len(keys), 1000):  # at most 1000 entity rows a call
        part = store.get_online_features(features, [{"customer_id": k} for k in keys[start:start + 1000]])
        for column, values in part.items():
            online.setdefault(column, []).extend(values)
    now = datetime.now(timezone.utc)
    built = store.create_training_set(spark.createDataFrame([(k, now) for k in keys], "customer_id long, ts timestamp"),
                                      features).load_df().collect()
    for name in ("spend", "tier", "visits"):
        assert online[name] == [r[name] for r in built], name
    assert online["seen"] == [None if r.seen is None else r.seen.replace(tzinfo=timezone.utc) for r in built]
    assert online["customer_id"] == keys and online["spend"][-5:] == [None] * 5
    assert sum(v is not None for v in online["visits"]) > 2000  # most keys were written
    with pytest.raises(FeatureNotFoundError, match="Did you mean 'spend'"):
        store.get_online_features(["profile:spnd"], [{"customer_id": 1}])


def test_expired_and_missing_keys_get_the_lookups_default(store, spark):
    from fs_spark import EntityColumnError, FeatureLookup

    table = FeatureTable(name="clicks", entity=Entity(name="page", keys={"region": "string", "page": "int"}),
                         event_time="ts", ttl="1d", features=[Feature(name="n", dtype="long")])
    store.apply(table)
    now = datetime.now(timezone.utc)
    rows = [("eu", 1, now - timedelta(hours=1), 5), ("eu", 2, now - timedelta(days=3), 7), ("us", 1, now, None)]
    store.write("clicks", spark.createDataFrame(rows, "region string, page int, ts timestamp, n long"))
    assert store.materialize("clicks").keys_written == 3
    lookup = FeatureLookup(table_name="clicks", feature_names=["n"], lookup_key=["r", "p"], default_values={"n": 0})
    entity_rows = [{"r": "eu", "p": 1}, {"r": "eu", "p": 2}, {"r": "us", "p": 1}, {"r": "us", "p": 9}]
    # fresh; older than the ttl: the default; a null stays null; never written: the default
    assert store.get_online_features([lookup], entity_rows)["n"] == [5, 0, None, 0]
    with pytest.raises(EntityColumnError, match="'p': is a key of clicks"):
        store.get_online_features([lookup], [{"r": "eu"}])


@pytest.mark.slow
def test_the_command_line_and_the_job_materialize(store, activity, capsys):
    import io
    import sys as system
    from pathlib import Path

    from conftest import activity_rows
    from fs_spark.cli import run

    store.write("customer_activity", activity(activity_rows(30)))
    out = io.StringIO()
    assert run(["--root", store.root, "materialize", "customer_activity"], out=out) == 0
    assert out.getvalue().strip().startswith("customer_activity: full, 30 key(s) written, 0 removed; embedded:")
    system.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
    import materialize as job

    assert job.main(["--root", store.root, "--table", "customer_activity"]) == 0
    assert '"kind": "none"' in capsys.readouterr().out  # nothing changed since
    assert store.get_online_features(["customer_activity:visits"], [{"customer_id": 29}])["visits"] == [29]
    out = io.StringIO()
    assert run(["--root", store.root, "get-online-features", "-f", "customer_activity:visits",
                "-f", "customer_activity:segment", "-e", "customer_id=29"], out=out) == 0
    assert out.getvalue().strip() == '{"customer_id": 29, "visits": 29, "segment": "new"}'
    from fs_spark import EntityColumnError

    with pytest.raises(EntityColumnError, match="customer_id"):
        run(["--root", store.root, "get-online-features", "-f", "customer_activity:visits", "-e", "customer_id=x"])


def test_a_fixed_width_vector_decodes_the_same_by_the_one_unpack_path():
    """Every feature of fixed width and present is decoded with one struct; a null anywhere
    takes the step-by-step path. Both must give what was encoded."""
    fixed = FeatureTable(name="fixed", entity=Entity(name="e", keys={"k": "long"}), event_time="ts",
                         features=[Feature(name=f"f_{t}", dtype=t) for t in
                                   ("bool", "int", "long", "float", "double", "date", "timestamp")])
    present = (False, -7, 2**40, 0.5, -2.25, date(2000, 2, 29), datetime(2030, 1, 1, 12, tzinfo=timezone.utc))
    for values in (present, (None, *present[1:]), (*present[:6], None)):
        vector = decode_value(fixed, encode_value(fixed, 3, T0, values))
        assert (vector.version_number, vector.event_time, vector.values) == (3, T0, values)
    assert [type(v) for v in decode_value(fixed, encode_value(fixed, 3, T0, present)).values] == [
        bool, int, int, float, float, date, datetime]
    # the one-pack encoding is the documented layout, byte for byte
    assert encode_value(fixed, 3, T0, present) == struct.pack(
        ">BIIqB?BiBqBfBdBiBq", 2, 1, 3, 1_704_067_200_000_000, 1, False, 1, -7, 1, 2**40, 1, 0.5, 1, -2.25,
        1, (date(2000, 2, 29) - date(1970, 1, 1)).days, 1, 1_893_499_200_000_000)
    with pytest.raises(OnlineEncodingError, match=r"fixed.f_int: 2147483648 is not a int"):
        encode_value(fixed, 3, T0, (False, 2**31, *present[2:]))
