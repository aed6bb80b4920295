"""A store on S3 (`s3a://`, a real S3 server on loopback): every capability that touches storage
works there as on a local folder: writes, reads, time travel, training sets and their replay,
the VACUUM guard, retention, exports, drift and reconciliation; and two regions in two buckets."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import numpy as np
import pyarrow.compute as pc
import pytest
from conftest import make_store, new_bucket, short_retention
from delta.tables import DeltaTable
from experiment_scenario import SPEND, T0

from fs_spark import FeatureStore, RetentionGuardError
from fs_spark.catalog.schema import FEATURE_VERSIONS, MAINTENANCE_EVENTS
from fs_spark.cli import run
from fs_spark.config import RetentionSettings
from fs_spark.observability.health import check_health
from fs_spark.storage.delta_log import latest_commit
from fs_spark.storage.s3 import client, split

pytestmark = pytest.mark.slow  # a store on an S3 server

ROWS = "customer_id long, ts timestamp, amount double"
KEYS = "customer_id long, ts timestamp"


def _keys(s3, uri: str) -> list[str]:
    bucket, prefix = split(uri)
    pages = client(s3).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    return [item["Key"][len(prefix) + 1 :] for page in pages for item in page.get("Contents", [])]


@pytest.fixture
def spend(s3_store, spark):
    s3_store.apply(SPEND)
    s3_store.write("spend", spark.createDataFrame([(1, T0, 1.0), (2, T0, 2.0)], ROWS), write_id="first")
    s3_store.write("spend", spark.createDataFrame([(1, T0 + timedelta(days=2), 10.0), (3, T0, 3.0)], ROWS))
    return s3_store


def test_a_read_only_command_on_a_mistyped_s3_root_is_refused_and_creates_nothing(spend, s3, capsys, monkeypatch):
    from fs_spark.cli import main

    for name, value in (("FS_SPARK_S3__ENDPOINT", s3.endpoint), ("FS_SPARK_S3__PATH_STYLE_ACCESS", "true"),
                        ("FS_SPARK_S3__REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    bucket, _ = split(spend.root)
    typo = f"s3a://{bucket}/typo"
    for command in (["versions", "spend"], ["tables"], ["read", "spend"]):
        assert main(["--root", typo, *command]) == 2
        assert f"StoreNotFoundError: no fs_spark store at {typo}" in capsys.readouterr().err
    assert _keys(s3, typo) == []
    assert main(["--root", f"s3a://no-such-bucket-{bucket}/store", "tables"]) == 2
    assert main(["--root", spend.root, "tables"]) == 0  # the right root still answers


def test_writes_reads_and_time_travel_on_s3(spend, spark, s3, monkeypatch):
    store = spend
    assert sorted(tuple(r) for r in store.read("spend", version=1).select("customer_id", "amount").collect()) == [
        (1, 1.0), (2, 2.0)]
    assert store.read("spend").count() == 4
    path = store.version("spend").storage_path
    assert path.startswith(f"{store.root}/tables/spend/v1")
    names = _keys(s3, path)
    assert "_delta_log/00000000000000000000.json" in names and any(n.endswith(".parquet") for n in names)
    # Each version is its own Delta commit, and the commit carries the version's identity.
    first, second = store.versions("spend")
    assert (first.version_number, second.version_number) == (1, 2) and first.write_id == "first"
    assert second.delta_version == first.delta_version + 1 == latest_commit(spark, path).version
    # A fresh process (no cache) reads the catalog from S3 with delta-rs, without Spark.
    fresh = make_store(None, store.root, s3)
    assert [(v.version_id, v.delta_version) for v in fresh.versions("spend")] == [
        (first.version_id, first.delta_version), (second.version_id, second.delta_version)]
    assert not fresh._session.started
    for key, value in {"ENDPOINT": s3.endpoint, "REGION": s3.region, "PATH_STYLE_ACCESS": "true"}.items():
        monkeypatch.setenv(f"FS_SPARK_S3__{key}", value)
    out = io.StringIO()
    assert run(["--root", store.root, "versions", "spend"], out=out) == 0
    assert first.version_id in out.getvalue() and second.version_id in out.getvalue()
    # The write lock is a lease object beside the tables, released after each write.
    assert not [n for n in _keys(s3, store.root) if n.startswith("_locks/")]


def test_training_sets_on_s3_are_point_in_time_and_replay_identically(spend, spark):
    store = spend
    entities = spark.createDataFrame([(1, T0 + timedelta(days=1)), (1, T0 + timedelta(days=3)), (4, T0)], KEYS)
    ts = store.create_training_set(entities, ["spend:amount"])
    rows = sorted((r.customer_id, r.ts, r.amount) for r in ts.to_spark_df().collect())
    # Customer 1 on day 1 sees the day-0 row (1.0), on day 3 the day-2 row (10.0); 4 has none.
    assert [(k, a) for k, _, a in rows] == [(1, 1.0), (1, 10.0), (4, None)]
    store.write("spend", spark.createDataFrame([(1, T0 + timedelta(days=1), 99.0)], ROWS))  # a later write
    replayed = store.load_training_set(ts.id)  # rebuilt from the recorded versions, digest checked
    assert sorted((r.customer_id, r.ts, r.amount) for r in replayed.to_spark_df().collect()) == rows
    assert store.training_set(ts.id).manifest.feature_version_ids == ts.manifest.feature_version_ids
    # read without Spark through delta-rs, from the same S3 settings: the build's rows, digest checked
    local = store.open_training_set(ts.id).to_arrow()
    assert sorted(naive(zip(*(local.column(c).to_pylist() for c in ("customer_id", "ts", "amount")), strict=True))) == rows
    first = store.versions("spend")[0]
    spark_rows = sorted(tuple(r) for r in store.read("spend", version=first.version_id).collect())
    arrow = store.read_arrow("spend", version=first.version_id).to_arrow()
    assert sorted(naive(zip(*(arrow.column(c).to_pylist() for c in arrow.schema.names), strict=True))) == spark_rows


def naive(rows) -> list[tuple]:
    """Arrow's aware UTC times as Spark's collect gives them (naive, in the session's UTC)."""
    return [tuple(v.replace(tzinfo=None) if isinstance(v, datetime) else v for v in row) for row in rows]


def test_vacuum_guard_and_retention_on_s3(spend, spark, s3):
    store = spend
    entities = spark.createDataFrame([(1, T0 + timedelta(days=1))], KEYS)
    ts = store.create_training_set(entities, ["spend:amount"])
    model = store.register_model("churn", training_sets=[ts])
    store.deploy(model.model_version_id, "prod")
    store.write("spend", spark.createDataFrame([(5, T0, 5.0)], ROWS))
    path = ts.lookups[0].storage_path
    files_at = lambda v: set(spark.read.format("delta").option("versionAsOf", v).load(path).inputFiles())  # noqa: E731
    held = files_at(ts.lookups[0].delta_version)
    unheld = files_at(store.version("spend").delta_version) - held
    DeltaTable.forPath(spark, path).optimize().executeCompaction()
    with short_retention(spark):
        with pytest.raises(RetentionGuardError) as refused:
            store.vacuum("spend", retention_hours=0)
        assert refused.value.holders == [ts.id] and refused.value.models == ["churn v1"]
        settings = store.settings.model_copy(update={"retention": RetentionSettings(tables={"sp*": 0})})
        [result] = FeatureStore(store.root, spark=spark, settings=settings, user="scheduler").run_retention()
    present = {f"{store.root}/{key}" for key in _keys(s3, store.root)}
    assert result.deleted_files == len(unheld) == 1 and result.kept_files == len(held)
    assert held <= present and not unheld & present
    assert store.load_training_set(ts.id).manifest.row_count == 1
    assert store.read("spend", version=3).count() == 5  # the latest version reads the compacted file
    [event] = [r for r in store.catalog.rows(MAINTENANCE_EVENTS.name) if r["table_name"] == "spend"]
    assert event["deleted_files"] == 1 and not event["forced"]


def test_exports_from_an_s3_store_to_s3_and_to_a_local_folder(spend, spark, s3, tmp_path):
    store = spend
    expected = sorted(tuple(r) for r in store.read("spend", version=1).collect())
    to_s3 = f"s3a://{new_bucket(s3)}/out/v1"
    store.export("spend", to_s3, version=1, format="parquet")
    store.export("spend", str(tmp_path / "v1"), version=1, format="parquet")
    for path in (to_s3, str(tmp_path / "v1")):
        assert sorted(tuple(r) for r in spark.read.parquet(path).select(*store.read("spend").columns).collect()) == expected


def test_drift_between_versions_on_s3(s3_store, spark):
    store = s3_store
    store.apply(SPEND)
    rng = np.random.default_rng(3)
    for day, shift in ((0, 0.0), (1, 0.0), (2, 5.0)):
        values = rng.normal(10 + shift, 1, 2000)
        store.write("spend", spark.createDataFrame(
            [(i, T0 + timedelta(days=day), float(v)) for i, v in enumerate(values)], ROWS))
    assert not store.quality.check_drift("spend", version=2).breached
    shifted = store.quality.check_drift("spend")
    assert shifted.breached and set(shifted.feature("amount").breaches) >= {"psi", "ks"}
    # the figures and the health of a store on S3: bytes from Delta's commits, a probe written there
    written = [r["bytes"] for r in store.catalog.rows("metrics") if r["operation"] == "ingest"]
    assert len(written) == 3 and all(b > 0 for b in written)
    selected = store.catalog.select("metrics", ["bytes", "started_at"], pc.field("operation") == "ingest")
    assert sorted(r["bytes"] for r in selected) == sorted(written)  # the filtered read of S3's files
    report = check_health(store)
    storage = report.check("storage")
    assert storage.status == "ok" and storage.detail["write_probe"] is True
    assert report.check("last_failed_job").detail == {"note": "no operation has failed"}


def test_reconcile_on_s3_reports_a_file_deleted_by_hand(spend, spark, s3):
    store = spend
    ts = store.create_training_set(spark.createDataFrame([(1, T0 + timedelta(days=3))], KEYS), ["spend:amount"])
    store.register_model("m", training_sets=[ts])
    assert store.lineage.reconcile().ok
    listed = sorted(spark.read.format("delta").load(ts.lookups[0].storage_path).inputFiles())
    bucket, key = split(listed[0])
    client(s3).delete_object(Bucket=bucket, Key=key)
    report = store.lineage.reconcile()
    assert not report.ok and any("unreadable at Delta version" in d.problem for d in report.unauthorised)
    assert any(r["table_name"] == "spend" for r in store.catalog.rows(FEATURE_VERSIONS.name))


def test_two_regions_in_two_buckets_replicate_promote_and_rejoin(spark, s3, tmp_path):
    """Regions on S3: us's store copied to eu's bucket, read there; then the state a forced
    promotion leaves (eu home at epoch 2, us never told), us's writes refused, and us rejoining."""
    from fs_spark.config import Settings, StoreSettings
    from fs_spark.errors import ReplicaWriteError, StaleHomeError
    from fs_spark.replication.regions import ROLE, Role

    roots = {name: f"s3a://{new_bucket(s3)}/store" for name in ("us", "eu")}
    regions_file = tmp_path / "regions.yaml"
    regions_file.write_text("version: 1\nhome: us\nregions:\n" + "".join(f"  {n}: {{root: '{r}'}}\n" for n, r in roots.items()))

    def open_region(name):
        return FeatureStore(spark=spark, settings=Settings(
            store=StoreSettings(root=roots[name], user="tester", regions_file=str(regions_file)), s3=s3))

    us, eu = open_region("us"), open_region("eu")
    us.apply(SPEND)
    us.write("spend", spark.createDataFrame([(1, T0, 1.0), (2, T0, 2.0)], ROWS))
    [result] = us.replicate()
    assert result.region == "eu" and {t.table: t.watermark for t in result.tables}["tables/spend/v1"] == 1
    assert sorted(tuple(r) for r in eu.read("spend").collect()) == sorted(tuple(r) for r in us.read("spend").collect())
    assert eu.version("spend").storage_path.startswith(roots["eu"])
    with pytest.raises(ReplicaWriteError, match="'eu' is a replica"):
        eu.write("spend", spark.createDataFrame([(9, T0, 9.0)], ROWS))

    lone = us.write("spend", spark.createDataFrame([(3, T0 + timedelta(days=1), 3.0)], ROWS))  # us alone
    # What `promote eu --force` records when us cannot be reached: eu's role, not us's.
    client(s3).put_object(Bucket=split(roots["eu"])[0], Key=f"{split(roots['eu'])[1]}/{ROLE}",
                          Body=Role("eu", "eu", 2).to_bytes())
    eu.write("spend", spark.createDataFrame([(4, T0 + timedelta(days=1), 4.0)], ROWS))
    with pytest.raises(StaleHomeError, match="region 'eu' was promoted to epoch 2"):
        us.write("spend", spark.createDataFrame([(5, T0, 5.0)], ROWS))
    rejoined = us.rejoin()
    assert rejoined.commits == {"tables/spend/v1": [2]} and rejoined.catalog_rows[FEATURE_VERSIONS.name] == 1
    aside = _keys(s3, roots["us"])
    assert f"{rejoined.folder}/tables/spend/v1/_delta_log/00000000000000000002.json" in aside
    assert f"{rejoined.folder}/_catalog/{FEATURE_VERSIONS.name}.parquet" in aside
    eu.replicate(to="us")
    assert sorted(r.customer_id for r in us.read("spend").collect()) == [1, 2, 4]
    assert lone.version_id not in {v.version_id for v in us.versions("spend")}
    assert [v.version_id for v in us.versions("spend")] == [v.version_id for v in eu.versions("spend")]


def test_a_training_set_over_a_resident_table_stays_in_its_regions_bucket(spark, s3, tmp_path):
    """Residency on S3: `us_health` may live in us only. What us (its home) makes from it stays
    out of eu's bucket: a training set (its Parquet files, its Delta log's statistics, its catalog
    row), the rows a write quarantined, an export of the table and of the training set under
    us's bucket. Found by listing eu's bucket and reading its objects directly, not through
    fs_spark."""
    import io

    import pyarrow.parquet as pq

    from fs_spark import Entity, Feature, FeatureTable
    from fs_spark.config import GovernanceSettings, Settings, StoreSettings

    roots = {name: f"s3a://{new_bucket(s3)}/store" for name in ("us", "eu")}
    regions_file = tmp_path / "regions.yaml"
    regions_file.write_text("version: 1\nhome: us\nregions:\n" + "".join(f"  {n}: {{root: '{r}'}}\n" for n, r in roots.items()))
    (tmp_path / "policy.yaml").write_text("principals:\n  tester: {roles: [admin]}\nrules:\n"
                                          "  - {name: all, roles: [admin], actions: [read, write, deprecate, admin]}\n"
                                          "regions:\n  us_health: [us]\n")
    us_only = FeatureTable(name="us_health", entity=Entity(name="customer", keys={"customer_id": "long"}),
                           event_time="ts", features=[Feature(name="score", dtype="double")])
    us = FeatureStore(spark=spark, settings=Settings(
        store=StoreSettings(root=roots["us"], user="tester", regions_file=str(regions_file)), s3=s3,
        governance=GovernanceSettings(policy_file=str(tmp_path / "policy.yaml"), region="us")))
    us.apply(SPEND, us_only)
    us.write("spend", spark.createDataFrame([(1, T0, 1.0)], ROWS))
    written = us.write("us_health", spark.createDataFrame(
        [(1, T0, 424242.4375), (2, T0, 515151.25), (2, T0, 515151.25)], "customer_id long, ts timestamp, score double"),
        mode="quarantine")
    assert written.quarantined_row_count == 2
    entities = spark.createDataFrame([(1, T0 + timedelta(days=1))], KEYS)
    resident = us.create_training_set(entities, ["us_health:score", "spend:amount"])
    free = us.create_training_set(entities, ["spend:amount"])
    us.export("us_health", f"{roots['us']}/exports/health")
    us.export_training_set(resident.id, f"{roots['us']}/exports/training")
    [result] = us.replicate()
    assert result.skipped_tables == ("us_health",)
    bucket, prefix = split(roots["eu"])
    keys = _keys(s3, roots["eu"])
    assert not [k for k in keys if resident.id in k or k.startswith("exports/")]
    assert [k for k in keys if free.id in k and k.endswith(".parquet")]
    texts = [client(s3).get_object(Bucket=bucket, Key=f"{prefix}/{k}")["Body"].read() for k in keys
             if "/_delta_log/" in k and k.endswith(".json")]
    assert texts and not [t for t in texts if b"424242.4375" in t or b"515151.25" in t]
    values = [value for k in keys if k.endswith(".parquet") for column in pq.read_table(io.BytesIO(
        client(s3).get_object(Bucket=bucket, Key=f"{prefix}/{k}")["Body"].read())).to_pydict().values() for value in column]
    assert values and not {424242.4375, 515151.25} & {v for v in values if isinstance(v, float)}
    exports = [row for k in keys if k.startswith("_catalog/exports/") and k.endswith(".parquet") for row in
               pq.read_table(io.BytesIO(client(s3).get_object(Bucket=bucket, Key=f"{prefix}/{k}")["Body"].read())).to_pylist()]
    assert exports == []
    catalog = [k for k in keys if k.startswith("_catalog/training_sets/") and k.endswith(".parquet")]
    ids = {row["training_set_id"] for k in catalog for row in pq.read_table(
        io.BytesIO(client(s3).get_object(Bucket=bucket, Key=f"{prefix}/{k}")["Body"].read())).to_pylist()}
    assert ids == {free.id}
