"""Deprecation schedules, the retention guard's list of holders, and the quality scoreboard."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from delta.tables import DeltaTable

from conftest import ACTIVITY_SCHEMA, activity_rows, activity_table, short_retention
from experiment_scenario import SPEND, T0
from fs_spark import FeatureStore, RetentionGuardError, load_settings
from fs_spark.catalog.schema import MAINTENANCE_EVENTS
from fs_spark.cli import run
from fs_spark.errors import DeprecatedFeatureError, VersionExpiredError
from fs_spark.governance.deprecation import DeprecatedFeatureWarning

pytestmark = pytest.mark.slow  # deprecation, retention and quality end to end

ROWS = "customer_id long, ts timestamp, amount double"
NOW = datetime.now(timezone.utc)


@pytest.fixture
def spend(store, spark):
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 1.0), (2, T0, 2.0)], ROWS))
    return spark.createDataFrame([(1, T0 + timedelta(days=1))], "customer_id long, ts timestamp")


def test_announced_deprecation_warns_with_the_replacement(store, spend):
    store.apply(SPEND.with_(name="spend_v2"))  # a replacement must exist
    store.deprecate("spend", "amount", announce=NOW - timedelta(days=1), end=NOW + timedelta(days=30),
                    replacement="spend_v2:amount", reason="currency fix")
    with pytest.warns(DeprecatedFeatureWarning, match=r"spend.amount is deprecated \(currency fix\).*use spend_v2:amount"):
        ts = store.create_training_set(spend, ["spend:amount"])
    assert ts.load_df().first()["amount"] == 1.0


def test_ended_deprecation_refuses_unless_the_run_accepts_it(store, spend):
    store.deprecate("spend", announce=NOW - timedelta(days=60), end=NOW - timedelta(days=1), reason="replaced")
    with pytest.raises(DeprecatedFeatureError, match="table spend was retired on .*accept_deprecated=True"):
        store.create_training_set(spend, ["spend:amount"])
    assert store.training_sets() == []  # nothing built
    with store.start_run("legacy", accept_deprecated=True) as run, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ts = run.create_training_set(spend, ["spend:amount"])
    assert ts.manifest.run_id == run.id and any(issubclass(w.category, DeprecatedFeatureWarning) for w in caught)


def test_future_and_withdrawn_deprecations_are_silent(store, spend):
    store.deprecate("spend", "amount", announce=NOW + timedelta(days=5), end=NOW + timedelta(days=9), reason="later")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.create_training_set(spend, ["spend:amount"])
    store.deprecate("spend", "amount", announce=NOW - timedelta(days=9), end=NOW - timedelta(days=1),
                    replacement=None, reason="oops", withdrawn=True)
    assert store.deprecations() == []
    store.create_training_set(spend, ["spend:amount"])
    with pytest.raises(KeyError):
        store.deprecate("spend", "nope", announce=NOW, end=NOW, reason="x")
    with pytest.raises(ValueError, match="is before announce"):
        store.deprecate("spend", announce=NOW, end=NOW - timedelta(days=1), reason="x")


def test_deprecate_cli_schedules_and_lists(store, spend):
    out = io.StringIO()
    run(["--root", store.root, "deprecate", "spend", "--feature", "amount", "--announce", "2020-01-01T00:00:00+00:00",
         "--end", "2099-01-01T00:00:00+00:00", "--reason", "moving"], out=out)
    run(["--root", store.root, "deprecations"], out=out)
    assert "spend.amount: deprecated from 2020-01-01" in out.getvalue() and "reason=moving" in out.getvalue()


@pytest.mark.slow
def test_vacuum_guard_lists_the_models_and_deployments_that_hold_a_version(store, spend, spark):
    ts = store.create_training_set(spend, ["spend:amount"])
    model = store.register_model("churn", training_sets=[ts])
    deployment = store.deploy(model.model_version_id, "prod")
    store.write("spend", spark.createDataFrame([(3, T0, 3.0)], ROWS))
    DeltaTable.forPath(spark, ts.lookups[0].storage_path).optimize().executeCompaction()
    with short_retention(spark), pytest.raises(RetentionGuardError) as refused:
        store.vacuum("spend", retention_hours=0)
    assert refused.value.holders == [ts.id] and refused.value.models == ["churn v1"]
    assert refused.value.deployments == [f"prod:{deployment.deployment_id}"]
    assert "held by model version(s) churn v1 and deployment(s) prod:" in str(refused.value)


@pytest.mark.slow
def test_scheduled_retention_deletes_what_nothing_holds_and_names_what_holds_the_rest(store, spend, spark, tmp_path):
    ts = store.create_training_set(spend, ["spend:amount"])
    model = store.register_model("churn", training_sets=[ts])
    deployment = store.deploy(model.model_version_id, "prod")
    store.write("spend", spark.createDataFrame([(3, T0, 3.0)], ROWS))
    store.write("spend", spark.createDataFrame([(4, T0, 4.0)], ROWS))
    path = ts.lookups[0].storage_path
    files_at = lambda v: set(spark.read.format("delta").option("versionAsOf", v).load(path).inputFiles())  # noqa: E731
    held = files_at(ts.lookups[0].delta_version)
    unheld = files_at(store.version("spend").delta_version) - held
    DeltaTable.forPath(spark, path).optimize().executeCompaction()  # every write's files leave the current state
    conf = tmp_path / "fs_spark.yaml"
    conf.write_text("retention:\n  hours: 168\n  tables: {'sp*': 0}\n")
    scheduled = FeatureStore(store.root, spark=spark, settings=load_settings(conf), user="scheduler")
    with short_retention(spark):
        [result] = scheduled.run_retention()
        out = io.StringIO()
        assert run(["--root", store.root, "--conf", str(conf), "vacuum", "--all"], out=out) == 0
    assert (result.deleted_files, result.kept_files) == (len(unheld), len(held)) and result.deleted_files == 2
    assert result.held_by == (f"training set {ts.id}", "model version churn v1", f"deployment prod:{deployment.deployment_id}")
    exists = lambda uri: Path(uri.removeprefix("file:")).exists()  # noqa: E731
    assert all(map(exists, held)) and not any(map(exists, unheld))
    assert store.load_training_set(ts.id).manifest.row_count == 1  # rebuilt, digest checked
    assert sorted(r["customer_id"] for r in store.read("spend", version=1).collect()) == [1, 2]  # held: still readable
    with pytest.raises(VersionExpiredError, match="spend.*data file"):
        store.read("spend", version=2)  # removed by the schedule
    assert store.read("spend").count() == 4  # the compacted latest state
    assert out.getvalue() == f"spend: 0 file(s) deleted\n  1 file(s) kept, held by: {', '.join(result.held_by)}\n"
    [event, by_cli] = [r for r in store.catalog.rows(MAINTENANCE_EVENTS.name) if r["table_name"] == "spend"]
    assert by_cli["deleted_files"] == 0  # the CLI's pass came second and found nothing more
    assert (event["reason"], event["user"], event["forced"], event["deleted_files"]) == ("scheduled retention", "scheduler", False, 2)


@pytest.mark.slow
def test_retention_job_runs_the_pass_with_the_default_week(store, spend, capsys):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
    import retention

    assert retention.main(["--root", store.root, "--reason", "weekly"]) == 0
    assert json.loads(capsys.readouterr().out) == {"table": "spend", "deleted_files": 0, "kept_files": 0, "held_by": []}
    assert [r["reason"] for r in store.catalog.rows(MAINTENANCE_EVENTS.name)] == ["weekly"]


def test_quality_scoreboard_per_table_and_version(store, spark):
    store.apply(activity_table())
    good = activity_rows(4)
    bad = activity_rows(2, start=10)
    bad[0] = (*bad[0][:5], -5, "new")  # visits below its minimum
    store.write("customer_activity", spark.createDataFrame(good, ACTIVITY_SCHEMA))
    second = store.write("customer_activity", spark.createDataFrame(bad + activity_rows(3, start=20), ACTIVITY_SCHEMA),
                         mode="quarantine")
    store.quarantine_version("customer_activity", second.version_id, "suspect")
    board = store.quality.scoreboard("customer_activity")
    first_row, second_row = board.rows
    assert (first_row.status, first_row.rows, first_row.quarantined_rows) == ("ok", 4, 0)
    assert (second_row.status, second_row.rows, second_row.quarantined_rows) == ("quarantined", 4, 1)
    assert second_row.rule_failures == "visits:range[0.0, 1000.0]=1"
    frame = board.frame(spark)
    assert frame.where("status = 'quarantined'").select("version_number").first()[0] == 2
    out = io.StringIO()
    run(["--root", store.root, "quality"], out=out)
    assert "quarantined" in out.getvalue() and "visits:range[0.0, 1000.0]=1" in out.getvalue()


def test_breaking_change_is_refused_with_the_models_and_deployments_it_would_break(store, spend):
    from fs_spark import BreakingChangeError, Feature

    ts = store.create_training_set(spend, ["spend:amount"])
    model = store.register_model("churn", training_sets=[ts])
    store.deploy(model.model_version_id, "prod")
    narrowed = SPEND.with_(features=[Feature(name="amount", dtype="int")])
    [item] = store.plan(narrowed)
    assert item.action == "refused" and item.impact == [
        f"model churn v1 ({model.model_version_id})", "deployment prod: churn v1 (live)"]
    assert "read by deployment prod: churn v1 (live)" in str(item)
    with pytest.raises(BreakingChangeError, match=r"change_type amount: double -> int.*It would break model churn v1"):
        store.apply(narrowed)
    assert store.get_table("spend").feature("amount").dtype.value == "double"  # nothing applied
    out = io.StringIO()
    from fs_spark import dump_definitions

    path = store.root + "/../narrowed.yaml"
    with open(path, "w") as handle:
        handle.write(dump_definitions([narrowed]))
    run(["--root", store.root, "plan", path], out=out)
    assert "! change_type amount: double -> int" in out.getvalue() and "read by model churn v1" in out.getvalue()


def test_evolution_policy_decides_whether_widening_is_a_revision(store):
    from fs_spark import BreakingChangeError, Entity, Feature, FeatureTable

    def counts(policy, dtype):
        return FeatureTable(name=f"counts_{policy}", entity=Entity(name="c", keys={"id": "long"}), event_time="ts",
                            features=[Feature(name="n", dtype=dtype)], evolution=policy)

    store.apply(counts("widening", "int"), counts("additive", "int"))
    [widened] = store.apply(counts("widening", "long"))
    assert widened.action == "update" and widened.changes[0].kind == "widen_type"
    with pytest.raises(BreakingChangeError, match=r"int -> long \(evolution: additive\)"):
        store.apply(counts("additive", "long"))
    [added] = store.plan(counts("additive", "int").with_(features=[Feature(name="n", dtype="int"), Feature(name="m", dtype="double")]))
    assert added.action == "update"
    assert store.plan(counts("additive", "long").with_(definition_version=2))[0].action == "new_version"
