"""The layout lets reads prune by key, time and version (measured from the scan's metrics), and
concurrent writers lose nothing."""

from __future__ import annotations

import pytest

import threading
from datetime import timedelta

from pyspark.sql import functions as F

from conftest import ACTIVITY_SCHEMA, T0, activity_rows, activity_table


def files_read(frame) -> tuple[int, int]:
    """Run `frame` and return (files read, rows) from its parquet scan's metrics."""
    rows = frame.collect()
    plan = frame._jdf.queryExecution().executedPlan()
    if plan.getClass().getSimpleName() == "AdaptiveSparkPlanExec":
        plan = plan.finalPhysicalPlan()
    leaves = plan.collectLeaves()
    scans = [leaves.apply(i) for i in range(leaves.size()) if "Scan" in leaves.apply(i).nodeName()]
    assert len(scans) == 1
    return int(scans[0].metrics().apply("numFiles").value()), len(rows)


@pytest.mark.slow
def test_reads_filtered_by_key_time_or_version_skip_files(store, activity, spark):
    # Version 1: 2000 keys in January (range-partitioned into files of disjoint key ranges);
    # versions 2 and 3: other keys, in later months.
    jan = [(k, T0 + timedelta(days=k % 28), 1.0, 1.0, 2.0, 1, "new") for k in range(2000)]
    store.write("customer_activity", activity(jan))
    for i in (1, 2):
        rows = [(k, T0 + timedelta(days=45 * i + k % 10), 1.0, 1.0, 2.0, 1, "new") for k in range(5000 * i, 5000 * i + 500)]
        store.write("customer_activity", activity(rows))
    everything = store.read("customer_activity", include_version_column=True)
    total_files, total_rows = files_read(everything)
    assert total_rows == 3000 and total_files >= 4

    by_key = files_read(everything.where(F.col("customer_id") == 1500))
    assert by_key == (1, 1)
    by_time = files_read(everything.where(F.col("event_ts") >= T0 + timedelta(days=85)))
    assert by_time[1] == 500 and by_time[0] < total_files
    by_version = files_read(everything.where(F.col("_fs_version") == 2))
    assert by_version == (1, 500)

    path = store.paths.table("customer_activity", 1)
    partitions = {p.name for p in __import__("pathlib").Path(path).iterdir() if p.name.startswith("_fs_time_bucket=")}
    assert partitions == {"_fs_time_bucket=2024-01", "_fs_time_bucket=2024-02", "_fs_time_bucket=2024-03",
                          "_fs_time_bucket=2024-04"}


@pytest.mark.slow
def test_eight_threads_writing_at_once_lose_nothing(store, spark):
    names = [f"table_{i}" for i in range(4)]
    store.apply(*[activity_table(name=n) for n in names])
    results, errors = [], []

    def write(thread: int) -> None:
        try:
            name = names[thread % 4]
            rows = activity_rows(10, start=100 * thread)
            frame = spark.createDataFrame(rows, ACTIVITY_SCHEMA)
            results.append((thread, store.write(name, frame, write_id=f"thread-{thread}")))
        except Exception as exc:  # surfaced below with the thread that failed
            errors.append((thread, exc))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 8
    recorded = store.catalog.versions()
    assert sorted(v.version_id for v in recorded) == sorted(v.version_id for _, v in results)
    for name in names:
        mine = [v for v in recorded if v.table_name == name]
        assert sorted(v.version_number for v in mine) == [1, 2]
        assert sorted(v.delta_version for v in mine) == [1, 2]
        expected = sorted(100 * t + i for t in range(8) if names[t % 4] == name for i in range(10))
        assert sorted(r.customer_id for r in store.read(name).collect()) == expected
