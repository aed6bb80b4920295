"""Training sets rebuilt from their ID alone, and the retention guard that keeps that possible."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable

from fs_spark import (
    Feature,
    ReplayMismatchError,
    RetentionGuardError,
    TrainingSetInputExpiredError,
    TrainingSetNotFoundError,
    new_id,
)
from fs_spark.digest import frame_digest
from conftest import short_retention
from test_training_sets import DAY, ENTITY_SCHEMA, SPEND, SPEND_SCHEMA, T0


@pytest.fixture
def built(store, spark):
    """A training set over two writes of `spend`, and the entity frame it was built from."""
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 1.0, "a"), (2, T0, 2.0, "b")], SPEND_SCHEMA))
    store.write("spend", spark.createDataFrame([(1, T0 + DAY, 3.0, "c")], SPEND_SCHEMA))
    ents = spark.createDataFrame([(1, T0 + 2 * DAY, True), (2, T0 + 2 * DAY, False), (3, T0, True)], ENTITY_SCHEMA)
    return store.create_training_set(ents, ["spend:amount", "spend:tier"], label="churned", name="churn")


def test_manifest_records_inputs_digests_and_versions(store, built, spark):
    manifest = store.training_sets()[-1]
    assert manifest.training_set_id == built.id and manifest.name == "churn"
    assert manifest.feature_version_ids == [store.version("spend", 2).version_id]
    assert manifest.lookups[0].delta_version == store.version("spend", 2).delta_version
    assert manifest.row_count == manifest.entity_row_count == 3
    assert manifest.content_digest == frame_digest(built.load_df(with_row_number=True))
    assert manifest.fs_spark_version and manifest.spark_version == spark.version
    stored = store.training_set(built.id).load_df()
    assert stored.columns == ["customer_id", "ts", "amount", "tier", "churned"]
    assert [tuple(r) for r in stored.drop("ts").collect()] == [(1, 3.0, "c", True), (2, 2.0, "b", False), (3, None, None, True)]


@pytest.mark.slow
def test_rebuild_is_identical_after_later_writes_and_definition_changes(store, built, spark):
    original = [tuple(r) for r in built.load_df().collect()]
    store.write("spend", spark.createDataFrame([(1, T0 + DAY, 9.0, "late"), (2, T0, 7.0, "tie")], SPEND_SCHEMA))
    store.apply(SPEND.with_(features=[*SPEND.features, Feature(name="visits", dtype="long")]))  # additive
    store.apply(SPEND.with_(features=[SPEND.features[0]], definition_version=2))  # breaking: new version
    rebuilt = store.load_training_set(built.id)
    assert [tuple(r) for r in rebuilt.load_df().collect()] == original
    assert frame_digest(rebuilt.load_df(with_row_number=True)) == built.manifest.content_digest
    fresh = store.create_training_set(
        spark.createDataFrame([(1, T0 + 2 * DAY, True)], ENTITY_SCHEMA), ["spend:amount"])
    assert fresh.load_df().first()["amount"] is None  # definition version 2 has no rows yet


@pytest.mark.slow
def test_rebuild_that_differs_from_the_manifest_is_an_error(store, built, monkeypatch):
    recorded = built.manifest.model_copy(update={"content_digest": "sha256:" + "0" * 64})
    monkeypatch.setattr(store._training, "manifest", lambda _id: recorded)
    with pytest.raises(ReplayMismatchError, match=built.id):
        store.load_training_set(built.id)
    assert store.load_training_set(built.id, verify=False).manifest is recorded


def test_unknown_training_set_is_a_clear_error(store):
    with pytest.raises(TrainingSetNotFoundError, match="training-sets"):
        store.load_training_set(new_id())


@pytest.mark.slow
def test_vacuum_refuses_to_delete_files_a_training_set_needs(store, built, spark):
    path = store.paths.table("spend", 1)
    DeltaTable.forPath(spark, path).optimize().executeCompaction()  # old files leave the current state
    with short_retention(spark):
        with pytest.raises(RetentionGuardError, match=built.id) as refused:
            store.vacuum("spend", retention_hours=0)
        assert refused.value.holders == [built.id]
        assert store.load_training_set(built.id).manifest.row_count == 3  # still rebuilds
        result = store.vacuum("spend", retention_hours=0, force=True)
    assert result.expired == (built.id,) and result.deleted_files > 0
    with pytest.raises(TrainingSetInputExpiredError, match=f"{built.id}.*'spend'.*missing"):
        store.load_training_set(built.id)
    assert store.training_set(built.id).load_df().count() == 3  # the stored rows remain readable


@pytest.mark.slow
def test_vacuum_without_training_sets_runs(store, spark):
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 1.0, "a")], SPEND_SCHEMA))
    with short_retention(spark):
        assert store.vacuum("spend", retention_hours=0).deleted_files == 0
