"""The command line, the spark-submit job and the quickstart, run as users run them."""

from __future__ import annotations

import pytest

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pyspark

from fs_spark import describe_catalog
from fs_spark.cli import main, run
from fs_spark.session import submit_args

from conftest import activity_table, make_store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "jobs"))
import quickstart  # noqa: E402  (jobs/ are scripts, not a package)


def cli(*argv: str) -> str:
    out = io.StringIO()
    assert run(list(argv), out=out) == 0
    return out.getvalue()


def test_cli_plans_applies_ingests_and_reads(spark, tmp_path, capsys):
    root = str(tmp_path / "store")
    defs = str(ROOT / "conf" / "features")
    assert "initialised store" in cli("--root", root, "init")
    assert cli("--root", root, "plan", defs).startswith("create      customer_activity v1 r1")
    cli("--root", root, "apply", defs)
    assert cli("--root", root, "plan", defs).startswith("unchanged   customer_activity v1 r1")
    assert cli("--root", root, "tables").split() == ["customer_activity"]

    data = str(tmp_path / "batch.parquet")
    quickstart.make_batch(spark, datetime(2024, 5, 1, tzinfo=timezone.utc), 50, seed=3).write.parquet(data)
    out = cli("--root", root, "--user", "cli-user", "ingest", "customer_activity", data, "--write-id", "b1")
    assert "version 1" in out and "50 rows written, 0 quarantined" in out
    versions = [json.loads(line) for line in cli("--root", root, "versions", "customer_activity", "--json").splitlines()]
    assert [(v["version_number"], v["row_count"], v["user"], v["write_id"]) for v in versions] == [(1, 50, "cli-user", "b1")]
    assert versions[0]["source_description"] == f"parquet:{data}"
    lines = cli("--root", root, "read", "customer_activity", "--version", "1", "--limit", "3").splitlines()
    assert lines[0].split("\t")[:3] == ["customer_id", "event_ts", "spend_7d"] and len(lines) == 4

    bad = str(tmp_path / "bad.parquet")
    quickstart.make_batch(spark, datetime(2024, 5, 2, tzinfo=timezone.utc), 20, seed=4, bad_rows=2).write.parquet(bad)
    assert main(["--root", root, "ingest", "customer_activity", bad]) == 2
    err = capsys.readouterr().err
    assert "ValidationError" in err and "spend_7d: rule range[0.0, None] broken by 2 row(s)" in err
    assert main(["--root", root, "read", "customer_activity", "--version", "9"]) == 2
    assert "VersionNotFoundError" in capsys.readouterr().err


def test_the_catalog_docs_match_the_catalog_schema():
    assert describe_catalog() in (ROOT / "docs" / "catalog.md").read_text()
    assert describe_catalog() in cli("catalog")


@pytest.mark.slow
def test_quickstart_runs_as_written(spark, tmp_path, capsys):
    quickstart.main(["--root", str(tmp_path / "qs"), "--customers", "200"])
    out = capsys.readouterr().out
    assert "version 1: 200 rows" in out
    assert "version 2: 197 rows, 3 quarantined" in out
    assert "latest: 397 rows" in out and "as of version 1: 200 rows" in out


def _submit(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    command = [str(spark_submit), "--master", "local[2]", *submit_args(), *args]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": os.path.dirname(pyspark.__file__),
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.mark.slow
def test_ingest_job_runs_under_spark_submit(spark, tmp_path):
    root = str(tmp_path / "store")
    data = str(tmp_path / "batch.parquet")
    quickstart.make_batch(spark, datetime(2024, 5, 1, tzinfo=timezone.utc), 40, seed=5).write.parquet(data)
    done = _submit("jobs/ingest.py", "--root", root, "--table", "customer_activity", "--input", data,
                   "--definitions", "conf/features", "--write-id", "submit-1")
    assert done.returncode == 0, done.stderr[-3000:]
    # the log configuration ships with submit-args: no INFO lines (there were thousands)
    assert " INFO " not in done.stderr and len(done.stderr.splitlines()) <= 3, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["version_number"], result["rows"], result["quarantined"]) == (1, 40, 0)
    store = make_store(spark, root)  # the same store, seen from this process
    assert [v.version_id for v in store.versions("customer_activity")] == [result["version_id"]]
    assert store.read("customer_activity").count() == 40

    # a refused batch: the clear message, and no Java stack trace before it
    bad = str(tmp_path / "bad.parquet")
    quickstart.make_batch(spark, datetime(2024, 5, 2, tzinfo=timezone.utc), 10, seed=6, bad_rows=2).write.parquet(bad)
    refused = _submit("jobs/ingest.py", "--root", root, "--table", "customer_activity", "--input", bad)
    # spark-submit passes the Python job's stderr on as its stdout
    assert refused.returncode == 2 and "ingest refused: ValidationError" in refused.stdout
    logged = refused.stdout + refused.stderr
    assert "\tat org.apache" not in logged and " INFO " not in logged and " WARN " not in logged, logged[-3000:]


@pytest.mark.slow
def test_ingest_stream_job_runs_under_spark_submit_and_stops_at_a_bad_batch(spark, tmp_path):
    root, incoming = str(tmp_path / "store"), tmp_path / "incoming"
    incoming.mkdir()
    make_store(spark, root).apply(activity_table())
    record = '{"customer_id": %d, "event_ts": "2024-01-01T0%d:00:00Z", "spend_7d": 1.0, "min_7d": 1.0, "max_7d": 2.0, "visits": %d, "segment": "new"}'
    (incoming / "a.json").write_text("\n".join(record % (i, i, 3) for i in range(4)) + "\n")
    args = ("jobs/ingest_stream.py", "--root", root, "--table", "customer_activity", "--json-dir", str(incoming))
    done = _submit(*args, "--available-now")
    assert done.returncode == 0, done.stderr[-3000:]
    store = make_store(spark, root)
    assert [v.row_count for v in store.versions("customer_activity")] == [4]
    (incoming / "b.json").write_text(record % (9, 9, -1) + "\n")  # visits below its minimum
    refused = _submit(*args, "--available-now")
    assert refused.returncode == 2 and "stream refused: ValidationError" in refused.stdout, refused.stdout[-2000:]
    assert "visits" in refused.stdout and "range" in refused.stdout
    assert [v.row_count for v in store.versions("customer_activity")] == [4]


_WORKER = """
import sys
from datetime import datetime, timedelta, timezone
from fs_spark import FeatureStore
from fs_spark.config import Settings, SparkSettings, StoreSettings
worker = int(sys.argv[2])
store = FeatureStore(settings=Settings(store=StoreSettings(root=sys.argv[1], user=f"worker{worker}"),
                                       spark=SparkSettings(master="local[1]", shuffle_partitions=1, driver_memory="1g")))
t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
for n in range(2):
    rows = [(1000 * worker + 100 * n + i, t0 + timedelta(hours=i), float(i), 1.0, 2.0, 1, "new") for i in range(10)]
    df = store.spark.createDataFrame(rows, "customer_id long, event_ts timestamp, spend_7d double, min_7d double, "
                                           "max_7d double, visits int, segment string")
    store.write("customer_activity", df, write_id=f"w{worker}-{n}")
"""


@pytest.mark.slow
def test_two_processes_writing_one_table_at_once_lose_nothing(spark, tmp_path):
    from conftest import activity_table

    root = str(tmp_path / "store")
    store = make_store(spark, root)
    store.apply(activity_table())
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, root, str(w)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for w in (1, 2)]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
    versions = store.versions("customer_activity")
    assert sorted(v.version_number for v in versions) == [1, 2, 3, 4]
    assert sorted(v.delta_version for v in versions) == [1, 2, 3, 4]
    assert sorted(v.write_id for v in versions) == ["w1-0", "w1-1", "w2-0", "w2-1"]
    assert store.read("customer_activity").count() == 40


def test_a_read_only_command_on_a_root_without_a_store_is_refused_and_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "fs_stroe"
    for command in (["versions", "customer_activity"], ["tables"], ["training-sets"], ["read", "customer_activity"]):
        assert main(["--root", str(typo), *command]) == 2
        assert f"StoreNotFoundError: no fs_spark store at {typo}" in capsys.readouterr().err
    assert not typo.exists()
    assert main(["--root", str(typo), "init"]) == 0 and (typo / "_catalog").is_dir()
    assert main(["--root", str(typo), "tables"]) == 0  # a store now: an empty list, no error


@pytest.mark.parametrize("root, shown", [
    ("s3a://bucket/odd root", "' '"), ("s3a://bucket/oddA%41ct", "'%'"), ("s3a://bucket/odd#root", "'#'"),
    ("/tmp/odd%41root", "'%'"), ("/tmp/odd?root", "'?'"), ("s3a://bucket/odd\troot", "'\\t'"),
])
def test_a_root_hadoop_or_delta_rs_would_read_as_another_path_is_refused_before_anything_is_written(
        root, shown, capsys, tmp_path):
    from fs_spark import FeatureStore
    from fs_spark.errors import StoreRootError

    import re

    with pytest.raises(StoreRootError, match=f"store root .* cannot be used: it holds {re.escape(shown)}"):
        FeatureStore(root)
    assert main(["--root", root, "init"]) == 2
    assert "StoreRootError" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()) and not os.path.exists("/tmp/odd%41root") and not os.path.exists("/tmp/odd?root")
