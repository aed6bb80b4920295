"""Other tools' spellings, used as their documentation writes them: Databricks Feature
Engineering's create_table / write_table, Feast's get_historical_features(...).to_df()."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fs_spark import SchemaMismatchError

from conftest import T0

pytestmark = pytest.mark.slow  # definitions inferred, written and read back end to end

HOUR = timedelta(hours=1)
SCHEMA = "item int, shop string, ts timestamp, price double, in_stock boolean, sold long, label string"


def test_create_table_infers_the_definition_and_write_table_merges(store, spark):
    rows = spark.createDataFrame([(1, "north", T0, 9.5, True, 3, "a"), (2, "north", T0, 4.0, False, 0, None)], SCHEMA)
    # as Databricks documents it: keys, a time series column, the DataFrame, a description
    table = store.create_table(name="item_features", primary_keys=["shop", "item"], timeseries_columns="ts",
                               df=rows, description="Item features")
    assert list(table.keys) == ["shop", "item"]  # the declared order, not the DataFrame's
    assert {k: v.value for k, v in table.entity.keys.items()} == {"shop": "string", "item": "int"}
    assert [(f.name, f.dtype.value) for f in table.features] == [
        ("price", "double"), ("in_stock", "bool"), ("sold", "long"), ("label", "string")]
    assert table.event_time == "ts" and table.description == "Item features"
    later = spark.createDataFrame([(1, "north", T0 + HOUR, 8.0, True, 5, "b")], SCHEMA)
    version = store.write_table(name="item_features", df=later, mode="merge")
    assert version.version_number == 2 and store.read("item_features").count() == 3
    # the merged view: the latest row per key, as a training set at a later time sees it
    entities = spark.createDataFrame([("north", 1, T0 + 2 * HOUR), ("north", 2, T0 + 2 * HOUR)],
                                     "shop string, item int, ts timestamp")
    frame = store.get_historical_features(entities, ["item_features:price", "item_features:sold"]).to_df()
    assert frame[["item", "price", "sold"]].values.tolist() == [[1, 8.0, 5], [2, 4.0, 0]]


def test_create_table_from_a_schema_alone_and_its_bad_inputs(store, spark):
    table = store.create_table("prices", "sku", "at", schema="sku string, at timestamp, amount float")
    assert [(f.name, f.dtype.value) for f in table.features] == [("amount", "float")]
    assert store.read("prices").count() == 0
    with pytest.raises(SchemaMismatchError, match=r"column 'tags' is array<string>"):
        store.create_table("bad", ["k"], ["ts"], schema="k long, ts timestamp, tags array<string>")
    with pytest.raises(SchemaMismatchError, match=r"primary key 'id' is not a column"):
        store.create_table("bad", ["id"], ["ts"], schema="k long, ts timestamp, x double")
    with pytest.raises(SchemaMismatchError, match=r"timestamp key 'day' is date: it must be a timestamp"):
        store.create_table("bad", ["k"], ["day"], schema="k long, day date, x double")
    with pytest.raises(ValueError, match="name one timestamp key"):
        store.create_table("bad", ["k"], schema="k long, ts timestamp, x double")
    with pytest.raises(ValueError, match="pass df= or schema="):
        store.create_table("bad", ["k"], ["ts"])
    with pytest.raises(ValueError, match="mode 'overwrite' is not supported; fs_spark versions are immutable"):
        store.write_table("prices", spark.createDataFrame([("a", T0, 1.0)], "sku string, at timestamp, amount float"),
                          mode="overwrite")
    assert "bad" not in store.list_tables() and store.read("prices").count() == 0
