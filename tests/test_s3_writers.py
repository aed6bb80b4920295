"""Writers on many hosts share an S3 root safely: Delta's commits through S3's conditional
writes, fs_spark's version numbering and catalog under lease locks in the bucket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import activity_table, make_store, new_bucket
from py4j.protocol import Py4JJavaError

from fs_spark import LockLostError, LockTimeoutError
from fs_spark.session import hadoop_conf, jvm
from fs_spark.storage import s3 as s3_api
from fs_spark.storage.delta_log import _commit_lines
from fs_spark.storage.s3_lease import S3Leases

pytestmark = pytest.mark.slow  # an S3 server, and writer processes with Spark sessions of their own

ROOT = Path(__file__).resolve().parent.parent
# Writes per host, as the issue asks: the writes to one table are serialised by its lock, about
# 1 s each on this S3 server with two hosts on 2 cores.
WRITES = int(os.environ.get("FS_SPARK_TEST_HOST_WRITES", "50"))

# One "host": a process with its own Spark session, its own settings and no lock folder shared
# with the other; it writes WRITES batches of 3 rows, each with its own write identity.
_HOST = """
import sys
from datetime import datetime, timedelta, timezone
from fs_spark import FeatureStore
from fs_spark.config import ObservabilitySettings, S3Settings, Settings, SparkSettings, StoreSettings
root, endpoint, host, writes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# No `metrics` rows: each would be one more catalog commit under the catalog's lock, a third of a
# write's time here, and they are not what this test checks. The plans of the tests' own session
# (conftest.TEST_PLANS): on 3-row batches, planning costs more than running.
settings = Settings(store=StoreSettings(root=root, user=f"host{host}"),
                    spark=SparkSettings(master="local[1]", shuffle_partitions=1, driver_memory="1g",
                                        conf={"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}),
                    observability=ObservabilitySettings(metrics_table=False),
                    s3=S3Settings(endpoint=endpoint, region="us-east-1", path_style_access=True))
store = FeatureStore(settings=settings)
t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
schema = "customer_id long, event_ts timestamp, spend_7d double, min_7d double, max_7d double, visits int, segment string"
for n in range(writes):
    rows = [(100_000 * host + 10 * n + i, t0 + timedelta(hours=i), float(n), 1.0, 2.0, i, "new") for i in range(3)]
    store.write("customer_activity", store.spark.createDataFrame(rows, schema), write_id=f"host{host}-{n}")
"""


def test_two_hosts_writing_one_table_at_once_number_every_version_once(spark, s3):
    root = f"s3a://{new_bucket(s3)}/store"
    store = make_store(spark, root, s3)
    store.apply(activity_table())
    hosts = [
        subprocess.Popen([sys.executable, "-c", _HOST, root, s3.endpoint, str(h), str(WRITES)], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        for h in (1, 2)
    ]
    for host in hosts:
        _, err = host.communicate(timeout=900)
        assert host.returncode == 0, err[-3000:]
    versions = store.versions("customer_activity")
    # 100 versions, numbered 1..100 without a gap or a duplicate, each its own Delta commit.
    assert [v.version_number for v in versions] == list(range(1, 2 * WRITES + 1))
    assert sorted(v.write_id for v in versions) == sorted(f"host{h}-{n}" for h in (1, 2) for n in range(WRITES))
    assert sorted(v.delta_version for v in versions) == list(range(1, 2 * WRITES + 1))
    # The hosts really wrote at once: their versions interleave.
    order = [v.write_id.split("-")[0] for v in versions]
    assert sum(a != b for a, b in zip(order, order[1:])) >= 3
    # Every catalog row matches its Delta commit: the commit carries that version's identity.
    path = versions[0].storage_path
    for version in versions:
        [info] = [json.loads(line)["commitInfo"] for line in _commit_lines(spark, path, version.delta_version)
                  if "commitInfo" in line]
        carried = json.loads(info["userMetadata"])["fs_spark"]
        assert (carried["version_id"], carried["version_number"]) == (version.version_id, version.version_number)
    # Every row once, each in the version of its own write.
    rows = store.read("customer_activity").select("customer_id").collect()
    expected = {100_000 * h + 10 * n + i for h in (1, 2) for n in range(WRITES) for i in range(3)}
    assert len(rows) == len(expected) and {r.customer_id for r in rows} == expected
    tenth = versions[9]
    before = {r.customer_id for r in store.read("customer_activity", version=9).collect()}
    added = {r.customer_id for r in store.read("customer_activity", version=10).collect()} - before
    host, n = tenth.write_id.removeprefix("host").split("-")
    assert added == {100_000 * int(host) + 10 * int(n) + i for i in range(3)}


def test_the_s3_log_store_lets_one_of_two_writers_create_a_commit(spark, s3):
    table = f"s3a://{new_bucket(s3)}/t"
    view = jvm(spark)
    log_store = view.fs_spark.S3ConditionalLogStore(hadoop_conf(spark))
    commit = view.org.apache.hadoop.fs.Path(f"{table}/_delta_log/00000000000000000000.json")

    def lines(*texts):
        listed = view.java.util.ArrayList()
        for text in texts:
            listed.add(text)
        return listed.iterator()

    log_store.write(commit, lines('{"first":1}'), False, hadoop_conf(spark))
    with pytest.raises(Py4JJavaError) as refused:
        log_store.write(commit, lines('{"second":2}'), False, hadoop_conf(spark))
    assert "FileAlreadyExistsException" in str(refused.value.java_exception)
    bucket, key = s3_api.split(f"{table}/_delta_log/00000000000000000000.json")
    assert s3_api.client(s3).get_object(Bucket=bucket, Key=key)["Body"].read() == b'{"first":1}\n'
    log_store.write(commit, lines('{"third":3}'), True, hadoop_conf(spark))  # an overwrite is a plain write
    assert s3_api.client(s3).get_object(Bucket=bucket, Key=key)["Body"].read() == b'{"third":3}\n'


def test_the_commit_fence_lets_a_write_past_commits_without_data_and_no_further(spark, s3):
    """The log store's fence, commit file by commit file: a later version is allowed only past
    commits that changed no data (a VACUUM's or OPTIMIZE's); an earlier one never."""
    table = f"s3a://{new_bucket(s3)}/t"
    bucket, key = s3_api.split(f"{table}/_delta_log")
    view = jvm(spark)
    log_store = view.fs_spark.S3ConditionalLogStore(hadoop_conf(spark))
    fenced = view.fs_spark.S3ConditionalLogStore

    def write(version, *lines):
        listed = view.java.util.ArrayList()
        for line in lines:
            listed.add(line)
        path = view.org.apache.hadoop.fs.Path(f"{table}/_delta_log/{version:020d}.json")
        log_store.write(path, listed.iterator(), False, hadoop_conf(spark))

    def put(version, text):  # another writer's commit, straight to the bucket
        s3_api.client(s3).put_object(Bucket=bucket, Key=f"{key}/{version:020d}.json", Body=text.encode())

    data = '{"add":{"path":"a.parquet","dataChange":true}}'
    write(0, data)
    fenced.expectNextCommit(table, 1)
    try:
        put(1, '{"commitInfo":{"operation":"VACUUM END"}}\n{"remove":{"path":"x","dataChange":false}}')
        write(2, data)  # past a commit that changed no data: allowed
        fenced.expectNextCommit(table, 3)
        put(3, data)  # another writer's data
        with pytest.raises(Py4JJavaError, match="FS_SPARK_FENCED"):
            write(4, data)
        fenced.expectNextCommit(table, 6)
        with pytest.raises(Py4JJavaError, match="FS_SPARK_FENCED: this writer may commit only version 6"):
            write(5, data)
    finally:
        fenced.clearExpectation(table)
    write(5, data)  # no expectation: any version
    assert s3_api.client(s3).get_object(Bucket=bucket, Key=f"{key}/{5:020d}.json")["Body"].read() == (data + "\n").encode()


def _leases(s3, bucket, seconds=60.0):
    return S3Leases(f"s3a://{bucket}/store/_locks", s3.model_copy(update={"lock_lease_seconds": seconds}))


def test_a_lease_lock_excludes_a_second_holder_until_released(s3):
    bucket = new_bucket(s3)
    first, second = _leases(s3, bucket), _leases(s3, bucket)
    events, held = [], second.hold("spend", timeout=30)

    def wait_then_take():
        held.__enter__()
        events.append("2 holds")

    with first.hold("spend", timeout=5):
        waiter = threading.Thread(target=wait_then_take)
        waiter.start()
        time.sleep(1.0)
        events.append("1 releases")
    waiter.join(timeout=30)
    assert events == ["1 releases", "2 holds"]
    with pytest.raises(LockTimeoutError, match="'spend' within 1s"):
        with first.hold("spend", timeout=1):
            pass
    held.__exit__(None, None, None)
    with first.hold("spend", timeout=5):  # released: taken at once
        pass


def test_a_dead_writers_lease_is_taken_over_and_a_stalled_holder_learns_it_lost(s3):
    bucket = new_bucket(s3)
    client = s3_api.client(s3)
    key = "store/_locks/spend.lock"
    # A writer that died holding the lock: its lease object, never renewed.
    client.put_object(Bucket=bucket, Key=key, Body=b"{}", Metadata={"lease-seconds": "2"})
    started = time.monotonic()
    with _leases(s3, bucket).hold("spend", timeout=30):
        waited = time.monotonic() - started
    assert 1.0 <= waited < 10
    # A holder whose lease another writer overwrote while it held the lock (it stalled past
    # its lease): its renewal fails, and its write ends with LockLostError.
    with pytest.raises(LockLostError, match="'spend'.*taken over"):
        with _leases(s3, bucket, seconds=3).hold("spend", timeout=5):
            client.put_object(Bucket=bucket, Key=key, Body=b"{}")
            time.sleep(1.5)


# A writer that stops (SIGSTOP) while it holds the table's lock, just before its Delta commit:
# it prints "holding" and waits there a moment for the test to stop it.
_STALLED_WRITER = """
import sys, time
from datetime import datetime, timezone
from fs_spark import FeatureStore, LockLostError
from fs_spark.config import ObservabilitySettings, S3Settings, Settings, SparkSettings, StoreSettings
from fs_spark.ingest.writer import FeatureWriter
root, endpoint = sys.argv[1], sys.argv[2]
s3 = S3Settings(endpoint=endpoint, region="us-east-1", path_style_access=True, lock_lease_seconds=5) if endpoint else S3Settings()
settings = Settings(store=StoreSettings(root=root, user="stalled"), s3=s3,
                    spark=SparkSettings(master="local[1]", shuffle_partitions=1, driver_memory="1g"),
                    observability=ObservabilitySettings(metrics_table=False))
store = FeatureStore(settings=settings)
append = FeatureWriter._append
def announced(self, *args, **kwargs):
    print("holding", flush=True)
    time.sleep(1.0)
    return append(self, *args, **kwargs)
FeatureWriter._append = announced
schema = "customer_id long, event_ts timestamp, spend_7d double, min_7d double, max_7d double, visits int, segment string"
rows = [(900, datetime(2024, 1, 1, tzinfo=timezone.utc), 1.0, 1.0, 2.0, 1, "new")]
try:
    version = store.write("customer_activity", store.spark.createDataFrame(rows, schema), write_id="stalled")
    print("wrote", version.version_number, version.delta_version, flush=True)
except LockLostError as error:
    print("lost", str(error).replace(chr(10), " "), flush=True)
"""


def _stalled_writer(root: str, endpoint: str) -> subprocess.Popen:
    """The writer above, stopped once it holds the lock (its lease renewals stop with it)."""
    import signal

    writer = subprocess.Popen([sys.executable, "-c", _STALLED_WRITER, root, endpoint], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    line = writer.stdout.readline()
    if line.strip() != "holding":
        writer.kill()
        raise AssertionError(f"the writer did not reach its commit: {line!r} {writer.stderr.read()[-3000:]}")
    writer.send_signal(signal.SIGSTOP)
    return writer


def _resumed(writer: subprocess.Popen) -> str:
    import signal

    writer.send_signal(signal.SIGCONT)
    out, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err[-3000:]
    return out.strip()


def _batch(spark, key: int):
    from conftest import ACTIVITY_SCHEMA, T0

    return spark.createDataFrame([(key, T0, 1.0, 1.0, 2.0, 1, "new")], ACTIVITY_SCHEMA)


def test_a_writer_stalled_past_its_lease_on_s3_commits_nothing_and_is_told(spark, s3):
    """Fencing: the stalled writer's lease is taken over and the new holder commits twice; when
    the stalled one resumes, its commit is refused (LockLostError), so no number is used twice."""
    root = f"s3a://{new_bucket(s3)}/store"
    other = make_store(spark, root, s3.model_copy(update={"lock_lease_seconds": 5}))
    other.apply(activity_table())
    other.write("customer_activity", _batch(spark, 1))
    stalled = _stalled_writer(root, s3.endpoint)
    try:
        second = other.write("customer_activity", _batch(spark, 2))  # waits out the stopped writer's lease
        third = other.write("customer_activity", _batch(spark, 3))
    finally:
        outcome = _resumed(stalled)
    assert (second.version_number, third.version_number) == (2, 3)
    assert outcome.startswith("lost") and "nothing was committed" in outcome, outcome
    versions = other.versions("customer_activity")
    assert [(v.version_number, v.delta_version) for v in versions] == [(1, 1), (2, 2), (3, 3)]
    assert {r.customer_id for r in other.read("customer_activity").collect()} == {1, 2, 3}
    # the table's log holds no commit of the stalled writer, and the next write follows on
    assert other.write("customer_activity", _batch(spark, 4)).delta_version == 4
    metadata = [json.loads(json.loads(line)["commitInfo"].get("userMetadata") or "{}").get("fs_spark", {})
                for d in range(5) for line in _commit_lines(spark, versions[0].storage_path, d) if "commitInfo" in line]
    assert "stalled" not in {m.get("write_id") for m in metadata}


def test_a_writer_stalled_on_a_local_root_keeps_its_lock_and_no_number_is_used_twice(spark, tmp_path):
    """On a local root the lock is the OS's, which a stopped process keeps: another writer
    waits (here, past its timeout) and the stalled one's write stands when it resumes."""
    from fs_spark.config import Settings, StoreSettings

    root = str(tmp_path / "store")
    other = make_store(spark, root)
    other.apply(activity_table())
    other.write("customer_activity", _batch(spark, 1))
    impatient = type(other)(spark=spark, settings=Settings(store=StoreSettings(root=root, lock_timeout_seconds=3)))
    stalled = _stalled_writer(root, "")
    try:
        with pytest.raises(LockTimeoutError, match="customer_activity"):
            impatient.write("customer_activity", _batch(spark, 2))
    finally:
        outcome = _resumed(stalled)
    assert outcome == "wrote 2 2", outcome
    assert other.write("customer_activity", _batch(spark, 2)).version_number == 3
    assert [(v.version_number, v.delta_version) for v in other.versions("customer_activity")] == [(1, 1), (2, 2), (3, 3)]
