"""Online reads across a compatible schema change: a feature added after values were
materialized, read by a process that knew the old definition, a process started after the
change, and a running feature server, before and after the next materialization, on both stores."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from test_feature_server import call, serving

NOW = datetime.now(timezone.utc)
BEFORE = FeatureTable(name="scores", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts",
                      features=[Feature(name="score", dtype="int"), Feature(name="label", dtype="string")])
# the added feature sits between the others, and `score` is widened to a double
AFTER = BEFORE.with_(features=[Feature(name="score", dtype="double"), Feature(name="weight", dtype="double"),
                               Feature(name="label", dtype="string")])
KEYS = [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 3}]


def _other_process(store: FeatureStore) -> FeatureStore:
    """Another FeatureStore of the same root and settings: its own reader, cache and catalog view."""
    return FeatureStore(spark=store.spark, settings=store.settings)


def _served(url: str, features: list[str]) -> dict[str, list]:
    status, body = call(url, "/get-online-features", {"features": features, "entities": {"customer_id": [1, 2, 3]}})
    assert status == 200, body
    return {name: column["values"] for name, column in zip(body["metadata"]["feature_names"], body["results"])}


@pytest.mark.slow  # a running feature server
def test_a_feature_added_after_materializing_reads_everywhere_before_and_after_the_next_run(online_store, spark):
    applier = online_store
    applier.apply(BEFORE)
    applier.write("scores", spark.createDataFrame(
        [(1, NOW - timedelta(hours=2), 10, "a"), (2, NOW - timedelta(hours=2), None, "b")],
        "customer_id long, ts timestamp, score int, label string"))
    applier.materialize("scores")
    old = _other_process(applier)
    assert old.get_online_features(["scores:score", "scores:label"], KEYS) == {
        "customer_id": [1, 2, 3], "score": [10, None, None], "label": ["a", "b", None]}
    with serving(_other_process(applier)) as url:
        assert _served(url, ["scores:score"])["score"] == [10, None, None]

        applier.apply(AFTER)  # a new revision of definition version 1
        new = _other_process(applier)
        time.sleep(0.2)  # past the readers' state check interval (100 ms)
        # before the next materialization: the stored values were written by the first revision
        expected = {"customer_id": [1, 2, 3], "score": [10.0, None, None], "weight": [None, None, None],
                    "label": ["a", "b", None]}
        every = ["scores:score", "scores:weight", "scores:label"]
        for reader in (old, new, applier):
            assert reader.get_online_features(every, KEYS) == expected
        assert _served(url, every) == expected

        applier.write("scores", spark.createDataFrame(
            [(1, NOW - timedelta(hours=1), 11.5, 0.5, "a2"), (3, NOW - timedelta(hours=1), 30.0, None, "c")],
            "customer_id long, ts timestamp, score double, weight double, label string"))
        assert applier.materialize("scores").kind == "full"  # a new revision is written whole
        time.sleep(0.2)
        expected = {"customer_id": [1, 2, 3], "score": [11.5, None, 30.0], "weight": [0.5, None, None],
                    "label": ["a2", "b", "c"]}
        for reader in (old, new, applier, _other_process(applier)):
            assert reader.get_online_features(every, KEYS) == expected
            assert type(reader.get_online_features(["scores:score"], KEYS[:1])["score"][0]) is float
        assert _served(url, every) == expected
    # the oracle: a training set built now takes the same rows
    entities = spark.createDataFrame([(k["customer_id"], datetime.now(timezone.utc)) for k in KEYS],
                                     "customer_id long, ts timestamp")
    built = sorted(applier.create_training_set(entities, every).to_arrow().to_pylist(),
                   key=lambda row: row["customer_id"])
    for name in ("score", "weight", "label"):
        assert [row[name] for row in built] == expected[name]


def test_a_typo_is_still_an_unknown_feature_after_the_definition_is_read_again(store, spark):
    store.apply(BEFORE)
    store.write("scores", spark.createDataFrame([(1, NOW, 1, "a")], "customer_id long, ts timestamp, score int, label string"))
    store.materialize("scores")
    from fs_spark.errors import FeatureNotFoundError

    for _ in range(2):
        try:
            store.get_online_features(["scores:scroe"], KEYS)
        except FeatureNotFoundError as error:
            assert "scroe" in str(error) and "score" in str(error)
        else:
            raise AssertionError("a feature the table does not have was served")


def test_a_tag_applied_while_a_reader_runs_is_decided_on_within_the_definition_check(spark, tmp_path):
    """A revision tagging `label` pii, which the policy denies to analysts, reaches a reader that
    is already serving them within `definition_check_seconds`, with no materialization between:
    access follows the latest definition, not the one the reader started with."""
    from fs_spark.config import CacheSettings, GovernanceSettings, OnlineSettings, Settings, StoreSettings
    from fs_spark.errors import AccessDeniedError

    (tmp_path / "policy.yaml").write_text("""
principals:
  tester: {roles: [admin]}
  alice: {roles: [analyst]}
rules:
  - {name: admins, roles: [admin], actions: [read, write, admin]}
  - {name: analysts_read, roles: [analyst], actions: [read]}
  - {name: no_pii_for_analysts, roles: [analyst], actions: [read], tags: [pii], effect: deny}
""")

    def open_as(user, check_seconds=1.0):
        return FeatureStore(spark=spark, settings=Settings(
            store=StoreSettings(root=str(tmp_path / "store"), user=user),
            governance=GovernanceSettings(policy_file=str(tmp_path / "policy.yaml")),
            online=OnlineSettings(cache=CacheSettings(definition_check_seconds=check_seconds))))

    admin = open_as("tester")
    admin.apply(BEFORE)
    admin.write("scores", spark.createDataFrame([(1, NOW, 1, "a")], "customer_id long, ts timestamp, score int, label string"))
    admin.materialize("scores")
    alice, slow = open_as("alice"), open_as("alice", check_seconds=3600.0)
    for reader in (alice, slow):
        assert reader.get_online_features(["scores:label"], KEYS[:1]) == {"customer_id": [1], "label": ["a"]}
    tagged = [f.model_copy(update={"tags": ("pii",)}) if f.name == "label" else f for f in BEFORE.features]
    admin.apply(BEFORE.with_(features=tagged))
    time.sleep(1.1)
    with pytest.raises(AccessDeniedError, match="no_pii_for_analysts"):
        alice.get_online_features(["scores:label"], KEYS[:1])
    assert alice.get_online_features(["scores:score"], KEYS[:1]) == {"customer_id": [1], "score": [1]}
    # the control: a reader told to look again only hourly still serves it (the setting is what acts)
    assert slow.get_online_features(["scores:label"], KEYS[:1]) == {"customer_id": [1], "label": ["a"]}
