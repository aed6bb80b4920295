"""The catalog is append-only Delta tables, queryable with plain Spark SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyspark.errors import UnsupportedOperationException

from fs_spark.catalog.schema import VERSION_STATUS
from fs_spark.errors import CatalogRowError

from conftest import activity_rows, activity_table, make_store


@pytest.mark.slow
def test_catalog_answers_plain_spark_sql(store, activity, spark):
    first = store.write("customer_activity", activity(activity_rows(5)))
    store.write("customer_activity", activity(activity_rows(5, start=5)))
    path = store.catalog.path("feature_versions")
    rows = spark.sql(
        f"SELECT version_number, row_count, user FROM delta.`{path}` "
        "WHERE table_name = 'customer_activity' ORDER BY version_number"
    ).collect()
    assert [tuple(r) for r in rows] == [(1, 5, "tester"), (2, 5, "tester")]
    assert store.catalog.register_views() == [
        "fs_feature_tables", "fs_feature_versions", "fs_quarantine_events", "fs_version_status", "fs_training_sets",
        "fs_experiments", "fs_runs", "fs_run_metrics", "fs_run_inputs", "fs_models", "fs_model_versions",
        "fs_deployments", "fs_lineage_edges", "fs_maintenance_events", "fs_drift_checks", "fs_drift_scores",
        "fs_alerts", "fs_audit_log", "fs_deprecations", "fs_exports", "fs_feature_services", "fs_materializations",
        "fs_scorings", "fs_streams", "fs_stream_progress", "fs_version_profiles", "fs_metrics"]
    joined = spark.sql(
        "SELECT t.change_kind, v.version_id FROM fs_feature_versions v JOIN fs_feature_tables t "
        "ON v.table_name = t.table_name AND v.definition_revision = t.revision WHERE v.version_number = 1"
    ).collect()
    assert [tuple(r) for r in joined] == [("create", first.version_id)]


@pytest.mark.slow  # Delta's append-only protocol end to end
def test_catalog_and_feature_tables_refuse_deletes(store, activity, spark):
    store.write("customer_activity", activity(activity_rows(3)))
    for path in (store.catalog.path("feature_versions"), store.paths.table("customer_activity", 1)):
        with pytest.raises(UnsupportedOperationException, match="DELTA_CANNOT_MODIFY_APPEND_ONLY"):
            spark.sql(f"DELETE FROM delta.`{path}`")
    assert store.read("customer_activity").count() == 3


def test_every_definition_change_is_a_new_row(store):
    table = activity_table()
    store.apply(table)
    store.apply(table.with_(description="now documented"))
    store.apply(table.with_(description="now documented"))  # unchanged: no row
    rows = store.catalog.definition_rows("customer_activity")
    assert [(r["revision"], r["change_kind"]) for r in rows] == [(1, "create"), (2, "update")]
    assert rows[1]["changes"] == ["change_description customer_activity: updated"]
    assert store.get_table("customer_activity").description == "now documented"


def test_a_catalog_row_with_a_misspelt_or_missing_column_is_refused_before_writing(store):
    store.init()
    row = {"event_id": "e1", "version_id": "v1", "table_name": "t", "status": "quarantined", "reason": "r",
           "user": "u", "at": datetime.now(UTC)}
    with pytest.raises(CatalogRowError, match=r"unknown column\(s\) \['resaon'\] and lacks column\(s\) \['reason'\]"):
        store.catalog.append(VERSION_STATUS, [{**{k: v for k, v in row.items() if k != "reason"}, "resaon": "r"}])
    with pytest.raises(CatalogRowError, match=r"lacks column\(s\) \['at'\]"):
        store.catalog.append(VERSION_STATUS, [{k: v for k, v in row.items() if k != "at"}])
    assert store.catalog.rows(VERSION_STATUS.name) == []
    store.catalog.append(VERSION_STATUS, [row])
    assert [r["reason"] for r in store.catalog.rows(VERSION_STATUS.name)] == ["r"]


def test_rows_appended_through_delta_rs_read_back_the_same_in_spark_and_in_the_cache(store, activity, spark):
    version = store.write("customer_activity", activity(activity_rows(4)))
    cached = store.catalog.rows("feature_versions")
    fresh = make_store(spark, store.root).catalog.rows("feature_versions")  # no cache: read through delta-rs
    by_spark = [r.asDict(recursive=True) for r in store.catalog.table("feature_versions").collect()]
    assert cached == fresh
    assert [r["version_id"] for r in by_spark] == [version.version_id]
    assert {k: v for k, v in by_spark[0].items() if not isinstance(v, datetime)} == {
        k: v for k, v in fresh[0].items() if not isinstance(v, datetime)}
    assert by_spark[0]["committed_at"].astimezone(UTC) == fresh[0]["committed_at"] == version.committed_at


def test_a_long_history_is_compacted_in_commit_order_and_spark_reads_the_same(store, spark):
    import deltalake

    from fs_spark.catalog.catalog import Catalog
    from fs_spark.catalog.schema import EXPERIMENTS

    store.catalog.compact_after = 8
    for i in range(30):  # one commit each, as experiments are made
        store.catalog.append(EXPERIMENTS, [{"experiment_id": f"e{i:03d}", "name": f"n{i}", "description": None,
                                            "user": "tester", "created_at": datetime.now(UTC)}])
    fresh = Catalog(lambda: spark, store.paths, store._catalog.locks)  # a new process: no cache, reads the files
    assert [r["experiment_id"] for r in fresh.rows(EXPERIMENTS.name)] == [f"e{i:03d}" for i in range(30)]
    table = deltalake.DeltaTable(store.catalog.path(EXPERIMENTS.name))
    assert len(table.file_uris()) < 8 and table.version() > 30  # compactions are commits of their own
    in_spark = spark.read.format("delta").load(store.catalog.path(EXPERIMENTS.name)).select("experiment_id")
    assert sorted(r[0] for r in in_spark.collect()) == [f"e{i:03d}" for i in range(30)]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{store.catalog.path(EXPERIMENTS.name)}`").collect()
    assert len(history) == table.version() + 1  # Delta's own reader accepts every commit


def test_compaction_is_tiered_an_old_large_file_is_not_rewritten_and_order_holds(store, spark):
    import deltalake

    from fs_spark.catalog.catalog import Catalog
    from fs_spark.catalog.schema import EXPERIMENTS

    def experiment(i: int) -> dict:
        return {"experiment_id": f"e{i:04d}", "name": f"n{i}", "description": None, "user": "tester",
                "created_at": datetime.now(UTC)}

    store.catalog.compact_after = 6
    store.catalog.append(EXPERIMENTS, [experiment(i) for i in range(500)])  # an old, large file
    path = store.catalog.path(EXPERIMENTS.name)
    large = deltalake.DeltaTable(path).file_uris()
    written, counts = 500, []
    for n in range(120):  # single rows, with a batch of 7 now and then
        size = 7 if n % 25 == 0 else 1
        store.catalog.append(EXPERIMENTS, [experiment(written + i) for i in range(size)])
        written += size
        counts.append(len(deltalake.DeltaTable(path).file_uris()))
    files = deltalake.DeltaTable(path).file_uris()
    assert large[0] in files  # 500 rows, more than twice all that came after: never rewritten
    assert max(counts) <= 6 and len(files) >= 2
    fresh = Catalog(lambda: spark, store.paths, store._catalog.locks)  # no cache: reads the files
    assert [r["experiment_id"] for r in fresh.rows(EXPERIMENTS.name)] == [f"e{i:04d}" for i in range(written)]
    in_spark = spark.read.format("delta").load(path).select("experiment_id")
    assert sorted(r[0] for r in in_spark.collect()) == [f"e{i:04d}" for i in range(written)]


def _operation(i: int, error_class: str | None, started_at: datetime) -> dict:
    return {"operation_id": f"op{i:03d}", "operation": "ingest" if i % 3 else "reconcile", "table_name": "t",
            "started_at": started_at, "seconds": 0.1, "rows": i, "bytes": 0, "retries": 0,
            "error_class": error_class, "error": None, "spark_jobs": 0, "spark_stages": 0, "spark_tasks": 0,
            "spark_failed_tasks": 0, "spark_input_bytes": 0, "run_id": None, "experiment_id": None,
            "user": "tester", "instance": "h:1", "tags_json": None}


def test_select_answers_as_the_rows_do_filtered_projected_and_newest_first(store, spark):
    import pyarrow.compute as pc

    from fs_spark.catalog.catalog import Catalog
    from fs_spark.catalog.schema import METRICS

    assert store.catalog.select(METRICS.name, ["operation_id"], pc.scalar(True)) == []  # before any row
    store.catalog.compact_after = 8
    base = datetime(2026, 3, 1, tzinfo=UTC)
    # Start times out of commit order, failures scattered, some commits of several rows.
    order = [17, 3, 29, 11, 0, 23, 5, 8, 26, 14, 2, 20, 9, 27, 1, 18, 12, 6, 24, 15]
    for n, i in enumerate(order):
        error = ("ValidationError" if i % 4 == 0 else None)
        rows = [_operation(i, error, base.replace(hour=i % 24, minute=i))]
        if n % 5 == 0:
            rows.append(_operation(100 + i, "WriteConflictError", base.replace(day=2, minute=i)))
        store.catalog.append(METRICS, rows)
    fresh = Catalog(lambda: spark, store.paths, store._catalog.locks)  # no cache: reads the files
    every = fresh.rows(METRICS.name)
    assert len(every) == 24

    failed = pc.field("error_class").is_valid()
    columns = ["operation_id", "started_at", "error_class"]
    got = fresh.select(METRICS.name, columns, failed)
    oracle = [{c: r[c] for c in columns} for r in every if r["error_class"] is not None]
    key = lambda r: r["operation_id"]  # noqa: E731
    assert sorted(got, key=key) == sorted(oracle, key=key) and len(oracle) == 9
    assert all(r["started_at"].tzinfo is not None for r in got)

    newest = fresh.select(METRICS.name, columns, failed, newest=("started_at", 3))
    assert newest == sorted(oracle, key=lambda r: r["started_at"], reverse=True)[:3]
    assert [r["operation_id"] for r in newest] == ["op123", "op118", "op117"]  # day 2, by minute

    reconciles = fresh.select(METRICS.name, ["operation_id"], (pc.field("operation") == "reconcile") & ~failed)
    assert sorted(r["operation_id"] for r in reconciles) == sorted(
        r["operation_id"] for r in every if r["operation"] == "reconcile" and r["error_class"] is None
    ) == ["op003", "op006", "op009", "op015", "op018", "op027"]
    assert fresh.select(METRICS.name, columns, pc.field("table_name") == "nothing") == []
