"""Definitions are immutable, validated values that survive YAML and JSON without loss."""

from __future__ import annotations

import pytest
from pydantic import ValidationError as PydanticError

from fs_spark import (
    CrossFeatureRule,
    DefinitionError,
    Entity,
    Feature,
    FeatureTable,
    InvalidNameError,
    Transformation,
    dump_definitions,
    load_definitions,
)
from fs_spark.definitions.compatibility import diff
from fs_spark.ids import is_id, new_id
from fs_spark.storage.paths import StorePaths

from conftest import activity_table


@pytest.mark.parametrize("name", ["../etc", "a/b", "Customer", "1abc", "a;drop table x", "a b", "", "x" * 65, "a-b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(InvalidNameError, match="invalid table name"):
        activity_table(name=name)


def test_names_never_leave_the_store_root():
    paths = StorePaths("/srv/store")
    with pytest.raises(InvalidNameError):
        paths.table("../../etc", 1)
    assert paths.table("customer_activity", 2) == "/srv/store/tables/customer_activity/v2"


def test_definitions_are_immutable_and_copied_with_changes():
    table = activity_table()
    with pytest.raises(PydanticError):
        table.description = "changed"  # type: ignore[misc]
    changed = table.with_(description="changed")
    assert changed.description == "changed" and table.description == ""


def test_yaml_round_trip_is_lossless(tmp_path):
    def spend(df):
        return df

    table = activity_table(
        ttl="30d",
        parents=("orders:amount",),
        transformation=Transformation.from_function(spend, parameters={"window": 7}, windows=("7d",)),
        source={"name": "orders", "kind": "path", "location": "s3a://bucket/orders", "description": "orders"},
    )
    path = tmp_path / "defs.yaml"
    path.write_text(dump_definitions([table]))
    assert load_definitions(path) == [table]
    assert FeatureTable.from_dict(table.to_dict()) == table
    assert load_definitions(tmp_path)[0].definition_hash() == table.definition_hash()


def test_yaml_entities_are_shared_by_name(tmp_path):
    (tmp_path / "a.yaml").write_text(
        """
entities:
  - {name: customer, keys: {customer_id: long}}
feature_tables:
  - name: t1
    entity: customer
    event_time: ts
    features: [{name: f, dtype: double}]
"""
    )
    (table,) = load_definitions(tmp_path)
    assert table.entity == Entity(name="customer", keys={"customer_id": "long"})


def test_yaml_with_unknown_key_names_the_table(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "feature_tables:\n  - {name: t1, entity: {name: c, keys: {k: long}}, event_time: ts, "
        "features: [{name: f, dtype: double}], colour: red}\n"
    )
    with pytest.raises(DefinitionError, match="t1.*colour"):
        load_definitions(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    "feature, message",
    [
        (dict(name="f", dtype="string", min_value=1), "range needs a numeric type"),
        (dict(name="f", dtype="double", min_value=5, max_value=1), "min_value 5.0 > max_value 1.0"),
        (dict(name="f", dtype="int", allow_nan=True), "allow_nan needs a float"),
        (dict(name="f", dtype="string", allowed_values=(1, 2)), "do not match type string"),
        (dict(name="f", dtype="decimal"), "dtype"),
    ],
)
def test_inconsistent_features_are_refused(feature, message):
    with pytest.raises(PydanticError, match=message):
        Feature(**feature)


@pytest.mark.parametrize("expression", ["min_7d <= max_7d; drop table x", "1 = 1", "min_7d <= max_7d or true", "f(x) > 1"])
def test_rules_accept_only_the_small_grammar(expression):
    with pytest.raises(PydanticError, match="must be '<feature> <op>"):
        CrossFeatureRule(name="r", expression=expression)


def test_rules_must_name_numeric_features_of_the_table():
    with pytest.raises(PydanticError, match="'segment', which is not a numeric feature"):
        activity_table(rules=[{"name": "r", "expression": "segment < max_7d"}])


def test_reserved_and_duplicate_columns_are_refused():
    with pytest.raises(PydanticError, match="used twice"):
        activity_table(features=[Feature(name="customer_id", dtype="long")])
    with pytest.raises(PydanticError, match="entity|key"):
        Entity(name="c", keys={"k": "double"})


def test_transformation_fingerprint_follows_the_code():
    def v1(df):
        return df

    def v2(df):
        return df.limit(1)

    a, b = Transformation.from_function(v1), Transformation.from_function(v2)
    assert a.fingerprint.startswith("sha256:") and a.fingerprint != b.fingerprint
    assert Transformation.from_function(v1).fingerprint == a.fingerprint


def test_compatibility_marks_what_breaks_readers():
    old = activity_table()
    features = list(old.features)
    added = old.with_(features=[*features, Feature(name="extra", dtype="double")])
    assert [(c.kind, c.breaking) for c in diff(old, added)] == [("add_feature", False)]
    dropped = old.with_(features=features[1:])
    assert ("drop_feature", "spend_7d", True) in [(c.kind, c.subject, c.breaking) for c in diff(old, dropped)]
    narrowed = old.with_(features=[features[0].with_(dtype="float"), *features[1:]])
    assert [(c.kind, c.breaking) for c in diff(old, narrowed)] == [("change_type", True)]
    widened = old.with_(features=[*features[:3], features[3].with_(dtype="long"), features[4]])
    assert [(c.kind, c.breaking) for c in diff(old, widened)] == [("widen_type", False)]
    unit = old.with_(features=[features[0].with_(unit="usd"), *features[1:]])
    assert [(c.kind, c.breaking) for c in diff(old, unit)] == [("change_unit", True)]


def test_ids_are_time_ordered_uuid7():
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(is_id(i) for i in ids[:10]) and not is_id("not-an-id")
