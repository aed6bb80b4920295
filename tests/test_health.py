"""Health: each check's figure against an independent reading of the catalog, each status turned
by its own cause (a stale online table, a failed write, incomplete lineage, a dangling link, an
unreadable root), and `fs-spark health`'s exit status 0/1/2."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from datetime import UTC, datetime

import pytest
from conftest import ACTIVITY_SCHEMA, activity_rows, activity_table

from fs_spark import FeatureLookup, ValidationError
from fs_spark.catalog.schema import DEPLOYMENTS
from fs_spark.cli.app import main, run
from fs_spark.config import HealthThresholds, ObservabilitySettings, Settings, StoreSettings
from fs_spark.observability.health import check_health
from fs_spark.store import FeatureStore


def lineage_oracle(catalog) -> float:
    """The share of model versions and deployments that read, among their feature versions, one
    with a source and one with a transformation: read off the catalog rows, not the graph."""
    versions = {r["version_id"]: r for r in catalog.rows("feature_versions")}

    def complete(version_ids) -> bool:
        rows = [versions[v] for v in version_ids]
        return any(r["source_description"] for r in rows) and any(r["transformation_fingerprint"] for r in rows)

    models = {r["model_version_id"]: complete(r["feature_version_ids"]) for r in catalog.rows("model_versions")}
    judged = list(models.values()) + [models[r["model_version_id"]] for r in catalog.rows("deployments")]
    return sum(judged) / len(judged)


def test_the_lineage_oracle_on_a_hand_worked_catalog():
    class Catalog:
        tables = {
            "feature_versions": [
                {"version_id": "a", "source_description": "s3://x", "transformation_fingerprint": None},
                {"version_id": "b", "source_description": None, "transformation_fingerprint": "sha256:1"},
            ],
            "model_versions": [{"model_version_id": "m1", "feature_version_ids": ["a", "b"]},
                               {"model_version_id": "m2", "feature_version_ids": ["a"]}],
            "deployments": [{"model_version_id": "m2"}],
        }

        def rows(self, name):
            return self.tables[name]

    assert lineage_oracle(Catalog()) == pytest.approx(1 / 3)


@pytest.mark.slow
def test_a_healthy_store_reports_each_figure(experiment):
    report = check_health(experiment.store)
    assert report.status == "ok" and report.exit_code == 0, report.to_text()
    lineage = report.check("lineage")
    assert lineage.figure == lineage_oracle(experiment.store.catalog) == 1.0
    assert lineage.detail["judged"] == 4 and lineage.detail["dangling_links"] == []
    storage = report.check("storage")
    assert storage.detail["tables"] == 2 and storage.detail["write_probe"] is True
    assert list((Path(experiment.store.root) / "_health").glob("*")) == []  # the probe is gone
    assert report.check("online_store").detail["note"] == "nothing materialized"
    assert report.check("replication").figure is None
    assert set(report.to_dict()["checks"]) == {"storage", "online_store", "lineage", "replication", "last_failed_job"}


def _store(spark, root, **health) -> FeatureStore:
    settings = Settings(store=StoreSettings(root=str(root), user="tester"),
                        observability=ObservabilitySettings(health=HealthThresholds(**health)))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(activity_table())
    return store


@pytest.mark.slow
def test_an_online_table_behind_its_latest_version_is_stale(spark, tmp_path):
    store = _store(spark, tmp_path / "store", online_staleness_seconds=0.001)
    store.write("customer_activity", spark.createDataFrame(activity_rows(5), ACTIVITY_SCHEMA))
    store.materialize("customer_activity")
    assert check_health(store).check("online_store").figure == 0
    newer = store.write("customer_activity", spark.createDataFrame(activity_rows(5, start=5), ACTIVITY_SCHEMA))
    later = store.write("customer_activity", spark.createDataFrame(activity_rows(5, start=10), ACTIVITY_SCHEMA))
    now = datetime.now(UTC)
    online = check_health(store).check("online_store")
    waited = (now - newer.committed_at).total_seconds()  # the oldest version not served yet
    assert waited - 0.001 <= online.figure <= waited + 5  # rounded to the millisecond
    table = online.detail["tables"]["customer_activity"]
    assert (table["serves_version"], table["latest_servable"]) == (1, later.version_number) == (1, 3)
    assert online.status == "degraded" and online.threshold == 0.001
    store.materialize("customer_activity")
    assert check_health(store).check("online_store").figure == 0


def test_a_failed_write_degrades_the_store_until_it_is_old(spark, tmp_path):
    store = _store(spark, tmp_path / "store")
    bad = activity_rows(3)
    bad[1] = (*bad[1][:5], -5, "new")
    with pytest.raises(ValidationError):
        store.write("customer_activity", spark.createDataFrame(bad, ACTIVITY_SCHEMA))
    report = check_health(store)
    failed = report.check("last_failed_job")
    assert (report.status, report.exit_code, failed.status) == ("degraded", 1, "degraded")
    assert (failed.detail["operation"], failed.detail["table"], failed.detail["error_class"]) == (
        "ingest", "customer_activity", "ValidationError")
    assert 0 <= failed.figure < 60

    out = io.StringIO()
    assert run(["--root", store.root, "health"], out=out) == 1
    assert "degraded last_failed_job" in " ".join(out.getvalue().split())
    out = io.StringIO()
    assert run(["--root", store.root, "operations", "--failed"], out=out) == 0
    assert "ingest" in out.getvalue() and "customer_activity" in out.getvalue()
    assert "FAILED ValidationError" in out.getvalue()
    lenient = _store(spark, tmp_path / "store", failed_job_window_hours=1e-6)
    assert check_health(lenient).check("last_failed_job").status == "ok"


def test_the_newest_failure_is_reported_even_one_with_no_message(spark, tmp_path):
    store = _store(spark, tmp_path / "store")
    with pytest.raises(ValueError), store.metrics.measure("drift", "customer_activity"):
        raise ValueError("first line\nsecond line")
    with store.metrics.measure("materialize", "customer_activity") as done:
        done.add(rows=7)
    with pytest.raises(RuntimeError), store.metrics.measure("ingest", "customer_activity"):
        raise RuntimeError()  # str() of it is ""
    for _ in range(3):
        with store.metrics.measure("reconcile"):
            pass
    failed = check_health(store).check("last_failed_job")
    assert failed.status == "degraded"
    assert (failed.detail["operation"], failed.detail["error_class"], failed.detail["error"]) == (
        "ingest", "RuntimeError", "")

    out = io.StringIO()
    assert run(["--root", store.root, "operations", "--failed", "--last", "2"], out=out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["drift", "ingest"]  # the newest two, oldest first
    assert [line.split()[-1] for line in lines] == ["ValueError", "RuntimeError"]
    out = io.StringIO()
    assert run(["--root", store.root, "operations", "--last", "4"], out=out) == 0
    assert [line.split()[2] for line in out.getvalue().splitlines()] == ["ingest", "reconcile", "reconcile", "reconcile"]


def test_first_line_of_an_error_with_no_message_or_many_lines():
    from fs_spark.errors import first_line

    assert first_line(RuntimeError()) == "" and first_line("") == ""
    assert first_line(ValueError("\n  why it failed  \nthe trace")) == "why it failed"
    assert first_line(ValueError("x" * 500)) == "x" * 300 and first_line(ValueError("abc"), limit=2) == "ab"


def test_incomplete_lineage_and_a_dangling_deployment_degrade_lineage(spark, tmp_path):
    store = _store(spark, tmp_path / "store")
    store.write("customer_activity", spark.createDataFrame(activity_rows(6), ACTIVITY_SCHEMA))  # no source, no transformation
    entities = spark.createDataFrame([(1, activity_rows(1, start=1)[0][1])], "customer_id long, ts timestamp")
    lookup = FeatureLookup(table_name="customer_activity", feature_names=["visits"], lookup_key="customer_id",
                           timestamp_lookup_key="ts")
    with store.start_run("health", name="m") as run_:
        built = run_.create_training_set(entities, [lookup])
        model = run_.register_model("untraced", training_sets=[built])
    lineage = check_health(store).check("lineage")
    assert lineage.figure == lineage_oracle(store.catalog) == 0.0
    assert lineage.status == "degraded" and lineage.detail["incomplete"] == [f"model_version:{model.model_version_id}"]
    assert lineage.detail["dangling_links"] == []

    row = {name: None for name, _, _ in DEPLOYMENTS.columns}
    row.update(deployment_id="dep-1", model_version_id="no-such-model-version", feature_version_ids=[],
               at=datetime.now(UTC))
    store.catalog.append(DEPLOYMENTS, [row])
    lineage = check_health(store).check("lineage")
    assert lineage.detail["dangling_links"] == ["deployment:dep-1 -> model_version:no-such-model-version"]


def test_an_unreadable_root_is_down(spark, tmp_path):
    store = _store(spark, tmp_path / "store")
    shutil.rmtree(tmp_path / "store")
    (tmp_path / "store").write_text("not a folder")  # the root is a file now: nothing under it reads
    report = check_health(store)
    assert (report.status, report.exit_code) == ("down", 2)
    assert [c.name for c in report.checks] == ["storage"] and "error" in report.check("storage").detail
    assert main(["--root", str(tmp_path / "missing"), "health"]) == 2
