"""The point-in-time join against independent oracles: DuckDB's ASOF JOIN on generated data with
skewed keys, deep histories, tied times across writes, nulls, NaN, lookback expiry and keys with no
history; and a brute-force scan for the per-bucket merge."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fs_spark import Entity, Feature, FeatureLookup, FeatureTable
from fs_spark.training.pit_join import _key_codes, _null_mask, _packed, asof_positions

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
KEYS = 120

TABLE = FeatureTable(
    name="spend",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="amount", dtype="double", allow_nan=True), Feature(name="tier", dtype="string")],
)


def _feature_batch(rng: np.random.Generator, rows: int) -> pa.Table:
    keys = (rng.zipf(1.3, rows) - 1) % KEYS  # skewed: key 0 holds a large share
    minutes = rng.integers(0, 3000, rows)  # a coarse grid: many ties within and across writes
    unique = pd.DataFrame({"k": keys, "m": minutes}).drop_duplicates()  # one batch: no duplicate (key, time)
    n = len(unique)
    amount = rng.normal(100, 30, n)
    amount[rng.random(n) < 0.05] = np.nan  # NaN, a value distinct from null
    tiers = rng.choice(["gold", "silver", "bronze"], n)
    return pa.table({
        "customer_id": pa.array(unique["k"].to_numpy(), pa.int64()),
        "ts": pa.array(pd.to_datetime(T0) + pd.to_timedelta(unique["m"].to_numpy(), unit="m"), pa.timestamp("us", "UTC")),
        "amount": pa.array(amount, mask=rng.random(n) < 0.1),
        "tier": pa.array(tiers, mask=rng.random(n) < 0.1),
    })


def _entities(rng: np.random.Generator, rows: int) -> pa.Table:
    keys = (rng.zipf(1.3, rows) - 1) % (KEYS + 20)  # 20 keys with no history
    times = pd.to_datetime(T0) + pd.to_timedelta(rng.integers(-100, 3200, rows), unit="m")
    repeated = rng.choice(rows, rows // 20)  # duplicate entity rows
    keys, times = np.concatenate([keys, keys[repeated]]), times.append(times[repeated])
    n = len(keys)
    return pa.table({
        "eid": pa.array(np.arange(n), pa.int64()),
        "customer_id": pa.array(keys, pa.int64(), mask=rng.random(n) < 0.02),
        "ts": pa.array(times, pa.timestamp("us", "UTC"), mask=rng.random(n) < 0.02),
    })


def _assert_same(ours: pa.Table, oracle: pa.Table, columns: list[str]) -> None:
    assert ours.num_rows == oracle.num_rows
    for name in columns:
        a, b = ours.column(name).combine_chunks(), oracle.column(name).combine_chunks()
        a_null, b_null = a.is_null().to_numpy(zero_copy_only=False), b.is_null().to_numpy(zero_copy_only=False)
        assert (a_null == b_null).all(), f"{name}: nulls differ at rows {np.nonzero(a_null != b_null)[0][:10]}"
        a_values = a.to_pandas().to_numpy()[~a_null]
        b_values = b.to_pandas().to_numpy()[~b_null]
        if pa.types.is_floating(a.type):
            a_values, b_values = a_values.astype(float), b_values.astype(float)
            assert (np.isnan(a_values) == np.isnan(b_values)).all(), f"{name}: NaN differs"
            keep = ~np.isnan(a_values)
            assert (a_values[keep] == b_values[keep]).all(), f"{name}: values differ"
        else:
            assert (a_values == b_values).all(), f"{name}: values differ"


def test_training_set_equals_duckdb_asof_join(store, spark):
    rng = np.random.default_rng(7)
    store.apply(TABLE)
    writes = [_feature_batch(rng, 2500) for _ in range(3)]
    for batch in writes:
        store.write("spend", spark.createDataFrame(batch))
    entity = _entities(rng, 3000)
    entity_df = spark.createDataFrame(entity)
    lookups = [
        FeatureLookup(table_name="spend", feature_names=["amount", "tier"]),
        FeatureLookup(table_name="spend", feature_names=["amount"], lookback_window="2h",
                      rename_outputs={"amount": "amount_2h"}),
    ]
    ours = store.create_training_set(entity_df, lookups).load_df().toArrow()

    # The oracle: every write's rows, ties on (key, time) kept from the later write (DuckDB's
    # ASOF JOIN picks an arbitrary row among tied times), then DuckDB's ASOF LEFT JOIN.
    history = pa.concat_tables([b.append_column("write", pa.array([i] * b.num_rows)) for i, b in enumerate(writes)])
    latest = history.select(["customer_id", "ts", "write"]).to_pandas().sort_values("write")
    history = history.take(pa.array(latest.drop_duplicates(["customer_id", "ts"], keep="last").index.to_numpy()))
    history = history.append_column("rid", pa.array(np.arange(history.num_rows)))
    con = duckdb.connect()
    con.register("f", history)
    con.register("e", entity)
    # DuckDB's ASOF JOIN takes the last non-null value of a payload column (duckdb/duckdb#18303),
    # so it only picks the row (by its non-null rid); the payload is joined on afterwards.
    oracle = con.sql("""
        WITH picked AS (
            SELECT e.eid, e.customer_id, e.ts, f.rid
            FROM e ASOF LEFT JOIN f ON e.customer_id = f.customer_id AND e.ts >= f.ts
        )
        SELECT p.eid, p.customer_id, p.ts, f.amount, f.tier,
               CASE WHEN f.ts >= p.ts - INTERVAL 2 HOUR THEN f.amount END AS amount_2h
        FROM picked p LEFT JOIN f ON p.rid = f.rid
        ORDER BY p.eid
    """).arrow()

    assert ours.column("eid").to_pylist() == list(range(entity.num_rows))  # input order kept
    _assert_same(ours, oracle, ["eid", "customer_id", "amount", "tier", "amount_2h"])
    matched = ours.column("tier").null_count < ours.num_rows
    assert matched and pa.compute.sum(ours.column("amount_2h").is_null()).as_py() > pa.compute.sum(ours.column("amount").is_null()).as_py()


def _brute_force(left_keys, left_time, valid, right_keys, right_time, right_write, tolerance):
    positions = []
    for key, time, ok in zip(left_keys, left_time, valid):
        best = -1
        for j, (rk, rt, rw) in enumerate(zip(right_keys, right_time, right_write)):
            if ok and rk == key and rt <= time and (tolerance is None or time - rt <= tolerance):
                if best < 0 or (rt, rw) > (right_time[best], right_write[best]):
                    best = j
        positions.append(best)
    return np.array(positions)


@pytest.mark.parametrize("span", [1_000, 2**58], ids=["packed", "ranked"])
@pytest.mark.parametrize("tolerance", [None, 50])
def test_bucket_merge_equals_a_brute_force_scan(span, tolerance):
    rng = np.random.default_rng(span % 97 + (tolerance or 0))
    nl, nr = 300, 400
    grid = rng.integers(0, 40, nl + nr) * (span // 40)
    left_keys, right_keys = rng.integers(0, 12, nl), rng.integers(0, 10, nr)
    left_time, right_time = grid[:nl], grid[nl:]
    right_write = rng.integers(1, 4, nr)
    pairs = pd.DataFrame({"k": right_keys, "t": right_time, "w": right_write}).drop_duplicates()
    right_keys, right_time, right_write = (pairs[c].to_numpy() for c in ("k", "t", "w"))
    valid = rng.random(nl) > 0.05
    tol = tolerance if tolerance is None or span == 1_000 else tolerance * (span // 40)
    found = asof_positions(left_keys, left_time, valid, right_keys, right_time, right_write, tol)
    expected = _brute_force(left_keys, left_time, valid, right_keys, right_time, right_write, tol)
    assert (found == expected).all()
    assert (found >= 0).sum() > nl / 3  # the data makes matches, not only misses


@pytest.mark.parametrize("kind", ["int", "wide-int", "string-and-int"])
def test_key_codes_are_equal_for_equal_keys_and_sort_as_the_keys_do(kind):
    rng = np.random.default_rng(7)
    n = 500

    def side(rows: int) -> pa.Table:
        ints = rng.integers(0, 30, rows) * (2**40 if kind == "wide-int" else 1)
        parts = {"a": pa.array(ints, mask=rng.random(rows) < 0.05)}
        if kind == "string-and-int":
            parts = {"s": pa.array([f"k{i}" for i in rng.integers(0, 12, rows)], mask=rng.random(rows) < 0.05), **parts}
        return pa.table(parts)

    left, right = side(n), side(2 * n)
    codes, null = _key_codes(left, right, left.column_names)
    tuples = [tuple(row.values()) for row in left.to_pylist() + right.to_pylist()]
    assert null.tolist() == [None in t for t in tuples]
    keyed = [(t, c) for t, c, missing in zip(tuples, codes, null) if not missing]
    ranks = {t: r for r, t in enumerate(sorted({t for t, _ in keyed}))}
    code_ranks = {c: r for r, c in enumerate(sorted({c for _, c in keyed}))}
    assert all(ranks[t] == code_ranks[c] for t, c in keyed)  # same keys, same codes, same order


def test_a_bucket_too_wide_to_pack_says_to_raise_the_bucket_count():
    wide = np.arange(2**21 + 1, dtype=np.int64) << 30  # 2M distinct values in each part: 22 bits even as ranks
    with pytest.raises(OverflowError, match="raise training.buckets"):
        _packed([(wide, wide)] * 3)
    left, right = _packed([(wide[:3], wide[:3] + 1)] * 2)  # ranks keep the tuples' order
    assert (np.argsort(np.concatenate([left, right]), kind="stable") == [0, 3, 1, 4, 2, 5]).all()


def test_null_masks_of_sliced_and_chunked_arrays():
    values = pa.array([1, None, 3, None, None, 6, 7, None, 9, 10, None])
    assert _null_mask(values).tolist() == [v is None for v in values.to_pylist()]
    sliced = values.slice(3, 6)  # a validity bitmap that starts mid-byte
    assert _null_mask(sliced).tolist() == [True, True, False, False, True, False]
    chunked = pa.chunked_array([values.slice(0, 2), values.slice(7)])
    assert _null_mask(chunked).tolist() == [False, True, True, False, False, True]
    assert _null_mask(pa.array([1, 2])).tolist() == [False, False]
