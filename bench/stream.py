"""Streaming ingestion: sustained throughput, lag and freshness, against the batch path's cost.

    make bench
    python -m bench.stream --seconds 300 --rates 10000,100000

A real Kafka broker (KRaft, started here on a free loopback port) gets JSON records from a
producer process (librdkafka, through confluent-kafka) at each offered rate for --seconds; each
record's event time is the moment it was produced. `write_stream` (trigger --trigger, online
write-through to the embedded store) ingests the topic, each micro-batch one validated version.
Reported per rate:

- throughput: rows per second committed over the run, against the rate offered;
- lag: the offsets the stream was behind Kafka's latest, from Spark's progress reports, at each
  fifth of the run (a stream that keeps up does not grow it);
- freshness, p50/p99 over every row: event time to visible offline (a poller sees the version in
  the catalog, so `read` returns it), and to servable online (the materialization that served it);
- cost per row: the stream's micro-batch time per row, against one validated batch write of the
  same number of rows (the batch path's time per row).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import OnlineSettings, Settings, SparkSettings, StoreSettings
from fs_spark.ingest.sources import kafka_stream, parse_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import kafka_broker  # noqa: E402  (the tests' own server helpers)

KEYS = 100_000
TABLE = "events"

PRODUCER = r"""
import random, sys, time
from datetime import UTC, datetime
from confluent_kafka import Producer

servers, topic, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
producer = Producer({"bootstrap.servers": servers, "linger.ms": 5, "queue.buffering.max.messages": 2000000})
rng = random.Random(7)
values = [f'"spend":{rng.uniform(0, 500):.2f},"visits":{rng.randint(0, 90)},"ratio":{rng.random():.4f},"segment":"{rng.choice("abc")}"' for _ in range(1000)]
tick, sent, start = 0.01, 0, time.time()
while True:
    now = time.time()
    if now - start >= seconds:
        break
    due = int((now - start) * rate) - sent
    if due > 0:
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        for i in range(due):
            key = (sent + i) %% %d + 1  # distinct within a tick, whose records share one event time
            producer.produce(topic, ('{"customer_id":%%d,"event_ts":"%%s",%%s}' %% (key, stamp, values[i %% 1000])).encode())
        sent += due
        producer.poll(0)
    time.sleep(tick)
producer.flush(60)
print(sent)
""" % KEYS


def definition() -> FeatureTable:
    return FeatureTable(
        name=TABLE,
        entity=Entity(name="customer", keys={"customer_id": "long"}),
        event_time="event_ts",
        features=[
            Feature(name="spend", dtype="double", min_value=0),
            Feature(name="visits", dtype="long", min_value=0),
            Feature(name="ratio", dtype="double", min_value=0, max_value=1),
            Feature(name="segment", dtype="string", allowed_values=("a", "b", "c")),
        ],
    )


class CatalogPoller:
    """When each version first became visible to a reader of the catalog (polled every 100 ms)."""

    def __init__(self, store: FeatureStore):
        self.store = store
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for version in self.store.versions(TABLE):
                self.seen.setdefault(version.version_number, now)
            time.sleep(0.1)


def percentiles(values: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def run_rate(spark, work: Path, servers: str, rate: int, seconds: float, trigger: str, online: bool) -> dict:
    root = work / f"store_{rate}_{'online' if online else 'offline'}"
    settings = Settings(store=StoreSettings(root=str(root), user="bench"), online=OnlineSettings(kind="embedded"))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(definition())
    topic = f"events_{rate}_{'online' if online else 'offline'}"
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, servers, topic, str(rate), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    time.sleep(2)  # the topic exists once the producer's first records are in
    frame = parse_json(kafka_stream(spark, servers, topic, starting_offsets="earliest"), definition())
    started = time.time()
    with CatalogPoller(store) as poller:
        stream = store.write_stream(TABLE, frame, trigger=trigger, online=online)
        sent = int(producer.communicate(timeout=seconds + 120)[0].strip())
        deadline = time.time() + 120
        while time.time() < deadline:  # let it catch up with what was sent
            if sum(v.row_count for v in stream.versions) >= sent:
                break
            time.sleep(0.5)
        time.sleep(0.5)
        if stream.failure is not None:
            raise stream.failure
        stream.stop()
    ended = time.time()
    versions = store.versions(TABLE)
    committed = sum(v.row_count for v in versions)
    rows = store.read(TABLE, include_version_column=True).select("event_ts", "_fs_version").toPandas()
    event = rows["event_ts"].astype("int64").to_numpy() / 1e9  # pandas gives naive UTC times here
    number = rows["_fs_version"].to_numpy()
    visible = np.array([poller.seen.get(int(n), np.nan) for n in number])
    served_at: dict[int, float] = {}
    for row in store.catalog.rows("materializations"):
        served_at.setdefault(int(row["version_number"] or 0), row["at"].timestamp())
    servable = np.array([min((t for v, t in served_at.items() if v >= n), default=np.nan) for n in number])
    progress = sorted((r for r in store.catalog.rows("stream_progress")), key=lambda r: r["at"])
    lag = []
    for fifth in range(1, 6):
        cut = started + (ended - started) * fifth / 5
        before = [r["offsets_behind_latest"] for r in progress if r["at"].timestamp() <= cut]
        lag.append(before[-1] if before else None)
    stream_seconds = sum(r["duration_ms"] for r in progress) / 1000
    durations = sorted(r["duration_ms"] / 1000 for r in progress)
    # Freshness in the steady state: rows produced once the stream had caught up with the
    # backlog it started with (the producer runs before the query starts) and its JVM had
    # compiled the path: from the first micro-batch no larger than 1.5 times the run's median
    # micro-batch, and at least 10 s after the first commit. The warm-up is reported apart.
    sizes = sorted(r["input_rows"] for r in progress)
    typical = sizes[len(sizes) // 2] if sizes else 0
    caught_up = next((r["at"].timestamp() for r in progress[1:] if r["input_rows"] <= 1.5 * typical), started)
    warm = max(min(poller.seen.values()) + 10 if poller.seen else started, caught_up)
    steady = event >= warm
    return {
        "rate": rate,
        "sent": sent,
        "committed": committed,
        "versions": len(versions),
        "rows_per_s": committed / max(max(poller.seen.values()) - started, 1e-9),
        "lag": lag,
        "offline": percentiles((visible - event)[steady & ~np.isnan(visible)]),
        "online": percentiles((servable - event)[steady & ~np.isnan(servable)]) if online else (np.nan, np.nan),
        "warmup_offline_max": float(np.nanmax((visible - event)[~steady])) if (~steady).any() else 0.0,
        "warmup_seconds": warm - started,
        "batch_seconds": (durations[len(durations) // 2], durations[-1]),
        "batch_rows": typical,
        "stream_s_per_row": stream_seconds / max(committed, 1),
        "store": store,
        "rows": committed,
    }


def batch_cost(spark, store: FeatureStore, rows: int) -> float:
    """Seconds per row of one validated batch write of `rows` rows of the same shape."""
    from pyspark.sql import functions as F

    frame = spark.range(rows).select(
        (F.col("id") % KEYS + 1).alias("customer_id"),
        (F.unix_timestamp(F.current_timestamp()) + F.floor(F.col("id") / KEYS)).cast("timestamp").alias("event_ts"),
        (F.rand(1) * 500).alias("spend"),
        (F.rand(2) * 90).cast("long").alias("visits"),
        F.rand(3).alias("ratio"),
        F.element_at(F.array(F.lit("a"), F.lit("b"), F.lit("c")), (F.col("id") % 3 + 1).cast("int")).alias("segment"),
    )
    source = tempfile.mkdtemp(prefix="batch_source_")
    frame.write.mode("overwrite").parquet(source)  # untimed: the batch reads files, as the stream reads Kafka
    batch = spark.read.parquet(source)
    start = time.perf_counter()
    store.write(TABLE, batch, write_id=f"bench-batch-{rows}")
    return (time.perf_counter() - start) / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rates", default="10000,100000")
    parser.add_argument("--trigger", default="1 second")
    parser.add_argument("--online", choices=("both", "on", "off"), default="both", help="online write-through")
    args = parser.parse_args()
    from fs_spark.session import build_local_session

    spark = build_local_session(SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="4g"))
    spark.sparkContext.setLogLevel("ERROR")
    print(f"streaming ingestion: {args.seconds:.0f} s per rate, trigger {args.trigger}, without and with online "
          "write-through (embedded store)")
    print(f"{'offered/s':>10} {'online':>6} {'rows/s':>9} {'versions':>8} {'lag at each fifth (offsets)':>34} "
          f"{'offline p50/p99 s':>18} {'online p50/p99 s':>17} {'stream/batch per row':>21}")
    with tempfile.TemporaryDirectory(prefix="bench_stream_") as work, kafka_broker(Path(work) / "kafka") as servers:
        modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.online]
        for rate, online in [(int(r), o) for r in args.rates.split(",") for o in modes]:
            result = run_rate(spark, Path(work), servers, rate, args.seconds, args.trigger, online)
            per_row = batch_cost(spark, result["store"], max(result["rows"], 1000))
            lag = " ".join("-" if x is None else str(x) for x in result["lag"])
            ratio = result["stream_s_per_row"] / per_row
            print(
                f"{rate:>10} {'yes' if online else 'no':>6} {result['rows_per_s']:>9.0f} {result['versions']:>8} {lag:>34} "
                f"{result['offline'][0]:>8.2f}/{result['offline'][1]:<8.2f} {result['online'][0]:>8.2f}/{result['online'][1]:<8.2f}"
                f" {ratio:>20.2f}x"
            )
            print(f"{'':>10} sent {result['sent']}, committed {result['committed']}; "
                  f"stream {result['stream_s_per_row'] * 1e6:.1f} us/row, batch {per_row * 1e6:.1f} us/row; "
                  f"micro-batch median {result['batch_seconds'][0]:.2f} s (max {result['batch_seconds'][1]:.2f} s), "
                  f"median {result['batch_rows']} rows; warm-up (the first {result['warmup_seconds']:.0f} s: the start-up "
                  f"backlog caught up, at least 10 s after the first commit) freshness max "
                  f"{result['warmup_offline_max']:.1f} s, left out of the percentiles")


if __name__ == "__main__":
    main()
