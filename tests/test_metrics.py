"""The figures of each data path: in the store's Prometheus registry, in the catalog's `metrics`
table (queried here with Spark SQL), and pushed to a real Pushgateway. Rows are checked against
what the test wrote, bytes against the sizes of the files on disk, Spark's counts against a job
whose tasks are known."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import ACTIVITY_SCHEMA, activity_rows, activity_table
from servers import pushgateway

from fs_spark import FeatureLookup, FeatureNotFoundError, ValidationError
from fs_spark.config import ObservabilitySettings, Settings, StoreSettings
from fs_spark.store import FeatureStore

ROOT = Path(__file__).resolve().parent.parent


def sample(store, name: str, **labels) -> float:
    value = store.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def metrics_rows(spark, store) -> list[dict]:
    frame = spark.read.format("delta").load(str(Path(store.root) / "_catalog" / "metrics"))
    frame.createOrReplaceTempView("fs_metrics")
    query = "SELECT * FROM fs_metrics ORDER BY started_at, operation_id"
    return [r.asDict() for r in spark.sql(query).collect()]


def added_bytes_on_disk(table_path: str, delta_version: int) -> int:
    """The sizes, on disk, of the files one Delta commit added: the oracle of bytes written."""
    log = Path(table_path) / "_delta_log" / f"{delta_version:020d}.json"
    names = [json.loads(line)["add"]["path"] for line in log.read_text().splitlines() if '"add"' in line]
    return sum((Path(table_path) / name).stat().st_size for name in names)


def feature_chunk_bytes(table_path: str, delta_version: int, columns: list[str]) -> int:
    """The compressed sizes of `columns`' chunks in the files one Delta commit added, from the
    Parquet footers: what any scan of those columns must read at least once."""
    import pyarrow.parquet as pq

    log = Path(table_path) / "_delta_log" / f"{delta_version:020d}.json"
    names = [json.loads(line)["add"]["path"] for line in log.read_text().splitlines() if '"add"' in line]
    total = 0
    for name in names:
        meta = pq.ParquetFile(Path(table_path) / name).metadata
        for group in range(meta.num_row_groups):
            for index in range(meta.num_columns):
                chunk = meta.row_group(group).column(index)
                if chunk.path_in_schema in columns:
                    total += chunk.total_compressed_size
    return total


def test_a_write_counts_its_rows_bytes_and_spark_tasks(store, activity, spark):
    version = store.write("customer_activity", activity(activity_rows(30)), write_id="w1")
    on_disk = added_bytes_on_disk(version.storage_path, version.delta_version)
    assert on_disk > 0
    assert sample(store, "fs_spark_operation_rows_total", operation="ingest") == 30
    assert sample(store, "fs_spark_operation_bytes_total", operation="ingest") == on_disk
    assert sample(store, "fs_spark_operation_seconds_count", operation="ingest") == 1
    assert sample(store, "fs_spark_operation_spark_tasks_total", operation="ingest") > 0

    (row,) = [r for r in metrics_rows(spark, store) if r["operation"] == "ingest"]
    assert (row["table_name"], row["rows"], row["bytes"], row["retries"], row["error_class"]) == (
        "customer_activity", 30, on_disk, 0, None)
    assert row["spark_jobs"] > 0 and row["spark_tasks"] >= row["spark_stages"] > 0 and row["spark_failed_tasks"] == 0
    assert row["user"] == "tester" and row["seconds"] > 0

    # the same write again is a retry: no rows, no bytes, one retry
    assert store.write("customer_activity", activity(activity_rows(30)), write_id="w1") == version
    assert sample(store, "fs_spark_operation_retries_total", operation="ingest") == 1
    assert sample(store, "fs_spark_operation_rows_total", operation="ingest") == 30
    assert [r["retries"] for r in metrics_rows(spark, store) if r["operation"] == "ingest"] == [0, 1]


def test_a_refused_write_is_counted_by_its_error_class(store, activity, spark):
    bad = activity_rows(5)
    bad[2] = (*bad[2][:5], -1, "new")  # visits below its minimum
    with pytest.raises(ValidationError):
        store.write("customer_activity", activity(bad))
    with pytest.raises(ValidationError):
        store.write("customer_activity", activity(bad))
    assert sample(store, "fs_spark_operation_errors_total", operation="ingest", error="ValidationError") == 2
    assert sample(store, "fs_spark_operation_rows_total", operation="ingest") == 0
    rows = metrics_rows(spark, store)
    assert [(r["operation"], r["error_class"], r["rows"]) for r in rows] == [("ingest", "ValidationError", 0)] * 2
    assert "visits" in rows[0]["error"]


@pytest.mark.usefixtures("production_plans")  # adaptive execution's own extra job is counted too
def test_spark_figures_are_spark_own_task_counts(store, spark):
    """A count over 7 partitions runs 7 tasks, then 1 for the final sum: Spark's numbers, counted.
    Adaptive execution runs the shuffle's map stage as a job of its own: two jobs."""
    with store.metrics.measure("drift", "by_hand") as measure:
        measure.add(rows=spark.range(0, 1000, numPartitions=7).count())
    (row,) = metrics_rows(spark, store)
    assert (row["rows"], row["spark_jobs"], row["spark_tasks"], row["spark_failed_tasks"]) == (1000, 2, 8, 0)
    assert row["spark_stages"] == 2 and row["spark_input_bytes"] == 0  # a range reads no input
    # a job outside the measured block is not counted in it
    spark.range(0, 10, numPartitions=3).count()
    with store.metrics.measure("drift", "nothing"):
        pass
    assert metrics_rows(spark, store)[-1]["spark_tasks"] == 0


def stored_vector_sizes(store) -> dict[bytes, tuple[int, int]]:
    """Each key of the embedded online store with the sizes of the key and its value."""
    with sqlite3.connect(store._online.spec.location) as db:
        return {k: (len(k), len(v)) for k, v in db.execute("SELECT key, value FROM vectors")}


@pytest.mark.slow
def test_training_sets_materializations_drift_and_online_reads_are_measured(store, activity, spark):
    store.write("customer_activity", activity(activity_rows(40)))
    store.write("customer_activity", activity(activity_rows(20, start=40)))
    entities = spark.createDataFrame([(i, activity_rows(1, start=i)[0][1]) for i in range(10)], "customer_id long, ts timestamp")
    lookup = FeatureLookup(table_name="customer_activity", feature_names=["spend_7d"], lookup_key="customer_id",
                           timestamp_lookup_key="ts")
    built = store.create_training_set(entities, [lookup])
    materialized = store.materialize("customer_activity")
    store.quality.check_drift("customer_activity")
    store.get_online_features(["customer_activity:spend_7d"], [{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 999}])

    rows = {r["operation"]: r for r in metrics_rows(spark, store)}
    assert rows["training_set"]["rows"] == 10 == built.manifest.row_count
    assert rows["training_set"]["bytes"] == added_bytes_on_disk(built.manifest.output_path,
                                                                  built.manifest.output_delta_version)
    assert json.loads(rows["training_set"]["tags_json"]) == {"training_set_id": built.id}
    assert rows["materialize"]["rows"] == materialized.keys_written == 60
    # the bytes sent to the online store: the keys and values the embedded store now holds, read
    # with SQLite itself (one write per key, the first materialization)
    sizes = stored_vector_sizes(store)
    assert rows["materialize"]["bytes"] == materialized.bytes_sent == sum(k + v for k, v in sizes.values()) > 0
    assert rows["drift"]["rows"] == 40 + 20 and rows["drift"]["table_name"] == "customer_activity"
    # the bytes compared are what Spark's scans read (its stages' input metrics): at least every
    # column chunk of the compared features in the two versions' files once (their sizes read with
    # pyarrow from the Parquet footers), at most each of those files whole once per scanning stage
    first, second = store.versions("customer_activity")
    features = [f.name for f in activity_table().features]
    chunks = sum(feature_chunk_bytes(v.storage_path, v.delta_version, features) for v in (first, second))
    whole = sum(added_bytes_on_disk(v.storage_path, v.delta_version) for v in (first, second))
    drift = rows["drift"]
    assert drift["bytes"] == drift["spark_input_bytes"]
    assert chunks <= drift["bytes"] <= whole * drift["spark_stages"], (chunks, drift["bytes"], whole)
    assert chunks > 0 and rows["training_set"]["spark_input_bytes"] > 0
    assert "online_read" not in rows  # in the registry only
    assert sample(store, "fs_spark_online_read_rows_total") == 3
    assert sample(store, "fs_spark_online_read_seconds_count") == 1
    assert sample(store, "fs_spark_online_read_seconds_bucket", le="+Inf") == 1
    # bytes fetched from the online store: the values of the two keys it holds (999 it has not)
    fetched = [v for key, (_, v) in sizes.items() if key in (b"fs:customer_activity:v1:i1;", b"fs:customer_activity:v1:i2;")]
    assert len(fetched) == 2 and sample(store, "fs_spark_online_read_bytes_total") == sum(fetched)
    with pytest.raises(FeatureNotFoundError):
        store.get_online_features(["customer_activity:no_such_feature"], [{"customer_id": 1}])
    assert sample(store, "fs_spark_online_read_errors_total", error="FeatureNotFoundError") == 1


def test_the_metrics_table_can_be_turned_off(spark, tmp_path):
    settings = Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
                        observability=ObservabilitySettings(metrics_table=False))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(activity_table())
    store.write("customer_activity", spark.createDataFrame(activity_rows(3), ACTIVITY_SCHEMA))
    assert sample(store, "fs_spark_operation_rows_total", operation="ingest") == 3
    assert store.catalog.rows("metrics") == []


@pytest.mark.slow
def test_batch_figures_are_pushed_to_a_pushgateway(spark, tmp_path):
    with pushgateway() as address:
        settings = Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
                            observability=ObservabilitySettings(pushgateway=address, push_job="nightly_ingest"))
        store = FeatureStore(spark=spark, settings=settings)
        store.apply(activity_table())
        store.write("customer_activity", spark.createDataFrame(activity_rows(12), ACTIVITY_SCHEMA))
        store.write("customer_activity", spark.createDataFrame(activity_rows(5, start=12), ACTIVITY_SCHEMA))
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            text = response.read().decode()
    lines = [line for line in text.splitlines() if line.startswith("fs_spark_operation_rows_total{")]
    ingest = [line for line in lines if 'operation="ingest"' in line]
    assert len(ingest) == 1 and 'job="nightly_ingest"' in ingest[0], lines
    assert float(ingest[0].rsplit(" ", 1)[1]) == 17


_FLAKY = """
import json, sys
from pyspark import TaskContext
from pyspark.sql import functions as F
from pyspark.sql.types import LongType
from fs_spark import FeatureStore
from fs_spark.config import Settings, SparkSettings, StoreSettings

# local[2,2]: two cores, and a task may fail once and be run again (Spark's maxFailures)
settings = Settings(store=StoreSettings(root=sys.argv[1], user="tester"),
                    spark=SparkSettings(master="local[2,2]", shuffle_partitions=2, driver_memory="1g"))
store = FeatureStore(settings=settings)

@F.udf(LongType())
def flaky(x):
    task = TaskContext.get()
    if task.partitionId() == 0 and task.attemptNumber() == 0:
        raise RuntimeError("the first attempt of partition 0 is lost")
    return x

with store.metrics.measure("drift", "flaky") as measure:
    measure.add(rows=store.spark.range(0, 100, numPartitions=4).agg(F.sum(flaky("id"))).first()[0])
row = store.catalog.rows("metrics")[-1]
print(json.dumps({k: row[k] for k in ("rows", "retries", "spark_tasks", "spark_failed_tasks")}
                 | {"counter": store.metrics.registry.get_sample_value("fs_spark_operation_retries_total",
                                                                      {"operation": "drift"})}))
"""


@pytest.mark.slow
def test_a_task_spark_ran_again_is_a_retry(tmp_path):
    """A real task failure and Spark's own retry of it, in a session that allows one (its own
    process: the shared session's master allows none): counted as a failed attempt and a retry."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _FLAKY, str(tmp_path / "store")], capture_output=True, text=True,
                          env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # sum(0..99) = 4950; four partitions and the final sum completed, one attempt failed and was retried
    assert figures == {"rows": 4950, "retries": 1, "spark_tasks": 5, "spark_failed_tasks": 1, "counter": 1.0}
