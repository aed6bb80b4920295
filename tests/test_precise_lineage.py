"""Lineage names the feature versions whose rows a training set's join picked, not every version
whose rows the table held: recall, upstream, downstream and diff follow those."""

from __future__ import annotations

import pytest

import random
from datetime import datetime, timedelta, timezone

from fs_spark import Entity, Feature, FeatureTable

pytestmark = pytest.mark.slow  # the lineage graph end to end

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SPEND = FeatureTable(
    name="spend",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="amount", dtype="double")],
)
ROWS = "customer_id long, ts timestamp, amount double"
ENTITIES = "customer_id long, ts timestamp"


def test_only_versions_whose_rows_were_picked_are_upstream(store, spark):
    store.apply(SPEND)
    v1 = store.write("spend", spark.createDataFrame([(1, T0, 1.0)], ROWS))
    v2 = store.write("spend", spark.createDataFrame([(2, T0, 2.0)], ROWS))
    v3 = store.write("spend", spark.createDataFrame([(1, T0 + DAY, 3.0)], ROWS))  # supersedes v1's row for customer 1
    both = store.create_training_set(
        spark.createDataFrame([(1, T0 + 2 * DAY), (2, T0 + 2 * DAY), (9, T0)], ENTITIES), ["spend:amount"])
    assert [r.amount for r in both.load_df().collect()] == [3.0, 2.0, None]
    assert both.manifest.supplying_version_ids == sorted([v2.version_id, v3.version_id])
    assert both.lookups[0].supplied_by == (v2.version_id, v3.version_id)
    assert both.manifest.feature_version_ids == [v3.version_id]  # what it read is kept too

    assert store.recall("spend", v1.version_id).training_set_ids == []  # no build picked its rows
    assert store.recall("spend", v2.version_id).training_set_ids == [both.id]
    assert store.lineage.downstream(v1.version_id).ids("training_set") == set()
    up = store.lineage.upstream(both.id)
    assert up.ids("feature_version") == {v2.version_id, v3.version_id}

    only_two = store.create_training_set(spark.createDataFrame([(2, T0 + 2 * DAY)], ENTITIES), ["spend:amount"])
    assert only_two.manifest.supplying_version_ids == [v2.version_id]
    first = store.register_model("churn", training_sets=[both])
    second = store.register_model("churn", training_sets=[only_two])
    changed = store.lineage.diff(first.model_version_id, second.model_version_id)
    assert changed.tables == {"spend": ([2, 3], [2])}
    # the history between versions is still drawn, but it is not walked
    assert any(e.relation == "included_in" for e in store.lineage.graph().edges)


@pytest.mark.slow
def test_suppliers_match_a_brute_force_pick_over_random_histories(store, spark):
    """The oracle picks, per entity row, the latest row at or before its time (ties to the later
    write) by brute force; the union of their versions must be what the manifest records."""
    store.apply(SPEND)
    rng = random.Random(7)
    history: list[tuple[int, datetime, float, int]] = []
    for number in range(1, 7):
        rows = [(rng.randrange(6), T0 + timedelta(hours=rng.randrange(48)), float(number)) for _ in range(5)]
        rows = list({(k, t): (k, t, a) for k, t, a in rows}.values())  # one row per key and time in a batch
        store.write("spend", spark.createDataFrame(rows, ROWS))
        history += [(k, t, a, number) for k, t, a in rows]
    entities = [(rng.randrange(7), T0 + timedelta(hours=rng.randrange(60))) for _ in range(30)]
    built = store.create_training_set(spark.createDataFrame(entities, ENTITIES), ["spend:amount"])

    picked = set()
    for key, at in entities:
        candidates = [h for h in history if h[0] == key and h[1] <= at]
        if candidates:
            picked.add(max(candidates, key=lambda h: (h[1], h[3]))[3])
    assert picked, "the oracle itself must pick something"
    ids = {v.version_number: v.version_id for v in store.versions("spend")}
    assert built.manifest.supplying_version_ids == sorted(ids[n] for n in picked)
    unpicked = set(ids) - picked
    for number in unpicked:
        assert store.recall("spend", number).training_set_ids == []
