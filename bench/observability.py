"""What watching the store costs, against the same work unwatched in the same run.

    make bench
    python -m bench.observability --rows 1000000 --reads 20000

  online_read  p50 of store.get_online_features, which records each read in the store's
               Prometheus registry, against the same read through the online reader alone
               (no metrics); --reads reads each, interleaved in blocks of 1,000
  write        store.write (Spark's task counts, Delta's bytes, a row in the `metrics` table)
               against the same validated write unmeasured; --rows rows, alternating, 5 each
  health       check_health on a catalog of 100 tables and 10,000 versions (generated here), with
               models, deployments and a materialized table: the first call of a new process
               (catalog read cold) and the p50/p99 of 50 calls after it (as a server answers)
  history      the last-failed-job check over a `metrics` table of --operations rows (a stream
               with a 1-second trigger adds 86,400 a day), the first call of a new process,
               against reading the whole table as `Catalog.rows` holds it, in the same run; and
               70 one-row appends (one compaction) after that history, against an empty table
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.sql import functions as F

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.catalog.schema import FEATURE_VERSIONS
from fs_spark.config import Settings, SparkSettings, StoreSettings
from fs_spark.ids import new_id
from fs_spark.observability.health import check_health
from fs_spark.session import build_local_session

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def table(name: str, features: int = 20) -> FeatureTable:
    return FeatureTable(
        name=name,
        entity=Entity(name="customer", keys={"customer_id": "long"}),
        event_time="ts",
        features=[Feature(name=f"f{i}", dtype="double", min_value=0) for i in range(features)],
    )


def batch(spark, start: int, rows: int, features: int = 20):
    n = F.col("id")
    return spark.range(start, start + rows).select(
        (n % 1_000_000).alias("customer_id"),
        (F.lit(T0.timestamp()) + (n % 86_400) * 60).cast("timestamp").alias("ts"),
        *[(n * (i + 1) % 997 / 7.0).alias(f"f{i}") for i in range(features)],
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_online(store: FeatureStore, reads: int) -> None:
    rows = [[{"customer_id": (i * 7919 + j) % 10_000} for j in range(10)] for i in range(reads)]
    features = [f"activity:f{i}" for i in range(20)]
    reader = store._online.reader()
    measured: list[float] = []
    plain: list[float] = []
    for block in range(0, reads, 1000):
        for entity_rows in rows[block : block + 1000]:
            began = time.perf_counter()
            reader.get(features, entity_rows)
            plain.append(time.perf_counter() - began)
        for entity_rows in rows[block : block + 1000]:
            began = time.perf_counter()
            store.get_online_features(features, entity_rows)
            measured.append(time.perf_counter() - began)
    p50, base = statistics.median(measured), statistics.median(plain)
    print(f"online_read   measured p50 {p50 * 1e6:7.1f} us   plain p50 {base * 1e6:7.1f} us   "
          f"ratio {p50 / base:.3f}x  (p99 {percentile(measured, 0.99) * 1e6:.0f} vs {percentile(plain, 0.99) * 1e6:.0f} us)")


def bench_write(store: FeatureStore, spark, rows: int) -> None:
    measured: list[float] = []
    plain: list[float] = []
    frames = [batch(spark, i * rows, rows).cache() for i in range(11)]
    for frame in frames:
        frame.count()
    store.write("activity", frames[0])  # warm-up
    recording = []
    for i in range(5):
        began = time.perf_counter()
        store._write("activity", frames[1 + 2 * i])
        plain.append(time.perf_counter() - began)
        before = store.metrics.recording_seconds
        began = time.perf_counter()
        store.write("activity", frames[2 + 2 * i])
        measured.append(time.perf_counter() - began)
        recording.append(store.metrics.recording_seconds - before)
    m, p, r = statistics.median(measured), statistics.median(plain), statistics.median(recording)
    print(f"write         measured p50 {m:7.3f} s    plain p50 {p:7.3f} s    ratio {m / p:.3f}x  ({rows:,} rows x 20)")
    print(f"              recording the figures (Spark's counts, the metrics row) {r * 1000:.1f} ms per write: "
          f"{r / p:.2%} of the plain write; Delta's bytes read from the commit are in the ratio above")


def bench_health(root: Path, spark, tables: int, versions: int) -> None:
    settings = Settings(store=StoreSettings(root=str(root), user="bench"))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(*[table(f"t{i:03d}", 5) for i in range(tables)])
    real = store.write("t000", batch(spark, 0, 1000, 5))
    store.materialize("t000")
    entities = spark.createDataFrame([(i, T0 + timedelta(days=1)) for i in range(100)], "customer_id long, ts timestamp")
    for name in ("churn", "ltv"):
        with store.start_run("bench", name=name) as run:
            model = run.register_model(name, training_sets=[run.create_training_set(entities, ["t000:f0"])])
        store.deploy(model.model_version_id, "prod")
    template = real.to_row()
    rows = []
    for n in range(versions - 1):
        name = f"t{n % tables:03d}"
        rows.append(template | {"version_id": new_id(), "table_name": name, "version_number": 2 + n // tables,
                                "write_id": new_id(), "committed_at": T0 + timedelta(minutes=n)})
    for start in range(0, len(rows), 2000):
        store.catalog.append(FEATURE_VERSIONS, rows[start : start + 2000])
    fresh = FeatureStore(spark=spark, settings=settings)  # a new process: nothing read yet
    began = time.perf_counter()
    first = check_health(fresh)
    cold = time.perf_counter() - began
    timings = []
    for _ in range(50):
        began = time.perf_counter()
        report = check_health(fresh)
        timings.append(time.perf_counter() - began)
    assert report.status in ("ok", "degraded"), report.to_text()
    count = len(fresh.catalog.versions())
    print(f"health        first {cold * 1000:7.1f} ms   p50 {statistics.median(timings) * 1000:6.1f} ms   "
          f"p99 {percentile(timings, 0.99) * 1000:6.1f} ms   ({tables} tables, {count:,} versions, "
          f"status {first.status}; target < 100 ms)")


def bench_health_history(root: Path, operations: int) -> None:
    import pyarrow as pa

    from fs_spark.catalog import files
    from fs_spark.catalog.catalog import Catalog, _arrow_schema
    from fs_spark.catalog.schema import METRICS
    from fs_spark.observability.health import _last_failure

    settings = Settings(store=StoreSettings(root=str(root), user="bench"))
    store = FeatureStore(settings=settings)
    store._catalog.ensure()
    started = [T0 + timedelta(seconds=i) for i in range(operations)]
    failed = ["ValidationError" if i % 50_000 == 7 else None for i in range(operations)]
    columns = {name: pa.nulls(operations, type=field.type) for name, field in zip(
        _arrow_schema(METRICS).names, _arrow_schema(METRICS), strict=True)}
    columns |= {"operation_id": pa.array([f"op{i}" for i in range(operations)]),
                "operation": pa.array(["stream"] * operations), "table_name": pa.array(["activity"] * operations),
                "started_at": pa.array(started, type=columns["started_at"].type),
                "seconds": pa.array([0.6] * operations), "rows": pa.array([20_000] * operations, type=pa.int64()),
                "error_class": pa.array(failed, type=pa.string()), "user": pa.array(["bench"] * operations)}
    where = store._catalog._files(store._catalog.path(METRICS.name))
    files.append(where, store._catalog._loaded(where), pa.table(columns, schema=_arrow_schema(METRICS)))

    fresh = FeatureStore(settings=settings)  # a new process: nothing read yet
    began = time.perf_counter()
    check = _last_failure(fresh, datetime.now(UTC))
    selected = time.perf_counter() - began
    whole = Catalog(fresh._session, fresh.paths, fresh._catalog.locks)
    began = time.perf_counter()
    newest = max((r for r in whole.rows(METRICS.name) if r["error_class"]), key=lambda r: r["started_at"])
    read_all = time.perf_counter() - began
    assert check.detail["operation_id"] == newest["operation_id"], (check.detail, newest)
    print(f"history       last_failed_job over {operations:,} operations: {selected * 1000:7.1f} ms   "
          f"the whole table read as rows: {read_all * 1000:8.1f} ms   ({read_all / selected:.0f}x)")

    def appends(catalog: Catalog) -> float:
        """70 one-row appends, so the table reaches its compaction threshold once."""
        row = pa.table(columns, schema=_arrow_schema(METRICS)).slice(0, 1).to_pylist()[0]
        began = time.perf_counter()
        for i in range(70):
            catalog.append(METRICS, [row | {"operation_id": f"new{i}"}])
        return time.perf_counter() - began

    long_history = appends(fresh._catalog)
    empty = FeatureStore(settings=Settings(store=StoreSettings(root=str(root / "empty"), user="bench")))
    no_history = appends(empty._catalog)
    print(f"history       70 appends (one compaction) after {operations:,} operations: {long_history:5.2f} s   "
          f"into an empty table: {no_history:5.2f} s   ({long_history / no_history:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--operations", type=int, default=1_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fs_bench_observability_"))
    spark = build_local_session(SparkSettings(master="local[2]", shuffle_partitions=4, driver_memory="8g"))
    spark.sparkContext.setLogLevel("ERROR")
    store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(folder / "store"), user="bench")))
    store.apply(table("activity"))
    store.write("activity", batch(spark, 0, 10_000))
    store.materialize("activity")
    bench_online(store, args.reads)
    bench_write(store, spark, args.rows)
    bench_health(folder / "health", spark, args.tables, args.versions)
    bench_health_history(folder / "history", args.operations)
    spark.stop()


if __name__ == "__main__":
    main()
