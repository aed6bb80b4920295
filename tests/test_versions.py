"""Every write is one immutable version: retries are idempotent, time travel is exact, and a
definition change either evolves the table compatibly or starts a new definition version."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from fs_spark import (
    BreakingChangeError,
    DuplicateBatchError,
    DuplicateBatchWarning,
    Feature,
    FeatureNotFoundError,
    FeatureStore,
    NaiveTimestampError,
    RetentionPeriodError,
    RunRef,
    SourceInfo,
    Transformation,
    VersionExpiredError,
    VersionNotFoundError,
    WriteConflictError,
)
from fs_spark.catalog.schema import FEATURE_VERSIONS
from fs_spark.ingest.conform import conform
from fs_spark.ingest.metrics import content_digest

from conftest import T0, activity_rows, activity_table


def _ids(frame):
    return sorted(r.customer_id for r in frame.select("customer_id").collect())


def test_retrying_the_same_batch_creates_no_second_version(store, activity):
    first = store.write("customer_activity", activity(activity_rows(20)))
    again = store.write("customer_activity", activity(list(reversed(activity_rows(20)))).repartition(3))
    assert again.version_id == first.version_id
    assert len(store.versions("customer_activity")) == 1
    assert store.read("customer_activity").count() == 20


def test_retry_with_the_same_write_id_and_other_data_is_an_error(store, activity):
    first = store.write("customer_activity", activity(activity_rows(5)), write_id="job-42")
    assert store.write("customer_activity", activity(activity_rows(5)), write_id="job-42").version_id == first.version_id
    with pytest.raises(WriteConflictError, match="write_id 'job-42'.*already committed as version"):
        store.write("customer_activity", activity(activity_rows(6)), write_id="job-42")
    assert [v.version_id for v in store.versions("customer_activity")] == [first.version_id]


def test_time_travel_returns_exactly_each_version(store, activity):
    batches = [activity_rows(10, start=10 * i) for i in range(3)]
    versions = [store.write("customer_activity", activity(rows)) for rows in batches]
    assert [v.version_number for v in versions] == [1, 2, 3]
    assert [v.delta_version for v in versions] == [1, 2, 3]
    for i, version in enumerate(versions):
        expected = sorted(r[0] for rows in batches[: i + 1] for r in rows)
        assert _ids(store.read("customer_activity", version=i + 1)) == expected
        assert _ids(store.read("customer_activity", version=version.version_id)) == expected
        assert _ids(store.read("customer_activity", as_of=version.committed_at)) == expected
        between = version.committed_at + timedelta(milliseconds=1)
        assert _ids(store.read("customer_activity", as_of=between)) == expected
    assert _ids(store.read("customer_activity")) == list(range(30))
    one = store.read("customer_activity", version=2, features=["spend_7d"], include_version_column=True)
    assert one.columns == ["customer_id", "event_ts", "_fs_version", "spend_7d"]
    assert sorted({r._fs_version for r in one.collect()}) == [1, 2]
    row = store.read("customer_activity", version=1).where("customer_id = 3").first()
    assert (row.spend_7d, row.visits, row.segment) == batches[0][3][2:3] + batches[0][3][5:7]


def test_unknown_versions_give_clear_errors(store, activity):
    version = store.write("customer_activity", activity(activity_rows(3)))
    with pytest.raises(VersionNotFoundError, match="no version 7.*versions 1..1"):
        store.read("customer_activity", version=7)
    with pytest.raises(VersionNotFoundError, match="UUIDv7"):
        store.read("customer_activity", version="v1")
    with pytest.raises(VersionNotFoundError, match="its first commit was"):
        store.read("customer_activity", as_of=version.committed_at - timedelta(days=1))
    with pytest.raises(NaiveTimestampError, match="no time zone"):
        store.read("customer_activity", as_of=datetime(2030, 1, 1))


def test_a_table_without_versions_reads_empty_with_its_columns(store, activity):
    frame = store.read("customer_activity")
    assert frame.count() == 0
    assert frame.columns == ["customer_id", "event_ts", "spend_7d", "min_7d", "max_7d", "visits", "segment"]


@pytest.mark.slow
def test_a_vacuumed_version_gives_a_clear_error(store, activity, spark):
    store.write("customer_activity", activity(activity_rows(10)))
    store.write("customer_activity", activity(activity_rows(10, start=10)))
    path = store.paths.table("customer_activity", 1)
    DeltaTable.forPath(spark, path).optimize().executeCompaction()
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        DeltaTable.forPath(spark, path).vacuum(0)
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")
    with pytest.raises(VersionExpiredError, match="data file\\(s\\) are missing"):
        store.read("customer_activity", version=1)
    assert store.read("customer_activity").count() == 20  # the compacted latest state still reads


def test_provenance_is_recorded_in_the_catalog_and_the_delta_commit(store, activity, spark):
    def derive(df):
        return df

    table = activity_table(transformation=Transformation.from_function(derive, parameters={"days": 7}, windows=("7d",)),
                           parents=("orders:amount",))
    store.apply(table)
    source = SourceInfo(description="orders export", start=T0, end=T0 + timedelta(days=60))
    run = RunRef(experiment_id="exp-1", run_id="run-1", hypothesis="recency matters")
    version = store.write("customer_activity", activity(activity_rows(10)), source=source, run=run)
    stored = store.catalog.version(version.version_id)
    assert stored == version
    assert (stored.source_description, stored.source_start, stored.source_end) == ("orders export", T0, T0 + timedelta(days=60))
    assert (stored.experiment_id, stored.run_id, stored.hypothesis) == ("exp-1", "run-1", "recency matters")
    assert stored.transformation_fingerprint == table.transformation.fingerprint
    assert json.loads(stored.transformation_json)["parameters"] == {"days": 7}
    assert stored.parents == ["orders:amount"] and stored.user == "tester" and stored.definition_revision == 2
    assert stored.event_time_min == T0 and stored.row_count == 10
    commit = DeltaTable.forPath(spark, stored.storage_path).history(1).first()
    meta = json.loads(commit.userMetadata)["fs_spark"]
    assert (meta["version_id"], meta["run_id"], commit.version) == (version.version_id, "run-1", stored.delta_version)


def _killed_between_commits(store, monkeypatch, batch, **options) -> None:
    """Write `batch` as a writer killed after its Delta commit, before its catalog row."""
    original = store.catalog.append

    def killed(table, rows):
        if table is FEATURE_VERSIONS and rows:
            raise RuntimeError("process killed")
        return original(table, rows)

    monkeypatch.setattr(store.catalog, "append", killed)
    with pytest.raises(RuntimeError, match="process killed"):
        store.write("customer_activity", batch, **options)
    monkeypatch.setattr(store.catalog, "append", original)


def test_a_write_interrupted_before_its_catalog_row_is_recovered_not_repeated(store, activity, monkeypatch):
    _killed_between_commits(store, monkeypatch, activity(activity_rows(10)), write_id="nightly-1")
    assert store.versions("customer_activity") == []
    version = store.write("customer_activity", activity(activity_rows(10)), write_id="nightly-1")
    assert version.recovered and version.delta_version == 1 and version.row_count == 10
    assert [v.version_id for v in store.versions("customer_activity")] == [version.version_id]
    assert store.read("customer_activity").count() == 10


def _spend_at(built) -> list[float]:
    return [r.spend_7d for r in built.load_df().orderBy("customer_id").collect()]


@pytest.mark.slow
def test_reads_and_builds_see_only_recorded_versions_while_a_writer_is_between_its_commits(store, activity, spark,
                                                                                          monkeypatch):
    store.write("customer_activity", activity(activity_rows(10)))
    # The second write has the same keys a day later, with other values.
    later = [(r[0], r[1] + timedelta(days=1), r[2] + 100, *r[3:]) for r in activity_rows(10)]
    original, committed, release = store.catalog.append, threading.Event(), threading.Event()

    def held(table, rows):
        if table is FEATURE_VERSIONS and rows:  # the Delta commit is made, the catalog row not yet
            committed.set()
            assert release.wait(300)
        return original(table, rows)

    monkeypatch.setattr(store.catalog, "append", held)
    writer = threading.Thread(target=store.write, args=("customer_activity", activity(later)))
    writer.start()
    try:
        assert committed.wait(300)
        labels = spark.createDataFrame([(i, T0 + timedelta(days=90)) for i in range(10)], "customer_id long, event_ts timestamp")
        assert store.read("customer_activity").count() == 10
        assert store.read("customer_activity", version=1).count() == 10
        assert store.read("customer_activity", as_of=datetime.now(timezone.utc)).count() == 10
        assert _spend_at(store.create_training_set(labels, ["customer_activity:spend_7d"])) == [float(i) for i in range(10)]
    finally:
        release.set()
        writer.join()
    assert store.read("customer_activity").count() == 20
    assert store.read("customer_activity", version=1).count() == 10


@pytest.mark.slow
def test_a_killed_writer_s_rows_stay_invisible_until_recovered(store, activity, monkeypatch):
    store.write("customer_activity", activity(activity_rows(10)))
    _killed_between_commits(store, monkeypatch, activity(activity_rows(10, start=10)))
    assert store.read("customer_activity", version=1).count() == 10
    assert store.read("customer_activity").count() == 10
    third = store.write("customer_activity", activity(activity_rows(10, start=20)))
    assert [v.version_number for v in store.versions("customer_activity")] == [1, 2, 3] and third.version_number == 3
    assert store.read("customer_activity", version=2).count() == 20  # recovered, now recorded
    assert store.read("customer_activity").count() == 30


def test_compatible_changes_evolve_the_table_in_place(store, activity, spark):
    v1 = store.write("customer_activity", activity(activity_rows(5)))
    base = activity_table()
    visits = base.feature("visits").with_(dtype="long")
    evolved = base.with_(features=[*[f if f.name != "visits" else visits for f in base.features],
                                   Feature(name="churn_score", dtype="double")])
    (item,) = store.apply(evolved)
    assert (item.action, item.revision) == ("update", 2)
    old = store.read("customer_activity", version=v1.version_id)
    assert old.schema["visits"].dataType.simpleString() == "bigint"
    assert [r.churn_score for r in old.collect()] == [None] * 5
    new_rows = activity(activity_rows(3, start=100)).withColumn("visits", F.col("visits").cast("long") + 3_000_000_000)
    new_rows = new_rows.withColumn("visits", F.lit(7).cast("long")).withColumn("churn_score", F.lit(0.5))
    v2 = store.write("customer_activity", new_rows)
    assert v2.definition_revision == 2
    assert sorted(r.churn_score for r in store.read("customer_activity").where("churn_score is not null").collect()) == [0.5] * 3


def test_breaking_changes_need_a_new_definition_version(store, activity):
    v1 = store.write("customer_activity", activity(activity_rows(5)))
    base = activity_table()
    dropped = base.with_(features=[f for f in base.features if f.name != "segment"])
    with pytest.raises(BreakingChangeError, match="drop_feature segment.*definition_version=2"):
        store.apply(dropped)
    assert store.get_table("customer_activity") == base
    (item,) = store.apply(dropped.with_(definition_version=2))
    assert item.action == "new_version"
    assert store.read("customer_activity").count() == 0  # v2 starts empty
    old = store.read("customer_activity", version=v1.version_id)
    assert "segment" in old.columns and old.count() == 5
    rows = [r[:6] for r in activity_rows(2)]
    frame = store.spark.createDataFrame(
        rows, "customer_id long, event_ts timestamp, spend_7d double, min_7d double, max_7d double, visits int"
    )
    v2 = store.write("customer_activity", frame)
    assert (v2.definition_version, v2.version_number) == (2, 1)
    assert v2.storage_path.endswith("/customer_activity/v2")


def test_a_quarantined_batch_retried_with_its_write_id_is_recognised(store, activity):
    rows = activity_rows(6)
    rows[2] = (2, rows[2][1], -1.0, *rows[2][3:])  # negative spend: quarantined
    first = store.write("customer_activity", activity(rows), mode="quarantine", write_id="q-1")
    whole = content_digest(conform(activity(rows), store.get_table("customer_activity")), store.get_table("customer_activity"))
    assert (first.row_count, first.quarantined_row_count, first.content_digest) == (5, 1, whole)  # of every row
    again = store.write("customer_activity", activity(list(reversed(rows))), mode="quarantine", write_id="q-1")
    assert again.version_id == first.version_id
    with pytest.raises(WriteConflictError):  # the good rows alone are not the same batch
        store.write("customer_activity", activity(rows[:2] + rows[3:]), mode="quarantine", write_id="q-1")
    assert len(store.versions("customer_activity")) == 1


def test_bad_read_and_vacuum_arguments_get_fs_spark_errors(store, activity):
    store.write("customer_activity", activity(activity_rows(3)))
    with pytest.raises(FeatureNotFoundError, match=r"no feature\(s\) \['spend_7'\]. Did you mean 'spend_7d'\?"):
        store.read("customer_activity", features=["spend_7"])
    with pytest.raises(RetentionPeriodError, match="retention_hours=0 refused.*168 hours"):
        store.vacuum("customer_activity", retention_hours=0, force=True)
    with pytest.raises(RetentionPeriodError, match="cannot be negative"):
        store.vacuum("customer_activity", retention_hours=-1)
    assert store.read("customer_activity").count() == 3


def test_an_exact_re_ingest_under_no_write_id_writes_nothing_and_names_the_first_version(store, activity, spark):
    rows = activity_rows(10)
    first = store.write("customer_activity", activity(rows), write_id="nightly-1")
    table = store.get_table("customer_activity")
    # the digest observed in the write's own pass equals a separate digest pass over the batch
    assert first.content_digest == content_digest(conform(activity(rows), table), table)
    with pytest.warns(DuplicateBatchWarning, match=rf"#1 \({first.version_id}, write_id 'nightly-1'\); nothing was written"):
        again = store.write("customer_activity", activity(list(reversed(rows))).repartition(3))
    assert again.version_id == first.version_id
    assert len(store.versions("customer_activity")) == 1 and store.read("customer_activity").count() == 10

    settings = store.settings.model_copy(update={"store": store.settings.store.model_copy(
        update={"duplicate_batches": "refuse"})})
    strict = FeatureStore(spark=spark, settings=settings)
    with pytest.raises(DuplicateBatchError, match=r"exactly the rows of version #1 .*write_id 'nightly-1'"):
        strict.write("customer_activity", activity(rows))
    assert strict.write("customer_activity", activity(rows), write_id="nightly-1").version_id == first.version_id

    changed = rows[:9] + [(9, rows[9][1], 99.0, *rows[9][3:])]
    second = store.write("customer_activity", activity(changed))  # one value differs: a new version
    assert second.version_number == 2 and store.read("customer_activity").count() == 20
    quarantined = store.write("customer_activity", activity([(*r[:5], -1, r[6]) for r in activity_rows(3, start=50)]),
                              write_id="bad", mode="quarantine")
    assert quarantined.quarantined_row_count == 3 and quarantined.content_digest is not None


def test_a_write_that_adds_no_rows_is_a_version_without_a_delta_commit(store, activity):
    """Delta records no commit for an append of no rows: an empty batch, or one whose every row
    was quarantined, is still a version, of the Delta version before it."""
    first = store.write("customer_activity", activity(activity_rows(5)))
    empty = store.write("customer_activity", activity([]), write_id="empty")
    refused = store.write("customer_activity", activity([(*r[:5], -1, r[6]) for r in activity_rows(2, start=9)]),
                          write_id="all-bad", mode="quarantine")
    third = store.write("customer_activity", activity(activity_rows(5, start=5)))
    assert [(v.version_number, v.row_count, v.delta_version) for v in (first, empty, refused, third)] == [
        (1, 5, 1), (2, 0, 1), (3, 0, 1), (4, 5, 2)]
    assert refused.quarantined_row_count == 2
    assert [store.read("customer_activity", version=n).count() for n in (1, 2, 3, 4)] == [5, 5, 5, 10]
    assert store.write("customer_activity", activity([]), write_id="empty").version_id == empty.version_id  # a retry
