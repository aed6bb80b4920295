"""Training sets built as users build them: the command line, a spark-submit job (local and on a
real standalone cluster), stage progress, and the Databricks-format notebook."""

from __future__ import annotations

import io
import json
import os
import re
import runpy
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyspark
import pytest

from fs_spark import load_definitions
from fs_spark.cli import main, run
from fs_spark.notebook import local_dbutils
from fs_spark.progress import progress_line
from fs_spark.session import submit_args

from conftest import make_store

T0_LABEL = datetime(2024, 6, 1, tzinfo=timezone.utc)

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "conf" / "training" / "churn.yaml")
DAY = datetime(2024, 6, 1, tzinfo=timezone.utc)
SCHEMA = ("customer_id long, event_ts timestamp, spend_7d double, orders_7d int, min_order_7d double, "
          "max_order_7d double, segment string")


def _store_with_labels(spark, tmp_path):
    """A store with two days of customer_activity, and a Parquet file of labels."""
    store = make_store(spark, tmp_path / "store")
    store.apply(*load_definitions(ROOT / "conf" / "features"))
    for day in (0, 1):
        rows = [(c, DAY + timedelta(days=day), 10.0 * (day + 1), day + 1, 1.0, 9.0 + day, "loyal") for c in range(4)]
        store.write("customer_activity", spark.createDataFrame(rows, SCHEMA))
    labels = str(tmp_path / "labels")
    spark.createDataFrame(
        [(0, DAY + timedelta(hours=12), True), (1, DAY + timedelta(days=1), False), (7, DAY, True)],
        "customer_id long, event_ts timestamp, churned boolean",
    ).write.parquet(labels)
    return store, labels


def _expected(store, training_set_id):
    rows = store.training_set(training_set_id).load_df().drop("event_ts").collect()
    return [tuple(r) for r in rows]


EXPECTED = [(0, 10.0, 1, "loyal", 9.0, True), (1, 20.0, 2, "loyal", 10.0, False), (7, None, 0, None, None, True)]


@pytest.mark.slow
def test_cli_builds_lists_rebuilds_and_vacuums(spark, tmp_path, capsys):
    store, labels = _store_with_labels(spark, tmp_path)
    out = io.StringIO()
    assert run(["--root", store.root, "build-training-set", labels, "--spec", SPEC], out=out) == 0
    first = out.getvalue().splitlines()
    training_set_id = first[0].split()[2].rstrip(":")
    assert first[0].endswith(f"3 rows at {store.root}/training_sets/{training_set_id}/data")
    assert "customer_activity version 2" in first[1] and "spend_7d, orders_7d, segment" in first[1]
    assert _expected(store, training_set_id) == EXPECTED
    listing = io.StringIO()
    run(["--root", store.root, "training-sets"], out=listing)
    assert listing.getvalue().startswith(training_set_id) and "name=churn" in listing.getvalue()
    rebuilt = io.StringIO()
    run(["--root", store.root, "rebuild-training-set", training_set_id, "--limit", "2"], out=rebuilt)
    assert "matches" in rebuilt.getvalue() and len(rebuilt.getvalue().splitlines()) == 4
    vacuumed = io.StringIO()
    run(["--root", store.root, "vacuum", "customer_activity"], out=vacuumed)
    assert vacuumed.getvalue().startswith("customer_activity: 0 file(s) deleted")
    assert main(["--root", store.root, "build-training-set", labels, "--spec", str(tmp_path / "none.yaml")]) == 2
    assert "ConfigError" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.slow
def test_the_progress_line_names_each_step_with_its_tasks_and_rows(store, activity, spark):
    from conftest import activity_rows

    shown = _Terminal()
    with progress_line(out=shown, every=0.05):
        store.write("customer_activity", activity(activity_rows(200)))
        store.create_training_set(spark.createDataFrame([(1, T0_LABEL)], "customer_id long, event_ts timestamp"),
                                  ["customer_activity:spend_7d"])
        spark.range(0, 3_000_000, numPartitions=8).selectExpr("id % 1000 AS k").groupBy("k").count().collect()
    text = shown.getvalue()
    for words in ("reading the batch's content digest", "validating and writing", "committing · 200 rows",
                  "storing the entity rows", "joining and writing", " tasks"):
        assert words in text, words
    assert re.search(r"\[\d\d:\d\d\]", text)  # the elapsed time

    log = io.StringIO()  # not a terminal (a log, spark-submit): plain lines, every plain_every seconds
    with progress_line(out=log, every=0.05, plain_every=0.05):
        store.write("customer_activity", activity(activity_rows(5, start=500)))
    lines = log.getvalue().splitlines()
    assert lines and all(re.fullmatch(r"fs_spark: .+ \[\d+ s\]", line) for line in lines), lines
    assert any("validating and writing" in line for line in lines)
    quiet = io.StringIO()  # --quiet: nothing
    with progress_line(out=quiet, every=0.05, plain_every=0.05, quiet=True):
        store.write("customer_activity", activity(activity_rows(5, start=600)))
    assert quiet.getvalue() == ""


def test_the_progress_poll_before_the_session_is_built_says_nothing_and_raises_nothing(monkeypatch):
    """Spark registers a context before its JVM side exists; the poll must not trip on it."""
    from pyspark import SparkContext

    from fs_spark.progress import _spark_tasks

    half_built = object.__new__(SparkContext)
    monkeypatch.setattr(SparkContext, "_active_spark_context", half_built)
    assert _spark_tasks() is None


def _spark_env() -> dict[str, str]:
    return {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_HOME": os.path.dirname(pyspark.__file__),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def _build_job(master: str, store, labels, output, extra=()) -> subprocess.CompletedProcess:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    command = [str(spark_submit), "--master", master, *submit_args(), *extra, "jobs/build_training_set.py",
               "--root", store.root, "--entities", labels, "--spec", SPEC, "--output", output]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT, env=_spark_env())


def _check_job(done, store, output):
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == 3 and result["output_path"] == output
    assert _expected(store, result["training_set_id"]) == EXPECTED
    assert store.load_training_set(result["training_set_id"]).manifest.content_digest == result["content_digest"]
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def standalone_cluster(tmp_path):
    """A Spark master and one worker on 127.0.0.1, started from pyspark's own spark-class."""
    spark_class = str(Path(sys.executable).parent / "spark-class")
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    env = {**_spark_env(), "SPARK_WORKER_DIR": str(tmp_path / "work")}
    logs = [open(tmp_path / name, "w") for name in ("master.log", "worker.log")]
    master = subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(_free_port())],
                              stdout=logs[0], stderr=subprocess.STDOUT, env=env)
    worker = subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                               "--cores", "2", "--memory", "2g", "--webui-port", str(_free_port())],
                              stdout=logs[1], stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while "Registering worker" not in (tmp_path / "master.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "master.log").read_text()[-2000:]
            assert master.poll() is None and worker.poll() is None, "the cluster did not start"
            time.sleep(0.5)
        yield url
    finally:
        for process in (worker, master):
            process.terminate()
            process.wait(timeout=60)
        for log in logs:
            log.close()


@pytest.mark.slow
def test_build_job_runs_on_a_standalone_cluster(spark, tmp_path, standalone_cluster):
    store, labels = _store_with_labels(spark, tmp_path)
    package = shutil.make_archive(str(tmp_path / "fs_spark"), "zip", root_dir=ROOT, base_dir="fs_spark")
    output = str(tmp_path / "out")
    done = _build_job(standalone_cluster, store, labels, output, extra=["--py-files", package])
    _check_job(done, store, output)
    assert "app-" in (tmp_path / "master.log").read_text()  # the job ran as an application of the cluster


@pytest.mark.slow
def test_training_set_notebook_runs(spark, tmp_path, capsys):
    widgets = {"store_root": str(tmp_path / "store"), "definitions": str(ROOT / "conf" / "features"),
               "spec": SPEC, "label_day": "2024-06-03"}
    runpy.run_path(str(ROOT / "notebooks" / "training_set.py"),
                   init_globals={"spark": spark, "dbutils": local_dbutils(widgets)})
    out = capsys.readouterr().out
    assert "features version 2: 5 rows" in out
    assert ": 6 rows" in out
    assert "read customer_activity version 2" in out
    assert "digest matches, rows equal: True" in out
