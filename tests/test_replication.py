"""Regions: the home region's store copied to a replica in commit order, data before the
catalog rows that name it; writes refused in a replica until it is promoted, and in a home a
forced promotion left behind until it rejoins; tables resident in one region never copied out of it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from conftest import T0
from experiment_scenario import SPEND

from fs_spark import AccessDeniedError, Entity, Feature, FeatureStore, FeatureTable
from fs_spark.catalog.schema import AUDIT_LOG, FEATURE_VERSIONS, VERSION_STATUS
from fs_spark.config import GovernanceSettings, HealthThresholds, ObservabilitySettings, Settings, StoreSettings
from fs_spark.errors import ReplicaWriteError
from fs_spark.observability.health import check_health
from fs_spark.observability.watch import watch

pytestmark = pytest.mark.slow  # two regions, each a store

NAIVE = T0.replace(tzinfo=None)  # how Spark gives back times of a UTC session
ROWS = "customer_id long, ts timestamp, amount double"
KEYS = "customer_id long, ts timestamp"
EU_ONLY = FeatureTable(
    name="eu_health",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="score", dtype="double")],
)
POLICY = """
principals:
  tester: {roles: [admin]}
  analyst: {roles: [analyst]}
rules:
  - {name: everything, roles: [admin], actions: [read, write, deprecate, admin]}
  - {name: reading, roles: [analyst], actions: [read]}
regions:
  eu_health: [eu]
"""


def _rows(frame):
    return sorted(tuple(r) for r in frame.collect())


@pytest.fixture
def regions(spark, tmp_path):
    """Two regions on local folders, `us` home; a store opened in each."""
    (tmp_path / "regions.yaml").write_text(
        f"version: 1\nhome: us\nregions:\n  us: {{root: '{tmp_path / 'us'}'}}\n  eu: {{root: '{tmp_path / 'eu'}'}}\n")
    (tmp_path / "policy.yaml").write_text(POLICY)

    def open_region(name, user="tester", **sections):
        settings = Settings(
            store=StoreSettings(root=str(tmp_path / name), user=user, regions_file=str(tmp_path / "regions.yaml")),
            governance=GovernanceSettings(policy_file=str(tmp_path / "policy.yaml"), region=name), **sections)
        return FeatureStore(spark=spark, settings=settings)

    us = open_region("us")
    us.apply(SPEND, EU_ONLY)
    us.write("spend", spark.createDataFrame([(1, T0, 1.0), (2, T0, 2.0)], ROWS))
    us.write("spend", spark.createDataFrame([(1, T0 + timedelta(days=1), 10.0)], ROWS))
    return us, open_region("eu"), open_region


def test_a_replica_reads_every_version_as_the_home_region_does(regions, spark):
    us, eu, _ = regions
    [result] = us.replicate(to="eu")
    assert result.region == "eu" and result.catalog_rows > 0
    assert {t.table: t.watermark for t in result.tables}["tables/spend/v1"] == us.version("spend").delta_version
    for number in (1, 2):
        assert _rows(eu.read("spend", version=number)) == _rows(us.read("spend", version=number))
    assert [v.version_id for v in eu.versions("spend")] == [v.version_id for v in us.versions("spend")]
    assert eu.version("spend").storage_path.startswith(eu.root)  # read in the replica, not across regions
    # Incremental: one new version is one commit copied, and the lag shows it until then.
    us.write("spend", spark.createDataFrame([(3, T0, 3.0)], ROWS))
    [lag] = [t for t in us.replication_status()["eu"] if t.table == "tables/spend/v1"]
    assert lag.versions_behind == 1 and lag.seconds_behind >= 0
    health = check_health(us).check("replication")  # the lag, as health sees it
    assert health.status == "ok" and health.detail["regions"]["eu"]["versions_behind"] == 1
    us.settings = us.settings.model_copy(
        update={"observability": ObservabilitySettings(health=HealthThresholds(replication_lag_versions=0))})
    assert check_health(us).check("replication").status == "degraded"
    lagging = [a for a in watch(us).alerts if a["metric"] == "replication_lag_versions"]
    assert [(a["table_name"], a["value"], a["threshold"]) for a in lagging] == [("tables/spend/v1", 1.0, 0.0)]
    assert "region eu" in lagging[0]["baseline"]
    [again] = us.replicate(to="eu")
    replicated = [r for r in us.catalog.rows("metrics") if r["operation"] == "replicate"]
    assert [(r["rows"], r["bytes"]) for r in replicated] == [
        (result.catalog_rows, result.bytes), (again.catalog_rows, again.bytes)]
    assert eu.catalog.rows("metrics") == []  # each region keeps its own figures
    assert {t.table: t.commits for t in again.tables}["tables/spend/v1"] == 1
    assert _rows(eu.read("spend")) == _rows(us.read("spend"))
    assert all(t.versions_behind == 0 for t in us.replication_status()["eu"])
    # Nothing is appended twice, and a training set built in the replica equals the home's.
    assert len(eu.catalog.rows(FEATURE_VERSIONS.name)) == len(us.catalog.rows(FEATURE_VERSIONS.name))
    entities = spark.createDataFrame([(1, T0 + timedelta(days=2)), (3, T0 + timedelta(days=2))], KEYS)
    assert _rows(eu.create_training_set(entities, ["spend:amount"]).to_spark_df()) == [
        (1, NAIVE + timedelta(days=2), 10.0), (3, NAIVE + timedelta(days=2), 3.0)]
    # An OPTIMIZE at home is one more commit, copied in order; every version reads the same there.
    [laid_out] = us.optimize("spend")
    [third] = us.replicate(to="eu")
    assert {t.table: t.watermark for t in third.tables}["tables/spend/v1"] == laid_out.delta_version
    for number in (1, 2, 3):
        assert _rows(eu.read("spend", version=number)) == _rows(us.read("spend", version=number))


def test_quarantine_and_rollback_replicate_as_events_in_order(regions, spark):
    us, eu, _ = regions
    us.quarantine_version("spend", 2, "bad feed")
    us.rollback("spend", 1, reason="bad feed")
    us.replicate()
    events = [(r["event_id"], r["status"]) for r in eu.catalog.rows(VERSION_STATUS.name) if r["table_name"] == "spend"]
    assert events == [(r["event_id"], r["status"]) for r in us.catalog.rows(VERSION_STATUS.name)]
    assert [status for _, status in events] == ["quarantined"]
    assert eu.version("spend").restores_version == 1  # the rollback: a version that restores #1
    assert _rows(eu.read("spend")) == _rows(us.read("spend")) == _rows(us.read("spend", version=1))


def test_writes_in_a_replica_are_refused_until_it_is_promoted(regions, spark):
    us, eu, open_region = regions
    us.replicate()
    batch = spark.createDataFrame([(7, T0, 7.0)], ROWS)
    with pytest.raises(ReplicaWriteError, match="'eu' is a replica and 'us' is the home region.*fs-spark promote eu"):
        eu.write("spend", batch)
    for refused in (lambda: eu.apply(SPEND.with_(description="changed in eu")),
                    lambda: eu.quarantine_version("spend", 1, "from eu"),
                    lambda: eu.rollback("spend", 1, reason="from eu"),
                    lambda: eu.backfill("spend", batch, T0, T0 + timedelta(days=1)),
                    lambda: eu.optimize("spend")):
        with pytest.raises(ReplicaWriteError, match="'eu' is a replica"):
            refused()
    assert len(eu.versions("spend")) == 2 and not eu.catalog.rows(VERSION_STATUS.name)  # nothing written
    role = eu.promote("eu")
    assert (role.home, role.epoch) == ("eu", 2)
    with pytest.raises(ReplicaWriteError, match="'us' is a replica and 'eu' is the home"):
        us.write("spend", batch)
    eu.write("spend", batch)
    [back] = eu.replicate(to="us")  # the old home is now a replica of the new one
    assert {t.table: t.commits for t in back.tables}["tables/spend/v1"] == 1
    assert _rows(us.read("spend")) == _rows(eu.read("spend"))
    ids = [r["version_id"] for r in us.catalog.rows(FEATURE_VERSIONS.name)]
    assert len(ids) == len(set(ids)) == 3  # the rows us had already were not appended again


def test_of_two_promotions_from_one_epoch_the_second_is_refused_before_it_writes(tmp_path):
    """`ap` read its role before `eu`'s promotion to epoch 2 and promotes itself to epoch 2 too:
    the claim in the old home refuses it, and no region's record changes."""
    from fs_spark.config import S3Settings
    from fs_spark.errors import PromotionError
    from fs_spark.replication.regions import ROLE, RegionRoles, Regions, Role

    roots = {name: str(tmp_path / name) for name in ("us", "eu", "ap")}
    roles = RegionRoles(Regions.model_validate({"version": 1, "home": "us",
                                                "regions": {n: {"root": r} for n, r in roots.items()}}), S3Settings())
    assert [(r.region, r.home, r.epoch) for r in roles.record()] == [("us", "us", 1), ("eu", "us", 1), ("ap", "us", 1)]
    assert roles.promote("eu") == Role("eu", "eu", 2)
    stale = Role("ap", "us", 1)  # what ap read before eu's promotion
    roles.objects("ap").write(ROLE, stale.to_bytes())
    with pytest.raises(PromotionError, match="region 'eu' was promoted to epoch 2 first"):
        roles.promote("ap")
    assert [roles.role(n) for n in roots] == [Role("us", "eu", 2), Role("eu", "eu", 2), stale]
    # a promotion run again after it stopped half-way finds its own claim and finishes
    roles.objects("us").write(ROLE, Role("us", "us", 1).to_bytes())
    roles.objects("eu").write(ROLE, Role("eu", "us", 1).to_bytes())
    assert roles.promote("eu") == Role("eu", "eu", 2)
    assert [roles.role(n) for n in roots] == [Role("us", "eu", 2), Role("eu", "eu", 2), Role("ap", "eu", 2)]
    # ap, its record up to date, is promoted from eu at epoch 3
    assert roles.promote("ap") == Role("ap", "ap", 3)
    assert {roles.role(n).home for n in roots} == {"ap"}


def test_a_resident_table_stays_in_its_region(regions, spark, tmp_path):
    us, eu, _ = regions
    us.replicate()  # definitions reach eu; eu_health has no data anywhere yet
    scores = spark.createDataFrame([(1, T0, 0.9)], "customer_id long, ts timestamp, score double")
    eu.write("eu_health", scores)  # resident in eu: written there although eu is a replica
    eu.promote("eu")
    [result] = eu.replicate(to="us")
    assert result.skipped_tables == ("eu_health",)
    assert not list((tmp_path / "us" / "tables" / "eu_health").rglob("*.parquet"))  # its schema only, no rows
    assert list((tmp_path / "eu" / "tables" / "eu_health").rglob("*.parquet"))
    assert not [r for r in us.catalog.rows(FEATURE_VERSIONS.name) if r["table_name"] == "eu_health"]
    decisions = [(r["action"], r["object"], r["decision"]) for r in eu.catalog.rows(AUDIT_LOG.name)
                 if r["action"] == "replicate"]
    assert ("replicate", "eu_health->us", "deny") in decisions and ("replicate", "spend->us", "allow") in decisions
    entities = spark.createDataFrame([(1, T0 + timedelta(days=1))], KEYS)
    with pytest.raises(AccessDeniedError, match=r"regions of eu_health: \['eu'\], not 'us'"):
        us.create_training_set(entities, ["eu_health:score"])


def test_command_line_and_job_plan_apply_replicate_and_promote(spark, tmp_path, monkeypatch):
    import io
    import json
    import sys
    from pathlib import Path

    from fs_spark.cli import run

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
    from replicate import main as replicate_job

    regions_file = tmp_path / "regions.yaml"
    regions_file.write_text(
        f"version: 1\nhome: us\nregions:\n  us: {{root: '{tmp_path / 'us'}'}}\n  eu: {{root: '{tmp_path / 'eu'}'}}\n")
    monkeypatch.setenv("FS_SPARK_STORE__REGIONS_FILE", str(regions_file))
    us, eu = str(tmp_path / "us"), str(tmp_path / "eu")

    def cli(*argv):
        out = io.StringIO()
        assert run(list(argv), out=out) == 0, out.getvalue()
        return out.getvalue()

    assert cli("--root", us, "plan", str(regions_file)).splitlines() == [
        f"+ region us at {us}: home", f"+ region eu at {eu}: replica of us"]
    assert "region eu: replica of us (epoch 1)" in cli("--root", us, "apply", str(regions_file))
    assert cli("--root", us, "plan", str(regions_file)).startswith(f"= region us at {us}: home")
    store = FeatureStore(us, spark=spark)
    store.apply(SPEND)
    store.write("spend", spark.createDataFrame([(1, T0, 1.0)], ROWS))
    assert "replica=None behind=2 Delta version(s)" in cli("--root", us, "replication")
    [line] = cli("--root", us, "replicate", "--to", "eu").splitlines()
    assert json.loads(line)["region"] == "eu" and json.loads(line)["catalog_rows"] > 0
    assert "replica=1 behind=0 Delta version(s)" in cli("--root", us, "replication")
    store.write("spend", spark.createDataFrame([(2, T0, 2.0)], ROWS))
    assert replicate_job(["--root", us]) == 0
    assert _rows(FeatureStore(eu, spark=spark).read("spend")) == _rows(store.read("spend"))
    assert replicate_job(["--root", eu]) == 2  # a replica does not replicate
    assert cli("--root", us, "promote", "eu") == "eu is the home region (epoch 2)\n"
    assert "! home: the file says 'us', the regions record 'eu'" in cli("--root", us, "plan", str(regions_file))


def test_a_home_left_behind_by_a_forced_promotion_stops_writing_and_rejoins_as_a_replica(regions, spark, tmp_path):
    from fs_spark.errors import PromotionError, RejoinError, StaleHomeError
    import pyarrow.parquet as pq

    us, eu, _ = regions
    us.replicate()  # eu holds us's two versions
    alone = us.write("spend", spark.createDataFrame([(3, T0 + timedelta(days=2), 30.0)], ROWS))  # never replicated
    (tmp_path / "us").rename(tmp_path / "us_away")  # us cannot be reached: its root is not a folder
    (tmp_path / "us").write_text("unreachable")
    try:
        with pytest.raises(PromotionError, match="the home region 'us' cannot be reached.*--force"):
            eu.promote("eu")
        assert (eu.promote("eu", force=True).home, eu.promote("eu").epoch) == ("eu", 2)
    finally:
        (tmp_path / "us").unlink()
        (tmp_path / "us_away").rename(tmp_path / "us")
    eu.write("spend", spark.createDataFrame([(4, T0 + timedelta(days=2), 40.0)], ROWS))

    # us's role still says home, but eu records a newer epoch: every write and pass is refused.
    batch = spark.createDataFrame([(5, T0, 5.0)], ROWS)
    stale = r"region 'eu' was promoted to epoch 2 while 'us' could not be reached.*fs-spark rejoin us"
    for refused in (lambda: us.write("spend", batch), lambda: us.replicate(),
                    lambda: us.rollback("spend", 1, reason="from us")):
        with pytest.raises(StaleHomeError, match=stale):
            refused()
    with pytest.raises(RejoinError, match="'eu' is home at epoch 2 and no region records a newer epoch"):
        eu.rejoin()

    result = us.rejoin()
    assert (result.region, result.home, result.epoch) == ("us", "eu", 2)
    assert result.commits == {"tables/spend/v1": [3]}
    assert result.catalog_rows[FEATURE_VERSIONS.name] == 1
    # Nothing is lost: us's lone commit, its data file and its catalog row are kept aside.
    aside = tmp_path / "us" / result.folder
    assert (aside / "tables/spend/v1/_delta_log/00000000000000000003.json").is_file()
    [data] = [f for f in (aside / "tables/spend/v1").rglob("*.parquet")]
    assert pq.read_table(data).column("customer_id").to_pylist() == [3]
    kept = pq.read_table(aside / "_catalog" / f"{FEATURE_VERSIONS.name}.parquet").to_pylist()
    assert [r["version_id"] for r in kept] == [alone.version_id]
    assert alone.version_id not in {v.version_id for v in us.versions("spend")}

    [back] = eu.replicate(to="us")  # us is level with its new home
    assert {t.table: t.commits for t in back.tables}["tables/spend/v1"] == 1
    assert _rows(us.read("spend")) == _rows(eu.read("spend"))
    assert [r[0] for r in _rows(us.read("spend"))] == [1, 1, 2, 4]  # customer 3 was us's alone
    assert [v.version_id for v in us.versions("spend")] == [v.version_id for v in eu.versions("spend")]
    with pytest.raises(ReplicaWriteError, match="'us' is a replica and 'eu' is the home"):
        us.write("spend", batch)
    with pytest.raises(RejoinError, match="its role says 'eu' is home"):
        us.rejoin()


def test_only_a_principal_who_administers_every_table_replicates_promotes_or_rejoins(regions, tmp_path):
    us, eu, open_region = regions
    us.replicate()
    analyst = open_region("us", user="analyst")
    assert analyst.read("spend").count() == 3  # a reader still reads
    for call in (lambda: analyst.replicate(), lambda: analyst.promote("eu"), lambda: analyst.rejoin(),
                 lambda: open_region("eu", user="analyst").promote("eu")):
        with pytest.raises(AccessDeniedError, match="analyst.*admin"):
            call()
    roles = {name: json.loads((tmp_path / name / "_region.json").read_text()) for name in ("us", "eu")}
    assert roles == {"us": {"region": "us", "home": "us", "epoch": 1}, "eu": {"region": "eu", "home": "us", "epoch": 1}}


def test_what_is_derived_from_a_resident_table_stays_in_its_region_too(regions, spark, tmp_path):
    """A training set over a table resident in eu stays in eu: its Parquet files, its Delta log's
    statistics and its catalog row, read off the other region's folder directly, not through
    fs_spark; a training set over other tables replicates."""
    import deltalake

    us, eu, _ = regions
    us.replicate()
    scores = spark.createDataFrame([(1, T0, 424242.4375)], "customer_id long, ts timestamp, score double")
    eu.write("eu_health", scores)
    eu.promote("eu")
    entities = spark.createDataFrame([(1, T0 + timedelta(days=1))], KEYS)
    resident = eu.create_training_set(entities, ["eu_health:score", "spend:amount"])
    free = eu.create_training_set(entities, ["spend:amount"])
    eu.replicate(to="us")
    us_root = tmp_path / "us"
    every_file = [p for p in us_root.rglob("*") if p.is_file()]
    assert not [p for p in every_file if resident.id in str(p)]
    assert [p for p in every_file if free.id in str(p) and p.suffix == ".parquet"]  # the control replicates
    logs = [p for p in every_file if "_delta_log" in p.parts and p.suffix == ".json"]
    assert logs and not [p for p in logs if "424242.4375" in p.read_text()]
    catalog = deltalake.DeltaTable(str(us_root / "_catalog" / "training_sets")).to_pyarrow_table().to_pylist()
    assert {r["training_set_id"] for r in catalog} == {free.id}
    assert [ts.training_set_id for ts in us.training_sets()] == [free.id]


VALUES = (424242.4375, 515151.25, 515151.5)  # eu_health's values, written nowhere else


def _values_in_files(root):
    """Files under `root` that hold one of VALUES: a Parquet column read directly, else the
    bytes as text or as a double of either byte order (a Delta log, the online store's file)."""
    import struct

    import pyarrow.parquet as pq

    found = []
    for path in (p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            columns = pq.read_table(path).to_pydict().values()
            if any(value in VALUES for column in columns for value in column if isinstance(value, float)):
                found.append(path)
            continue
        data = path.read_bytes()
        patterns = [repr(v).encode() for v in VALUES] + [struct.pack(o + "d", v) for v in VALUES for o in "<>"]
        if any(p in data for p in patterns):
            found.append(path)
    return found


def test_nothing_made_from_a_resident_table_leaves_its_region(regions, spark, tmp_path):
    """After a promotion, eu makes from its resident table everything a user can: a write with
    rows quarantined, a version quarantined and released, profiles, a drift check, an export, a
    materialization into the embedded online store, a model trained and deployed on it, its
    training set exported and predictions written under the root. A pass to us copies none of
    it. Checked off us's folder directly, not through fs_spark: no file holds a value (Parquet
    read column by column, everything else byte by byte) and no catalog row names the table or
    an ID made from it; the one write of a shared table eu made meanwhile does arrive."""
    import deltalake
    import mlflow
    import mlflow.sklearn
    from conftest import mlflow_store
    from sklearn.linear_model import LinearRegression

    from fs_spark.config import MlflowSettings

    us, _, open_region = regions
    us.replicate()
    (tmp_path / "mlflow").mkdir()
    uri = mlflow_store(tmp_path / "mlflow", "health")
    mlflow.set_tracking_uri(uri)
    eu = open_region("eu", mlflow=MlflowSettings(tracking_uri=uri, start_runs=True))
    eu.promote("eu")
    day = timedelta(days=1)
    scores = "customer_id long, ts timestamp, score double"
    first = eu.write("eu_health", spark.createDataFrame(
        [(1, T0, VALUES[0]), (2, T0, VALUES[0]), (3, T0, VALUES[1]), (3, T0, VALUES[2])], scores), mode="quarantine")
    assert first.quarantined_row_count == 2  # the duplicate (key, time) pair
    second = eu.write("eu_health", spark.createDataFrame([(1, T0 + day, VALUES[0])], scores))
    eu.quarantine_version("eu_health", second.version_number, "checking")
    eu.release_version("eu_health", second.version_number, "checked")
    eu.quality.check_drift("eu_health", version=second.version_number)
    eu.export("eu_health", str(tmp_path / "eu" / "exports" / "health"))
    eu.materialize("eu_health")
    entities = spark.createDataFrame([(1, T0 + 2 * day, 1.0), (2, T0 + 2 * day, 2.0)],
                                     "customer_id long, ts timestamp, label double")
    with eu.start_run("health", name="fit") as run:
        training = run.create_training_set(entities, ["eu_health:score"], label="label")
        frame = training.to_df()
        model = LinearRegression().fit(frame[["score"]], frame["label"])
        version = run.log_model(model, mlflow.sklearn, training_set=training, registered_model_name="health",
                                serialization_format="cloudpickle")
    eu.export_training_set(training.id, str(tmp_path / "eu" / "exports" / "training"))
    eu.score_batch(version.model_version_id, entities.drop("label"), path=str(tmp_path / "eu" / "predictions"))
    eu.deploy(version.model_version_id, "prod")
    eu.write("spend", spark.createDataFrame([(3, T0 + 2 * day, 3.0)], ROWS))
    assert _values_in_files(tmp_path / "eu")  # the check finds them where they are

    [result] = eu.replicate(to="us")
    assert result.skipped_tables == ("eu_health",)
    us_root = tmp_path / "us"
    assert _values_in_files(us_root) == []
    made = {r[c] for name in ("feature_versions", "training_sets", "exports", "materializations", "scorings",
                              "quarantine_events", "model_versions", "deployments", "drift_checks")
            for r in eu.catalog.rows(name) for c in r if c.endswith("_id") and r.get("table_name", "") != "spend"
            and c in ("version_id", "training_set_id", "export_id", "materialization_id", "scoring_id",
                      "event_id", "model_version_id", "deployment_id", "check_id")}
    made |= {r["scoring_set_id"] for r in eu.catalog.rows("scorings")}
    spend_ids = {v.version_id for v in eu.versions("spend")}
    assert len(made - spend_ids) >= 12
    leaked = []
    for table in (us_root / "_catalog").iterdir():
        for row in deltalake.DeltaTable(str(table)).to_pyarrow_table().to_pylist():
            text = json.dumps(row, default=str)
            if any(i in text for i in made - spend_ids) or (
                    row.get("table_name") == "eu_health" and table.name != "feature_tables"):
                leaked.append((table.name, row))
    assert leaked == []
    assert [v.version_number for v in us.versions("spend")] == [1, 2, 3]  # the control arrived
    assert not (us_root / "predictions").exists() and not (us_root / "exports").exists()


def test_two_replication_passes_at_once_append_each_catalog_row_once(regions):
    """Each pass takes the replica's `replicate` lock: the second finds the rows already there."""
    import threading

    us, eu, open_region = regions
    passes = [threading.Thread(target=open_region("us").replicate) for _ in range(2)]
    for one in passes:
        one.start()
    for one in passes:
        one.join()
    numbers = [v.version_number for v in eu.versions("spend")]
    assert numbers == [1, 2]
    ids = [r["version_id"] for r in eu.catalog.rows(FEATURE_VERSIONS.name)]
    assert len(ids) == len(set(ids)) == 2
