"""Online serving: lookups, the cache, the HTTP server and materialization, measured in one run.

    make bench
    python -m bench.online --keys 1000000

A feature service of 3 tables x 10 features over --keys keys is written and materialized to the
embedded store and to a real Redis (started here on a free loopback port). Then, each against a
baseline of the same run:

- one entity, in process: the embedded store, Redis, a cache hit (p50/p99 of --calls calls, random
  keys); the embedded store's raw 3-key read against the same bytes in LMDB, the alternative
  considered for the embedded store;
- 100 entities in one call (Redis, one pipelined MGET);
- the HTTP server (`fs-spark serve`, in its own process), one entity a request, 8 concurrent
  connections: from wrk (a C load generator), and from 8 Python clients in another process
  (a Python caller's view, the clients taking their share of the same 2 cores): p50/p99 and
  requests per second;
- materializing --keys keys x 30 features from the executors, against a driver-side loop writing
  the same rows, and an incremental run after a 1% change against the full run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fs_spark import Entity, Feature, FeatureService, FeatureStore, FeatureTable
from fs_spark.config import CacheSettings, OnlineSettings, Settings, SparkSettings, StoreSettings
from fs_spark.online.embedded import EmbeddedOnlineStore
from fs_spark.online.encoding import encode_key, make_encoder
from fs_spark.online.materialize import latest_rows

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import free_port, redis_server  # noqa: E402  (the tests' own server helpers)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
TARGETS = {"embedded_p99": 0.5e-3, "redis_p99": 1e-3, "cache_p99": 50e-6, "batch100_p99": 5e-3, "http_p99": 5e-3}


def table(name: str, features: int) -> FeatureTable:
    return FeatureTable(
        name=name,
        entity=Entity(name="customer", keys={"customer_id": "long"}),
        event_time="ts",
        features=[Feature(name=f"{name}_f{i}", dtype="double" if i % 2 else "long") for i in range(features)],
    )


def rows(spark, definition: FeatureTable, keys: int, start: int = 0, shift: int = 0):
    columns = [
        f"CAST((id * {i + 7} + {shift}) % 100003 AS {'double' if f.dtype.value == 'double' else 'long'}) AS {f.name}"
        for i, f in enumerate(definition.features)
    ]
    at = (T0 + timedelta(hours=shift)).isoformat()
    return spark.range(start, start + keys).selectExpr("id AS customer_id", f"timestamp'{at}' AS ts", *columns)


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed_calls(call, arguments) -> tuple[float, float]:
    samples = []
    for argument in arguments:
        started = time.perf_counter()
        call(argument)
        samples.append(time.perf_counter() - started)
    return quantiles(samples)


def micro(seconds: float) -> str:
    return f"{seconds * 1e6:8.1f} us"


def line(name: str, p50: float, p99: float, target: str | None = None, extra: str = "") -> None:
    goal = f"  target p99 {micro(TARGETS[target]).strip()}: {p99 / TARGETS[target]:.2f}x of it" if target else ""
    print(f"  {name:<44} p50 {micro(p50)}  p99 {micro(p99)}{goal}{extra}", flush=True)


def lmdb_copy(embedded_path: str, folder: Path, keys: list[bytes]):
    """The same vectors in LMDB, for the embedded store's comparison."""
    import lmdb

    env = lmdb.open(str(folder / "lmdb"), map_size=8 << 30, readahead=False)
    store = EmbeddedOnlineStore(embedded_path)
    with env.begin(write=True) as txn:
        for start in range(0, len(keys), 10_000):
            chunk = keys[start : start + 10_000]
            for key, value in zip(chunk, store.read(chunk), strict=True):
                txn.put(key, value)
    return env


def http_load(url: str, body_of, clients: int, per_client: int) -> tuple[list[float], float]:
    """`clients` threads, each with one keep-alive connection, `per_client` requests each."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    samples: list[float] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        mine = []
        for _ in range(per_client):
            payload = json.dumps(body_of(rng)).encode()
            started = time.perf_counter()
            connection.request("POST", "/get-online-features", payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            assert response.status == 200
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, time.perf_counter() - started


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(7)
request = function()
  local id = math.random(0, %d)
  return wrk.format(nil, nil, nil, '{"feature_service": "model_inputs", "entities": {"customer_id": [' .. id .. ']}}')
end
"""


def wrk_load(url: str, folder: Path, keys: int, seconds: int = 15) -> tuple[float, float, float]:
    """wrk (a C load generator: little of the 2 cores goes to the clients), 8 connections."""
    script = folder / "request.lua"
    script.write_text(WRK_SCRIPT % (keys - 1))
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "--latency", "-s", str(script),
                          url + "/get-online-features"], capture_output=True, text=True, check=True).stdout
    figures = {}
    for text in out.splitlines():
        parts = text.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            value = parts[1]
            unit = 1e-6 if value.endswith("us") else 1e-3 if value.endswith("ms") else 1.0
            figures[parts[0]] = float(value.rstrip("usm")) * unit
        if text.startswith("Requests/sec:"):
            figures["rate"] = float(parts[1])
        if text.strip().startswith("Non-2xx"):
            raise RuntimeError(f"the server answered errors under load:\n{out}")
    return figures["50%"], figures["99%"], figures["rate"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--http-requests", type=int, default=2_000, help="per client")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fs_bench_online_"))
    try:
        with redis_server(folder) as redis_url:
            run(args, folder, redis_url)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


def run(args, folder: Path, redis_url: str) -> None:
    keys = args.keys
    spark_settings = SparkSettings(master="local[2]", driver_memory="6g", shuffle_partitions=8)

    def store_of(kind: str, cache: bool = False) -> FeatureStore:
        online = OnlineSettings(kind=kind, redis_url=redis_url, cache=CacheSettings(enabled=cache, max_entries=200_000))
        settings = Settings(store=StoreSettings(root=str(folder / "store"), user="bench"), spark=spark_settings,
                            online=online)
        return FeatureStore(settings=settings)

    embedded = store_of("embedded")
    spark = embedded.spark
    tables = [table(name, 10) for name in ("profile", "activity", "risk")]
    wide = table("wide", 30)
    embedded.apply(*tables, wide)
    service = FeatureService(name="model_inputs", lookups=[f"{t.name}:{f.name}" for t in tables for f in t.features])
    embedded.apply(service)
    print(f"online serving, {keys:,} keys; a feature service of 3 tables x 10 features", flush=True)
    for definition in tables:
        embedded.write(definition.name, rows(spark, definition, keys))
        embedded.materialize(definition.name)
    redis = store_of("redis")
    for definition in tables:
        redis.materialize(definition.name)

    rng = random.Random(7)
    lookups = list(service.lookups)
    one = [[{"customer_id": rng.randrange(keys)}] for _ in range(args.calls)]
    print("one entity, in process (3 tables x 10 features):")
    for _ in range(2):  # the first pass warms the page cache
        e50, e99 = timed_calls(lambda r: embedded.get_online_features(lookups, r), one)
    line("embedded store (SQLite, WAL)", e50, e99, "embedded_p99")
    r50, r99 = timed_calls(lambda r: redis.get_online_features(lookups, r), one)
    line("Redis", r50, r99, "redis_p99")
    cached = store_of("redis", cache=True)
    hot = [[{"customer_id": k}] for k in range(1000)]
    for r in hot:
        cached.get_online_features(lookups, r)
    c50, c99 = timed_calls(lambda r: cached.get_online_features(lookups, r), [hot[i % 1000] for i in range(args.calls)])
    stats = cached._online.reader().cache.stats()
    line("cache hit (in front of Redis)", c50, c99, "cache_p99", f"  hit rate {stats.hit_rate:.3f}")

    raw_keys = [[encode_key(t.name, 1, [rng.randrange(keys)]) for t in tables] for _ in range(args.calls)]
    sqlite = EmbeddedOnlineStore(str(folder / "store" / "online" / "embedded.db"))
    env = lmdb_copy(str(folder / "store" / "online" / "embedded.db"), folder,
                    [encode_key(t.name, 1, [k]) for t in tables for k in range(keys)])

    def lmdb_read(batch):
        with env.begin(buffers=False) as txn:
            return [txn.get(k) for k in batch]

    for _ in range(2):  # the second pass of each, pages warm
        s50, s99 = timed_calls(sqlite.read, raw_keys)
        m50, m99 = timed_calls(lmdb_read, raw_keys)
    print("the embedded store's choice, raw read of 3 keys:")
    line("SQLite (WAL)", s50, s99)
    line("LMDB", m50, m99, extra=f"  SQLite/LMDB p99: {s99 / m99:.2f}x")

    print("100 entities in one call:")
    hundred = [[{"customer_id": rng.randrange(keys)} for _ in range(100)] for _ in range(max(200, args.calls // 20))]
    b50, b99 = timed_calls(lambda r: redis.get_online_features(lookups, r), hundred)
    line("Redis (one MGET of 300 keys)", b50, b99, "batch100_p99")
    b50, b99 = timed_calls(lambda r: embedded.get_online_features(lookups, r), hundred)
    line("embedded store", b50, b99)

    print("HTTP server (fs-spark serve, one process), one entity a request, 8 concurrent connections:")
    for kind, workers in (("redis", 1), ("redis", 2), ("embedded", 1), ("embedded", 2)):
        port = free_port()
        env_vars = {**os.environ, "FS_SPARK_ONLINE__KIND": kind, "FS_SPARK_ONLINE__REDIS_URL": redis_url}
        server = subprocess.Popen([sys.executable, "-m", "fs_spark.cli", "--root", str(folder / "store"), "serve",
                                   "--port", str(port), "--workers", str(workers)], cwd=ROOT, env=env_vars,
                                  stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=1).read()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "fs-spark serve did not start"
                time.sleep(0.1)
        body = lambda r: {"feature_service": "model_inputs", "entities": {"customer_id": [r.randrange(keys)]}}  # noqa: E731
        http_load(url, body, 8, 100)  # warm-up
        w50, w99, rate = wrk_load(url, folder, keys)
        line(f"{kind}, {workers} process(es), wrk", w50, w99, "http_p99", f"  {rate:,.0f} requests/s")
        if workers == 1:
            samples, seconds = http_load(url, body, 8, args.http_requests)
            h50, h99 = quantiles(samples)
            line(f"{kind}, 1 process, 8 Python clients", h50, h99, "http_p99",
                 f"  {len(samples) / seconds:,.0f} requests/s")
        server.terminate()
        server.wait(timeout=30)

    print(f"materialization, {keys:,} keys x 30 features:")
    embedded.write("wide", rows(spark, wide, keys))
    started = time.perf_counter()
    full = embedded.materialize("wide")
    full_seconds = time.perf_counter() - started
    frame = embedded.read("wide", include_version_column=True)
    started = time.perf_counter()
    loop = EmbeddedOnlineStore(folder / "loop.db")
    batch = []
    encode = make_encoder(wide, 1)  # the executors' own encoder: only where the work runs differs
    for row in latest_rows(frame, wide).toLocalIterator():
        batch.append((encode_key("wide", 1, [row[0]]), encode(row[2], row[1], row[3:])))
        if len(batch) == 5_000:
            loop.write(batch)
            batch = []
    loop.write(batch)
    loop_seconds = time.perf_counter() - started
    print(f"  executors (fs_spark)   {full_seconds:7.2f} s  {full.keys_written / full_seconds:>10,.0f} keys/s")
    print(f"  driver-side loop       {loop_seconds:7.2f} s  {keys / loop_seconds:>10,.0f} keys/s"
          f"  (fs_spark {loop_seconds / full_seconds:.2f}x faster)")
    changed = keys // 100
    embedded.write("wide", rows(spark, wide, changed, start=rng.randrange(keys - changed), shift=1))
    started = time.perf_counter()
    incremental = embedded.materialize("wide")
    inc_seconds = time.perf_counter() - started
    assert incremental.kind == "incremental" and incremental.keys_written == changed
    print(f"  incremental, 1% changed {inc_seconds:6.2f} s  ({inc_seconds / full_seconds:.2f}x the full run, "
          f"{incremental.keys_written:,} keys)")
    redis_wide = store_of("redis")
    started = time.perf_counter()
    redis_full = redis_wide.materialize("wide")
    redis_seconds = time.perf_counter() - started
    print(f"  executors into Redis   {redis_seconds:7.2f} s  {redis_full.keys_written / redis_seconds:>10,.0f} keys/s")


if __name__ == "__main__":
    sys.exit(main())
