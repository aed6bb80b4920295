"""What users hand fs_spark the way other tools make it: pandas and Arrow frames, Parquet written
by pandas (nanosecond timestamps), missing paths, and pandas' int64 for an int feature."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest

from fs_spark import (
    Entity,
    Feature,
    FeatureTable,
    InputNotFoundError,
    NaiveEntityTimeError,
    SchemaMismatchError,
    TimestampPrecisionError,
    ValidationError,
)
from fs_spark.inputs import read_entities, read_file

pytestmark = pytest.mark.slow  # files, pandas and Arrow frames end to end

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
COUNTS = FeatureTable(
    name="counts",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="visits", dtype="int"), Feature(name="ratio", dtype="float")],
)


@pytest.fixture
def counts(store):
    store.apply(COUNTS)
    return store


def _frame(visits, ratio=None) -> pd.DataFrame:
    """A pandas batch as pandas makes it: int64 or float64 columns, nanosecond UTC times."""
    n = len(visits)
    return pd.DataFrame({
        "customer_id": range(n),
        "ts": pd.to_datetime([T0 + timedelta(hours=i) for i in range(n)], utc=True),
        "visits": visits,
        "ratio": ratio if ratio is not None else [0.5] * n,
    })


def test_pandas_int64_for_an_int_feature_is_refused_with_the_cast_that_would_take_it(counts):
    with pytest.raises(SchemaMismatchError) as caught:
        counts.write("counts", _frame([1, 2, 3]))
    message = str(caught.value)
    assert "'visits': rule type: declared int, found bigint" in message and 'cast="safe"' in message
    assert counts.versions("counts") == []


def test_cast_safe_takes_every_value_that_fits_and_refuses_the_rest_by_name(counts):
    version = counts.write("counts", _frame([1, None, 2**31 - 1], ratio=[0.5, 0.25, None]), cast="safe")
    rows = counts.read("counts").orderBy("customer_id").collect()
    assert [(r.visits, r.ratio) for r in rows] == [(1, 0.5), (None, 0.25), (2**31 - 1, None)]
    assert version.row_count == 3

    with pytest.raises(ValidationError) as caught:  # beyond int, and a fraction a float cannot hold
        counts.write("counts", _frame([2**31, 5, 6], ratio=[0.5, 0.1, 0.5]), cast="safe")
    found = {(v.feature, v.rule, v.count, v.example) for v in caught.value.violations}
    assert found == {("visits", "cast[bigint->int]", 1, "2147483648"), ("ratio", "cast[double->float]", 1, "0.1")}
    assert len(counts.versions("counts")) == 1

    kept = counts.write("counts", _frame([7, 2**40, 9]).assign(customer_id=[10, 11, 12]), cast="safe", mode="quarantine")
    assert (kept.row_count, kept.quarantined_row_count) == (2, 1)
    assert sorted(r.visits for r in counts.read("counts").where("customer_id >= 10").collect()) == [7, 9]


def test_cast_safe_refuses_a_fraction_for_a_long_and_is_compared_in_an_exact_type(store, spark):
    store.apply(COUNTS.with_(name="totals", features=[Feature(name="total", dtype="long"),
                                                      Feature(name="share", dtype="float")]))
    rows = [(1, T0, 2.0, 16777216), (2, T0, 2.5, 16777217)]  # 2**24 + 1 is not a float
    frame = spark.createDataFrame(rows, "customer_id long, ts timestamp, total double, share long")
    with pytest.raises(ValidationError) as caught:
        store.write("totals", frame, cast="safe")
    assert {(v.feature, v.rule, v.example) for v in caught.value.violations} == {
        ("total", "cast[double->bigint]", "2.5"), ("share", "cast[bigint->float]", "16777217")}
    store.write("totals", frame.where("customer_id = 1"), cast="safe")
    assert [(r.total, r.share) for r in store.read("totals").collect()] == [(2, 16777216.0)]


def test_parquet_written_by_pandas_is_read_with_its_nanoseconds_checked(counts, spark, tmp_path):
    good = _frame([1, 2]).assign(visits=lambda d: d.visits.astype("int32"), ratio=lambda d: d.ratio.astype("float32"))
    good.loc[1, "ts"] += pd.Timedelta(microseconds=7)
    good.to_parquet(tmp_path / "good.parquet")
    assert pa.parquet.read_schema(tmp_path / "good.parquet").field("ts").type == pa.timestamp("ns", tz="UTC")
    counts.write("counts", read_file(spark, str(tmp_path / "good.parquet")))
    assert [r.ts for r in counts.read("counts").orderBy("customer_id").collect()] == [  # UTC, as the session's
        datetime(2024, 1, 1), datetime(2024, 1, 1, 1, 0, 0, 7)]

    bad = good.copy()
    bad.loc[0, "ts"] += pd.Timedelta(nanoseconds=1)
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(TimestampPrecisionError) as caught:
        read_file(spark, str(tmp_path / "bad.parquet"))
    assert "'ts'" in str(caught.value) and "1704067200000000001" in str(caught.value)


def test_a_missing_input_is_named(spark, tmp_path):
    for reader in (lambda p: read_file(spark, p), lambda p: read_entities(spark, p)):
        with pytest.raises(InputNotFoundError) as caught:
            reader(str(tmp_path / "nowhere.parquet"))
        assert "nowhere.parquet" in str(caught.value)


def test_pandas_and_arrow_entity_frames_give_the_expected_rows(counts, spark):
    counts.write("counts", _frame([1, 2, 3]), cast="safe")
    labels = pd.DataFrame({"customer_id": [0, 1, 2, 9],
                           "ts": pd.to_datetime([T0 + timedelta(hours=h) for h in (0, 0, 5, 5)], utc=True),
                           "churned": [True, False, True, False]})
    by_pandas = counts.get_historical_features(entity_df=labels, features=["counts:visits"], label="churned")
    by_arrow = counts.create_training_set(pa.Table.from_pandas(labels), ["counts:visits"], label="churned")
    at0, at5 = datetime(2024, 1, 1), datetime(2024, 1, 1, 5)  # UTC, as the session shows them
    want = [(0, at0, 1, True), (1, at0, None, False), (2, at5, 3, True), (9, at5, None, False)]
    for built in (by_pandas, by_arrow):
        assert [tuple(r) for r in built.load_df().select("customer_id", "ts", "visits", "churned").collect()] == want

    result = by_pandas.to_df()  # Feast's spelling: pandas
    assert isinstance(result, pd.DataFrame) and list(result["visits"].astype("Int64")) == [1, pd.NA, 3, pd.NA]
    assert by_pandas.to_arrow().num_rows == 4 and by_pandas.to_spark_df().count() == 4

    sub_micro = labels.assign(ts=labels.ts + pd.Timedelta(nanoseconds=5))
    with pytest.raises(TimestampPrecisionError):
        counts.create_training_set(sub_micro, ["counts:visits"])
    naive = labels.assign(ts=labels.ts.dt.tz_localize(None))
    with pytest.raises(NaiveEntityTimeError):
        counts.create_training_set(naive, ["counts:visits"])
    in_paris = counts.create_training_set(naive.assign(ts=naive.ts + pd.Timedelta(hours=1)), ["counts:visits"],
                                          timezone="Europe/Paris")
    assert [r.visits for r in in_paris.load_df().collect()] == [1, None, 3, None]
    with pytest.raises(TypeError, match="the entity rows must be a Spark DataFrame"):
        counts.create_training_set([(1, T0)], ["counts:visits"])
