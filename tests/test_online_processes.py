"""The online side across OS processes: a materialization killed half-way (readers see whole
vectors of a served version; a re-run finishes it), `fs-spark serve` as users run it, a feature
added while a server runs, and governance acted on by a process configured for the other store."""

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


def _environment(online, *, spark: bool = True) -> dict[str, str]:
    """The environment of an `fs-spark` process configured for `online` (OnlineSettings)."""
    env = {**os.environ, "FS_SPARK_ONLINE__KIND": online.kind, "FS_SPARK_ONLINE__REDIS_URL": online.redis_url}
    if not spark:
        env["FS_SPARK_SPARK__JARS_DIR"] = os.devnull  # no Delta jars: Spark could not start
    return env


def _fs_spark(root: str, env: dict[str, str], *args: str) -> str:
    """Run one `fs-spark` command in its own process; its standard output."""
    done = subprocess.run([sys.executable, "-m", "fs_spark.cli", "--root", root, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _start_server(root: str, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str, dict]:
    """`fs-spark serve` in its own process, once its first health check is done: the process,
    its URL and that health."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "fs_spark.cli", "--root", root, "serve", "--port", str(port),
                               *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                health = json.loads(response.read())
            if "warm_up" not in health["checks"]:  # the worker's first health check is done
                return server, f"http://127.0.0.1:{port}", health
            assert time.monotonic() < deadline, "fs-spark serve did not finish its first health check"
            time.sleep(0.1)
        except OSError:
            if server.poll() is not None:
                raise AssertionError(server.stderr.read()) from None
            assert time.monotonic() < deadline, "fs-spark serve did not answer"
            time.sleep(0.1)


def _stop(server: subprocess.Popen) -> str:
    server.terminate()
    server.wait(timeout=30)
    return server.stdout.read()


@pytest.mark.slow
def test_fs_spark_serve_answers_over_http_without_spark_from_two_processes(store, spark):
    store.apply(WIDE)
    store.write("wide", spark.createDataFrame([(7, T0, *[float(i) for i in range(10)])],
                                              "customer_id long, ts timestamp, " + ", ".join(f"f{i} double" for i in range(10))))
    store.materialize("wide")
    server, url, health = _start_server(store.root, _environment(store.settings.online, spark=False), "--workers", "2")
    port = url.rsplit(":", 1)[1]
    try:
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
        output = _stop(server)
    assert "(2 process(es))" in output


@pytest.mark.slow
def test_a_feature_added_while_fs_spark_serve_runs_reads_there_and_in_a_process_started_after(online_store, spark):
    """Issue: `apply` adding a feature broke reads in a server started before it (400s) and in
    processes started after it (500s). Here both are OS processes of their own, on either store:
    the server and `fs-spark get-online-features` decode the stored bytes by the revision they
    were written with before the next materialization, and the new ones after it."""
    from test_online_schema_change import AFTER, BEFORE, NOW, _served

    store = online_store
    store.apply(BEFORE)
    store.write("scores", spark.createDataFrame(
        [(1, NOW - timedelta(hours=2), 10, "a"), (2, NOW - timedelta(hours=2), None, "b")],
        "customer_id long, ts timestamp, score int, label string"))
    store.materialize("scores")
    env = _environment(store.settings.online, spark=False)
    every = ["scores:score", "scores:weight", "scores:label"]

    def new_process(customer_id: int) -> dict:
        args = [a for f in every for a in ("--features", f)]
        return json.loads(_fs_spark(store.root, env, "get-online-features", *args, "--entity", f"customer_id={customer_id}"))

    server, url, _ = _start_server(store.root, env)
    try:
        assert _served(url, ["scores:score", "scores:label"]) == {"customer_id": [1, 2, 3], "score": [10, None, None],
                                                                  "label": ["a", "b", None]}
        store.apply(AFTER)  # a feature added, `score` widened to a double
        time.sleep(0.2)  # past the readers' state check interval (100 ms)
        assert _served(url, every) == {"customer_id": [1, 2, 3], "score": [10.0, None, None], "weight": [None, None, None],
                                       "label": ["a", "b", None]}
        assert new_process(1) == {"customer_id": 1, "score": 10.0, "weight": None, "label": "a"}
        store.write("scores", spark.createDataFrame(
            [(1, NOW - timedelta(hours=1), 11.5, 0.5, "a2"), (3, NOW - timedelta(hours=1), 30.0, None, "c")],
            "customer_id long, ts timestamp, score double, weight double, label string"))
        store.materialize("scores")
        time.sleep(0.2)
        assert _served(url, every) == {"customer_id": [1, 2, 3], "score": [11.5, None, 30.0], "weight": [0.5, None, None],
                                       "label": ["a2", "b", "c"]}
        assert new_process(1) == {"customer_id": 1, "score": 11.5, "weight": 0.5, "label": "a2"}
        assert new_process(2) == {"customer_id": 2, "score": None, "weight": None, "label": "b"}
    finally:
        _stop(server)


@pytest.mark.slow
def test_governance_by_a_process_configured_for_the_other_store_withholds_values_in_both(spark, tmp_path, redis_url):
    """Issue: a quarantine or rollback reached only the acting process's online store. Here the
    embedded store is materialized by this process, Redis by an `fs-spark` process configured for
    it; a quarantine from a Redis-configured `fs-spark` process and a rollback from this one
    (configured for the embedded store) withhold the values in both, as a reader of each, in this
    process and in one of its own, sees."""
    import redis

    from fs_spark import FeatureStore
    from fs_spark.config import OnlineSettings, Settings, StoreSettings
    from test_online_materialization import ITEMS, SCHEMA, online, oracle

    redis.Redis.from_url(redis_url).flushall()
    root = StoreSettings(root=str(tmp_path / "s"), user="tester")
    in_redis = OnlineSettings(kind="redis", redis_url=redis_url)
    here = FeatureStore(spark=spark, settings=Settings(store=root))
    here.apply(ITEMS)
    keys = [("a", i) for i in range(20)]
    batches = {}
    for n, price in ((1, 1.0), (2, 2.0)):
        rows = [(z, i, T0 + timedelta(minutes=n), price + i, f"v{n}") for z, i in keys]
        batches[here.write("items", spark.createDataFrame(rows, SCHEMA)).version_number] = rows
    here.materialize("items")
    assert "serves #2" in _fs_spark(root.root, _environment(in_redis), "materialize", "items")

    def readers():  # fresh readers in this process, one per store
        return [FeatureStore(spark=spark, settings=Settings(store=root, online=o)) for o in (OnlineSettings(), in_redis)]

    for reader in readers():
        assert online(reader, keys) == oracle(batches, {1, 2})
    _fs_spark(root.root, _environment(in_redis, spark=False), "quarantine", "items", "2", "--reason", "bad upstream")
    for reader in readers():  # version 2's values withheld: no key has one served until the next run
        assert online(reader, keys) == {}
    here.release_version("items", 2)
    for reader in readers():
        assert online(reader, keys) == oracle(batches, {1, 2})
    here.rollback("items", 1, reason="version 2 was wrong")
    for reader in readers():
        assert online(reader, keys) == {}
    redis_process = json.loads(_fs_spark(root.root, _environment(in_redis, spark=False), "get-online-features",
                                         "--features", "items:price", "--entity", "zone=a", "--entity", "item=3"))
    assert redis_process == {"zone": "a", "item": 3, "price": None}
