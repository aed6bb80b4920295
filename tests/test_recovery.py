"""Quarantine refuses reads and builds, recall lists what a version reached, rollback makes a good
version current again without deleting anything."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from experiment_scenario import SPEND, T0
from fs_spark import RunRef, VersionQuarantinedError
from fs_spark.cli import run
from fs_spark.errors import DriftBaselineError, RollbackError

pytestmark = pytest.mark.slow  # quarantine, recall and rollback end to end

ROWS = "customer_id long, ts timestamp, amount double"
DAY = timedelta(days=1)


@pytest.fixture
def spend(store, spark):
    """Three writes: a good one, another good one, then a bad one (amounts wrong by 1000)."""
    store.apply(SPEND)
    write = lambda rows: store.write("spend", spark.createDataFrame(rows, ROWS))  # noqa: E731
    good = [write([(1, T0, 10.0), (2, T0, 20.0)]), write([(1, T0 + DAY, 11.0)])]
    bad = write([(1, T0 + 2 * DAY, 11000.0), (3, T0 + 2 * DAY, 3000.0)])
    return store, good, bad


def _amounts(frame):
    return sorted((r["customer_id"], r["ts"].date().day, r["amount"]) for r in frame.collect())


def test_reads_and_builds_refuse_quarantined_versions_unless_told(spend, spark):
    store, good, bad = spend
    store.quarantine_version("spend", bad.version_id, "amounts in cents")
    with pytest.raises(VersionQuarantinedError, match="amounts in cents"):
        store.read("spend")
    assert len(store.read("spend", allow_quarantined=True).collect()) == 5
    assert len(store.read("spend", version=2).collect()) == 3  # earlier versions do not hold it
    entities = spark.createDataFrame([(1, T0 + 3 * DAY)], "customer_id long, ts timestamp")
    with pytest.raises(VersionQuarantinedError):
        store.create_training_set(entities, ["spend:amount"])
    ts = store.create_training_set(entities, ["spend:amount"], allow_quarantined=True)
    assert ts.load_df().first()["amount"] == 11000.0


def test_recall_lists_training_sets_models_and_live_deployments(spend, spark):
    store, good, bad = spend
    entities = spark.createDataFrame([(1, T0 + 3 * DAY)], "customer_id long, ts timestamp")
    before = store.create_training_set(entities, ["spend:amount"], name="x")
    model = store.register_model("churn", training_sets=[before], run=RunRef())
    store.deploy(model.model_version_id, "prod")
    store.deploy(model.model_version_id, "staging")
    store.models.retire("staging")
    recalled = store.recall("spend", bad.version_id)
    assert recalled.training_set_ids == [before.id] and recalled.model_version_ids == [model.model_version_id]
    assert sorted(d.environment for d in recalled.deployments) == ["prod", "staging", "staging"]
    assert [d.environment for d in recalled.live] == ["prod"]
    # version 1's row for customer 1 was superseded (by versions 2 and 3) before the build: nothing picked it
    assert store.recall("spend", good[0].version_id).training_set_ids == []
    out = io.StringIO()
    run(["--root", store.root, "quarantine", "spend", "3", "--reason", "cents"], out=out)
    assert "quarantined" in out.getvalue() and "prod: churn v1 (LIVE)" in out.getvalue()


def test_rollback_makes_the_good_rows_current_and_later_writes_build_on_them(spend, spark):
    store, good, bad = spend
    made = store.rollback("spend", 2, reason="bad amounts")
    assert (made.version_number, made.mode, made.restores_version, made.row_count) == (4, "rollback", 2, 0)
    assert _amounts(store.read("spend")) == [(1, 1, 10.0), (1, 2, 11.0), (2, 1, 20.0)]
    assert _amounts(store.read("spend", version=3)) == _amounts(store.read("spend", version=3))  # time travel intact
    assert len(store.read("spend", version=bad.version_id).collect()) == 5  # nothing deleted
    entities = spark.createDataFrame([(1, T0 + 3 * DAY), (3, T0 + 3 * DAY)], "customer_id long, ts timestamp")
    ts = store.create_training_set(entities, ["spend:amount"])
    assert [(r["customer_id"], r["amount"]) for r in ts.load_df().collect()] == [(1, 11.0), (3, None)]
    assert ts.lookups[0].version_number == 4 and ts.lookups[0].excluded_versions == (3,)
    later = store.write("spend", spark.createDataFrame([(2, T0 + 3 * DAY, 21.0)], ROWS))
    assert later.version_number == 5
    assert _amounts(store.read("spend")) == [(1, 1, 10.0), (1, 2, 11.0), (2, 1, 20.0), (2, 4, 21.0)]
    # a training set built on the rollback replays exactly, after the later write
    assert store.load_training_set(ts.id).manifest.content_digest == ts.manifest.content_digest
    graph = store.lineage.graph()
    assert any(e.relation == "restored" and e.dst == f"feature_version:{made.version_id}" for e in graph.edges)
    assert f"feature_version:{made.version_id}" not in graph.downstream(bad.version_id).nodes
    report = store.quality.check_drift("spend")  # version 5 against version 2, the last write it holds
    assert report.baseline == f"version:{good[1].version_id}"


def test_bad_rollbacks_are_refused_by_name(spend):
    store, good, bad = spend
    with pytest.raises(RollbackError, match="already the latest"):
        store.rollback("spend", 3, reason="x")
    store.quarantine_version("spend", good[1].version_id, "suspect")
    with pytest.raises(VersionQuarantinedError):
        store.rollback("spend", 2, reason="x")
    made = store.rollback("spend", 1, reason="back to the first")
    with pytest.raises(DriftBaselineError, match="is a rollback"):
        store.quality.check_drift("spend", version=made.version_id)
    out = io.StringIO()
    assert run(["--root", store.root, "release", "spend", good[1].version_id], out=out) == 0
    assert run(["--root", store.root, "rollback", "spend", "3", "--reason", "undo"], out=out) == 0
    assert "holds the rows of version 3 again" in out.getvalue()
