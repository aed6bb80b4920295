"""Streaming ingestion against a real Kafka broker (KRaft, on a free loopback port): each
micro-batch one validated version, exactly once across a killed driver, files and Delta tables
as sources too, online write-through, the stream's figures, and backfills."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import ACTIVITY_SCHEMA, T0, activity_rows, activity_table, make_store
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from servers import kafka_broker

from fs_spark import FeatureLookup
from fs_spark.cli import run
from fs_spark.errors import ValidationError, WriteConflictError
from fs_spark.ingest.backfill import BackfillRangeError
from fs_spark.ingest.sources import json_files_stream, kafka_stream, parse_json
from fs_spark.ingest.stream import StreamNotStreamingError

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TABLE = "customer_activity"


@pytest.fixture(scope="module")
def kafka(tmp_path_factory):
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as servers:
        yield servers


def record(i: int, **changes) -> dict:
    """One customer_activity record as a producer would send it (times as ISO-8601 with a zone)."""
    row = {
        "customer_id": i,
        "event_ts": (T0 + timedelta(hours=i)).isoformat(),
        "spend_7d": float(i),
        "min_7d": 1.0,
        "max_7d": 2.0 + i,
        "visits": i % 100,
        "segment": "new",
    }
    row.update(changes)
    return row


def send(spark, servers: str, topic: str, records: list) -> None:
    """Produce records (dicts as JSON, or raw strings) with Spark's own Kafka sink."""
    values = [(r if isinstance(r, str) else json.dumps(r),) for r in records]
    frame = spark.createDataFrame(values, "value string")
    frame.write.format("kafka").option("kafka.bootstrap.servers", servers).option("topic", topic).save()


def kafka_records(spark, servers: str, topic: str):
    return parse_json(kafka_stream(spark, servers, topic), activity_table())


def stored_keys(store) -> list[tuple]:
    rows = store.read(TABLE).select("customer_id", "event_ts", "spend_7d").collect()
    return sorted((r.customer_id, r.event_ts, r.spend_7d) for r in rows)


def expected_keys(spark, records: list[dict]) -> list[tuple]:
    """The oracle: the records as Spark itself parses them, independently of the stream."""
    frame = spark.createDataFrame([(json.dumps(r),) for r in records], "value string")
    rows = parse_json(frame, activity_table()).select("customer_id", "event_ts", "spend_7d").collect()
    return sorted((r.customer_id, r.event_ts, r.spend_7d) for r in rows)


@pytest.fixture
def streaming(store):
    store.apply(activity_table())
    return store


def test_each_micro_batch_is_one_version_with_its_stream_batch_and_offsets(streaming, spark, kafka):
    first, second = [record(i) for i in range(40)], [record(i) for i in range(40, 55)]
    send(spark, kafka, "each_batch", first)
    stream = streaming.write_stream(TABLE, kafka_records(spark, kafka, "each_batch"), trigger="1 second")
    try:
        stream.process_all_available()
        send(spark, kafka, "each_batch", second)
        stream.process_all_available()
    finally:
        stream.stop()
    assert stored_keys(streaming) == expected_keys(spark, first + second)
    versions = streaming.versions(TABLE)
    # The second send may reach the stream in more than one micro-batch (one per Kafka partition).
    assert versions[0].row_count == 40 and sum(v.row_count for v in versions[1:]) == 15
    assert [v.write_id for v in versions] == [f"stream:{TABLE}:{i}" for i in range(len(versions))]
    provenance = [json.loads(v.source_description) for v in versions]
    assert [p["batch_id"] for p in provenance] == list(range(len(versions)))
    assert {p["query_id"] for p in provenance} == {stream.id}
    # Kafka's offsets per partition: the last batch ends where all 55 records are.
    end = provenance[-1]["offsets"][0]["each_batch"]
    assert sum(end.values()) == 55
    assert provenance[0]["source"].startswith("kafka[subscribe=each_batch")
    # Each version is one Delta commit, mapped in the catalog.
    history = DeltaTable.forPath(spark, versions[0].storage_path).history().where("operation = 'WRITE'")
    assert sorted(r.version for r in history.collect()) == [v.delta_version for v in versions]
    # Spark's progress reports reach Prometheus, by stream name: every row read, the last batch
    assert gauge(streaming, "fs_spark_stream_input_rows_total", stream=TABLE) == 55
    assert gauge(streaming, "fs_spark_stream_batch_id", stream=TABLE) >= len(versions) - 1
    assert gauge(streaming, "fs_spark_stream_batch_seconds", stream=TABLE) > 0
    progress = streaming.catalog.rows("stream_progress")
    assert sum(r["input_rows"] for r in progress if r["stream_name"] == TABLE) == 55


def gauge(store, name: str, **labels) -> float | None:
    return store.metrics.registry.get_sample_value(name, labels)


def test_a_strict_stream_stops_at_a_bad_batch_naming_feature_and_rule_and_commits_none_of_it(streaming, spark, kafka):
    send(spark, kafka, "strict_bad", [record(1), record(2)])
    stream = streaming.write_stream(TABLE, kafka_records(spark, kafka, "strict_bad"), trigger="1 second")
    stream.process_all_available()
    send(spark, kafka, "strict_bad", [record(3), record(4, visits=-5)])
    with pytest.raises(ValidationError) as refused:
        stream.process_all_available()
    assert ("visits", "range[0.0, 1000.0]") in refused.value.rules()
    assert not stream.is_active
    assert [v.row_count for v in streaming.versions(TABLE)] == [2]
    assert [r[0] for r in stored_keys(streaming)] == [1, 2]  # record 3 came in the refused batch: not committed


def test_a_quarantine_stream_keeps_good_rows_and_quarantines_bad_ones_with_their_rule(streaming, spark, kafka):
    records = [record(1), record(2, visits=-1), "{not json", record(3, segment="vip")]
    send(spark, kafka, "quarantined", [record(0)])
    send(spark, kafka, "quarantined", records)
    stream = streaming.write_stream(
        TABLE, kafka_records(spark, kafka, "quarantined"), mode="quarantine", available_now=True
    )
    stream.await_termination()
    assert [r[0] for r in stored_keys(streaming)] == [0, 1]
    (version,) = streaming.versions(TABLE)
    assert (version.row_count, version.quarantined_row_count) == (2, 3)
    bad = spark.read.format("delta").load(streaming.paths.quarantine(TABLE, 1))
    rules = sorted(((r.customer_id, tuple(sorted(r._fs_rules))) for r in bad.collect()), key=lambda r: r[0] or -1)
    assert rules[0][0] is None and "customer_id:key_not_null" in rules[0][1]  # the line that was not JSON
    assert rules[1] == (2, ("visits:range[0.0, 1000.0]",))
    assert rules[2] == (3, ("segment:allowed_values",))


def test_a_value_of_the_wrong_json_type_is_quarantined_or_stops_a_strict_stream_never_stored_as_null(
        streaming, spark, kafka):
    send(spark, kafka, "wrong_types", [record(1), record(2, spend_7d="abc"), record(3, visits="12x"), record(4)])
    quarantining = streaming.write_stream(
        TABLE, kafka_records(spark, kafka, "wrong_types"), mode="quarantine", available_now=True, name="lenient")
    quarantining.await_termination()
    assert [r[0] for r in stored_keys(streaming)] == [1, 4]
    bad = spark.read.format("delta").load(streaming.paths.quarantine(TABLE, 1)).collect()
    assert {r.customer_id: sorted(r._fs_rules) for r in bad} == {
        2: ["spend_7d:json[double]"], 3: ["visits:json[int]", "visits:not_null"]}  # visits is not nullable
    send(spark, kafka, "wrong_types_strict", [record(5, spend_7d="abc")])
    strict = streaming.write_stream(TABLE, kafka_records(spark, kafka, "wrong_types_strict"), name="strict",
                                    available_now=True)
    with pytest.raises(ValidationError) as refused:
        strict.await_termination()
    assert ("spend_7d", "json[double]") in refused.value.rules()
    assert [r[0] for r in stored_keys(streaming)] == [1, 4]


def test_a_stream_restarted_on_its_checkpoint_commits_no_batch_twice(streaming, spark, kafka):
    send(spark, kafka, "restarted", [record(i) for i in range(10)])
    frame = kafka_records(spark, kafka, "restarted")
    stream = streaming.write_stream(TABLE, frame, name="restarted", available_now=True)
    stream.await_termination()
    send(spark, kafka, "restarted", [record(i) for i in range(10, 25)])
    again = streaming.write_stream(TABLE, frame, name="restarted", available_now=True)
    again.await_termination()
    assert [v.row_count for v in streaming.versions(TABLE)] == [10, 15]
    assert stored_keys(streaming) == expected_keys(spark, [record(i) for i in range(25)])
    (status,) = streaming.streams()
    assert (status.name, status.table, status.starts, status.versions, status.rows) == ("restarted", TABLE, 2, 2, 25)
    assert status.last_batch_id == 1
    assert status.offsets_behind_latest == 0
    assert status.source.startswith("kafka[subscribe=restarted")
    out = io.StringIO()  # the same figures on the command line, from the catalog alone
    assert run(["--root", streaming.root, "streams"], out=out) == 0
    line = out.getvalue().strip()
    assert line.startswith("restarted -> customer_activity: 2 batch(es) to #1, 25 rows (0 quarantined), 1 restart(s)")
    assert "0 offsets behind" in line


def test_a_killed_stream_driver_restarted_from_its_checkpoint_writes_every_row_exactly_once(spark, kafka, tmp_path):
    """The driver (its Python process and its JVM) is SIGKILLed at random points (while it
    starts, in a write, between commits) three times, then run to the end: every source row is
    in the table once, and every Delta commit of the table has its catalog row."""
    store = make_store(spark, tmp_path / "store")
    store.apply(activity_table())
    records = [record(i) for i in range(400)]
    send(spark, kafka, "killed", records)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FS_SPARK_STORE__USER": "tester"}
    command = [sys.executable, str(ROOT / "jobs" / "ingest_stream.py"), "--root", str(tmp_path / "store")]
    command += ["--table", TABLE, "--kafka", kafka, "--topic", "killed", "--max-per-trigger", "100"]
    rng = random.Random(20261202)
    log = tmp_path / "store" / "tables" / TABLE / "v1" / "_delta_log"

    def commits() -> int:
        return len(list(log.glob("*.json"))) if log.exists() else 0

    def after(count, more: int, deadline: float) -> None:
        while count() < more and time.monotonic() < deadline:
            time.sleep(0.02)

    for attempt in range(3):
        with open(tmp_path / f"run{attempt}.log", "wb") as out:
            seen, versions = commits(), len(store.versions(TABLE))
            driver = subprocess.Popen(
                [*command, "--trigger", "1 second"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            deadline = time.monotonic() + 90
            if attempt == 0:  # while it starts, or in its first batch
                time.sleep(rng.uniform(3.0, 10.0))
            elif attempt == 1:  # the moment a batch's Delta commit lands, before its catalog row
                after(commits, seen + 1, deadline)
            else:  # once it is committing: inside a batch's write, or between two
                after(lambda: len(store.versions(TABLE)), versions + 1, deadline)
                time.sleep(rng.uniform(0.0, 2.0))
            os.killpg(driver.pid, signal.SIGKILL)  # the driver's Python and its JVM, as a lost machine
            driver.wait(timeout=30)
    done = subprocess.run([*command, "--available-now"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert stored_keys(store) == expected_keys(spark, records)
    versions = store.versions(TABLE)
    assert sum(v.row_count for v in versions) == 400
    batches = [v.write_id for v in versions]
    assert len(batches) == len(set(batches)) and all(b.startswith(f"stream:{TABLE}:") for b in batches)
    history = DeltaTable.forPath(spark, versions[0].storage_path).history().where("operation = 'WRITE'")
    assert sorted(r.version for r in history.collect()) == sorted(v.delta_version for v in versions)
    # The driver killed between a Delta commit and its catalog row: the row was rebuilt from the
    # commit, and Spark's re-run of that batch committed nothing.
    assert any(v.recovered for v in versions)
    (status,) = store.streams()
    assert status.retried_batches >= 1
    assert 1 <= status.starts <= 4  # a driver killed before its query started has no start row
    assert (status.rows, status.versions, status.offsets_behind_latest) == (400, len(versions), 0)


def test_json_files_and_a_delta_table_are_sources_too(streaming, spark, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    lines = [json.dumps(record(i)) for i in range(5)] + [json.dumps(record(5, spend_7d="abc"))]
    (folder / "part-1.json").write_text("\n".join(lines) + "\n")
    files = streaming.write_stream(
        TABLE, json_files_stream(spark, activity_table(), str(folder)), name="files", available_now=True,
        mode="quarantine",
    )
    files.await_termination()
    assert streaming.versions(TABLE)[0].quarantined_row_count == 1  # the record of the wrong type
    upstream = str(tmp_path / "upstream")
    spark.createDataFrame(activity_rows(7, start=100), ACTIVITY_SCHEMA).write.format("delta").save(upstream)
    delta = streaming.write_stream(TABLE, spark.readStream.format("delta").load(upstream), name="delta", available_now=True)
    delta.await_termination()
    ids = [r[0] for r in stored_keys(streaming)]
    assert ids == [*range(5), *range(100, 107)]
    sources = {s.name: s.source for s in streaming.streams()}
    assert sources == {"files": f"text[path={folder}]", "delta": f"delta[path={upstream}]"}  # lines, parsed as JSON


def test_online_write_through_serves_each_batch_and_advances_the_watermark(streaming, spark, kafka):
    send(spark, kafka, "online", [record(1, spend_7d=10.0), record(2, spend_7d=20.0)])
    stream = streaming.write_stream(TABLE, kafka_records(spark, kafka, "online"), online=True, trigger="1 second")
    try:
        stream.process_all_available()
        first = streaming.get_online_features([f"{TABLE}:spend_7d"], [{"customer_id": 1}, {"customer_id": 2}])
        assert first["spend_7d"] == [10.0, 20.0]
        later = record(1, spend_7d=11.5)
        later["event_ts"] = (T0 + timedelta(days=30)).isoformat()
        send(spark, kafka, "online", [later])
        stream.process_all_available()
        second = streaming.get_online_features([f"{TABLE}:spend_7d"], [{"customer_id": 1}, {"customer_id": 2}])
        assert second["spend_7d"] == [11.5, 20.0]
    finally:
        stream.stop()
    # The online watermark followed the stream: a full run first, then only the new versions.
    rows = streaming.catalog.rows("materializations")
    assert rows[-1]["version_number"] == streaming.versions(TABLE)[-1].version_number
    assert [r["kind"] for r in rows] == ["full"] + ["incremental"] * (len(rows) - 1)


def test_bad_stream_requests_are_refused_by_name(streaming, spark, tmp_path):
    batch = spark.createDataFrame(activity_rows(2), ACTIVITY_SCHEMA)
    with pytest.raises(StreamNotStreamingError, match="customer_activity.*readStream"):
        streaming.write_stream(TABLE, batch)
    stream_frame = spark.readStream.format("rate").load()
    with pytest.raises(ValueError, match="mode must be one of"):
        streaming.write_stream(TABLE, stream_frame, mode="lenient")
    with pytest.raises(Exception, match="stream"):
        streaming.write_stream(TABLE, stream_frame, name="no spaces allowed")
    assert spark.streams.active == []


def test_a_backfill_writes_a_version_per_chunk_resumes_and_stays_out_of_earlier_builds(streaming, spark):
    streaming.write(TABLE, spark.createDataFrame(activity_rows(3, start=500, day_offset=90), ACTIVITY_SCHEMA))
    before = streaming.versions(TABLE)[-1].committed_at
    history = spark.createDataFrame(
        [(i, T0 + timedelta(days=i % 3, hours=i), float(i), 1.0, 2.0, 1, "new") for i in range(12)], ACTIVITY_SCHEMA
    )
    done = streaming.backfill(TABLE, history, T0, T0 + timedelta(days=4), chunk=timedelta(days=1), name="q1")
    assert done.chunks == 4
    assert [v.row_count for v in done.versions] == [4, 4, 4]  # the fourth day had no rows: no version
    assert [(v.source_start, v.source_end) for v in done.versions] == [
        (T0 + timedelta(days=d), T0 + timedelta(days=d + 1)) for d in range(3)
    ]
    again = streaming.backfill(TABLE, history, T0, T0 + timedelta(days=4), chunk=timedelta(days=1), name="q1")
    assert [v.version_id for v in again.versions] == [v.version_id for v in done.versions]
    assert len(streaming.versions(TABLE)) == 4
    changed = history.withColumn("spend_7d", F.col("spend_7d") + 1)
    with pytest.raises(WriteConflictError):
        streaming.backfill(TABLE, changed, T0, T0 + timedelta(days=4), chunk=timedelta(days=1), name="q1")
    # A build over the backfilled range sees each row at its event time; one as of before does not.
    entities = spark.createDataFrame([(4, T0 + timedelta(days=2)), (4, T0 + timedelta(hours=3))], "customer_id long, ts timestamp")
    lookup = {"table_name": TABLE, "feature_names": ["spend_7d"], "lookup_key": "customer_id", "timestamp_lookup_key": "ts"}
    now = streaming.create_training_set(entities, [FeatureLookup(**lookup)]).load_df().orderBy("ts").collect()
    assert [r.spend_7d for r in now] == [None, 4.0]  # the row of customer 4 is at day 1, hour 4
    earlier = streaming.create_training_set(entities, [FeatureLookup(**lookup)], as_of=before).load_df().collect()
    assert [r.spend_7d for r in earlier] == [None, None]


def test_a_backfill_refuses_rows_outside_its_range_before_writing_anything(streaming, spark):
    history = spark.createDataFrame(activity_rows(5), ACTIVITY_SCHEMA)  # days 0..4
    with pytest.raises(BackfillRangeError, match=r"customer_activity.*3 row\(s\) have event_ts outside"):
        streaming.backfill(TABLE, history, T0, T0 + timedelta(days=2))
    assert streaming.versions(TABLE) == []
    with pytest.raises(ValueError, match="not before its end"):
        streaming.backfill(TABLE, history, T0, T0)


def test_a_backfill_runs_beside_a_stream_writing_the_same_table(streaming, spark, kafka):
    live = [record(i) for i in range(1000, 1030)]
    send(spark, kafka, "beside_backfill", live[:15])
    stream = streaming.write_stream(TABLE, kafka_records(spark, kafka, "beside_backfill"), trigger="1 second")
    try:
        stream.process_all_available()
        history = spark.createDataFrame(activity_rows(40), ACTIVITY_SCHEMA)  # days 0..39
        send(spark, kafka, "beside_backfill", live[15:])
        done = streaming.backfill(TABLE, history, T0, T0 + timedelta(days=40), chunk=timedelta(days=10))
        stream.process_all_available()
    finally:
        stream.stop()
    versions = streaming.versions(TABLE)
    assert [v.version_number for v in versions] == list(range(1, len(versions) + 1))
    assert sorted(v.write_id for v in versions if v.write_id.startswith("backfill:")) == sorted(
        v.write_id for v in done.versions
    )
    assert [v.row_count for v in done.versions] == [10, 10, 10, 10]
    expected = sorted(expected_keys(spark, live) + [(r[0], r[1], r[2]) for r in history.collect()])
    assert stored_keys(streaming) == expected


def test_a_missing_topic_or_an_unreachable_broker_is_refused_before_the_stream_starts(streaming, spark, kafka,
                                                                                        capsys):
    """Named at once (Spark would fail about 11 s later without naming the topic, or after minutes
    of timeouts naming neither), by the API and by the spark-submit job (one line, exit 2)."""
    import importlib.util

    from fs_spark.ingest.stream import StreamSourceError
    from servers import free_port

    with pytest.raises(StreamSourceError, match=rf"Kafka at {kafka} has no topic 'no_such_topic'"):
        streaming.write_stream(TABLE, kafka_records(spark, kafka, "no_such_topic"), name="missing")
    nowhere = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StreamSourceError, match=rf"Kafka at {nowhere} did not answer within 10 s"):
        streaming.write_stream(TABLE, kafka_records(spark, nowhere, "activity"), name="unreachable")
    assert time.monotonic() - started < 60
    assert [s.name for s in streaming.streams()] == []  # neither stream was started nor recorded
    spec = importlib.util.spec_from_file_location("ingest_stream_job", ROOT / "jobs" / "ingest_stream.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    code = job.main(["--root", streaming.root, "--table", TABLE, "--kafka", kafka, "--topic", "no_such_topic",
                     "--available-now"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "StreamSourceError" in err[0] and "no_such_topic" in err[0], err
