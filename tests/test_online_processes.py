"""The online side across processes: a materialization killed half-way (readers see whole
vectors of a served version; a re-run finishes it), and `fs-spark serve` as users run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.online.encoding import decode_value, encode_key
from fs_spark.online.factory import online_store_spec
from servers import free_port

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
WIDE = FeatureTable(name="wide", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts",
                    features=[Feature(name=f"f{i}", dtype="double") for i in range(10)])
KEYS = 120_000


def _batch(spark, value, at):
    return spark.range(KEYS).selectExpr("id AS customer_id", f"timestamp'{at.isoformat()}' AS ts",
                                        *[f"CAST({value} AS double) AS f{i}" for i in range(10)])


@pytest.mark.slow
def test_a_materialization_killed_half_way_is_finished_by_the_next_run(store, spark):
    store.apply(WIDE)
    store.write("wide", _batch(spark, 1, T0))
    store.materialize("wide")
    store.write("wide", _batch(spark, 2, T0 + timedelta(hours=1)))
    spec = online_store_spec(store.settings.online, store.paths)
    online = spec.open()
    sample = [encode_key("wide", 1, [k]) for k in range(0, KEYS, 997)]
    job = subprocess.Popen([sys.executable, "-m", "fs_spark.cli", "--root", store.root, "materialize", "wide"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    killed = False
    while job.poll() is None and time.monotonic() < deadline:
        values = {decode_value(WIDE, raw).values[0] for raw in online.read(sample)}
        if 2.0 in values:  # some partitions have written: kill it now
            os.kill(job.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    job.wait(timeout=60)
    every = online.read([encode_key("wide", 1, [k]) for k in range(KEYS)])
    vectors = [decode_value(WIDE, raw) for raw in every]  # each key's vector is whole: it decodes
    assert all(v.values == (v.values[0],) * 10 and v.values[0] in (1.0, 2.0) for v in vectors)
    if killed:
        assert store.materialize("wide").kind == "incremental"  # the state still says version 1
    final = [decode_value(WIDE, raw) for raw in online.read([encode_key("wide", 1, [k]) for k in range(KEYS)])]
    assert {v.values for v in final} == {(2.0,) * 10} and {v.version_number for v in final} == {2}
    assert store.materialize("wide").kind == "none"
    assert killed, "the job finished before it could be killed: make the batch larger"


@pytest.mark.slow
def test_fs_spark_serve_answers_over_http_without_spark_from_two_processes(store, spark):
    store.apply(WIDE)
    store.write("wide", spark.createDataFrame([(7, T0, *[float(i) for i in range(10)])],
                                              "customer_id long, ts timestamp, " + ", ".join(f"f{i} double" for i in range(10))))
    store.materialize("wide")
    port = free_port()
    env = {**os.environ, "FS_SPARK_SPARK__JARS_DIR": os.devnull}  # no Delta jars: Spark could not start
    server = subprocess.Popen([sys.executable, "-m", "fs_spark.cli", "--root", store.root, "serve", "--port", str(port),
                               "--workers", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    health = json.loads(response.read())
                if "warm_up" not in health["checks"]:  # the worker's first health check is done
                    break
                assert time.monotonic() < deadline, "fs-spark serve did not finish its first health check"
                time.sleep(0.1)
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "fs-spark serve did not answer"
                time.sleep(0.1)
        assert health["status"] == "ok", health
        assert health["checks"]["online_store"]["detail"]["tables"]["wide"]["serves_version"] == 1
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/get-online-features",
            data=json.dumps({"features": ["wide:f3"], "entities": {"customer_id": [7, 8]}}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
        assert body["results"][1]["values"] == [3.0, None]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "(2 process(es))" in server.stdout.read()
