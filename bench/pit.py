"""Point-in-time joins: fs_spark against the plans others use, on the same data in the same run.

    make bench                                  # all three shapes
    python -m bench.pit --shapes typical --entities 1000000 --feature-rows 5000000
    python -m bench.pit --others                # fs_spark against the floor only

Shapes (entity rows against two feature tables of --feature-rows rows and 5 features each):
  typical   100k keys (about 50 rows per key per table)
  deep      10k keys (about 500 rows per key per table)
  skewed    Zipf-like keys: the top key holds about a fifth of every table
Methods, each timed from building its plan to writing its result to Spark's no-op sink (DuckDB
into a temporary table):
  fs_spark          the join `create_training_set` runs (co-partitioned sort, then a merge in the JVM)
  feast_shaped      the plan of Feast's Spark offline store: entity rows joined to every feature
                    row of their key at or before their time, ROW_NUMBER per entity row, the
                    winner joined back to the joined rows, then to the entity rows
  join_row_number   a plain left join + ROW_NUMBER per entity row, table after table
  floor             read the entity rows and each table, shuffle and sort each by key and time
  duckdb_asof       DuckDB's ASOF JOIN on the same Parquet files, 2 threads (single-node reference)
  fs_spark_build    the whole `create_training_set`: entity snapshot, join, Delta write, manifest
A method still running after --timeout seconds is cancelled and reported as "> timeout".
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from fs_spark import Entity, Feature, FeatureLookup, FeatureStore, FeatureTable
from fs_spark.config import Settings, SparkSettings, StoreSettings
from fs_spark.storage.layout import VERSION_COLUMN
from fs_spark.training.entities import numbered
from fs_spark.training.pit_join import ROW_COLUMN

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
SPAN_SECONDS = 180 * 86400
SHAPES = {"typical": 100_000, "deep": 10_000, "skewed": 100_000}
TABLES = ("activity", "payments")
OTHERS = ("feast_shaped", "join_row_number", "duckdb_asof", "fs_spark_build")


def table(name: str) -> FeatureTable:
    return FeatureTable(
        name=name, entity=Entity(name="customer", keys={"customer_id": "long"}), event_time="ts",
        features=[Feature(name=f"{name[0]}{i}", dtype="double") for i in range(5)],
    )


def _keys(shape: str, keys: int, seed: int):
    if shape == "skewed":  # inverse-transform Pareto with tail 0.3: key 0 takes ~19% of rows
        return ((F.floor(F.pow(F.lit(1.0) - F.rand(seed), F.lit(-1 / 0.3))) - 1) % keys).cast("long")
    return (F.floor(F.rand(seed) * keys)).cast("long")


def make_data(store: FeatureStore, spark, shape: str, entities: int, feature_rows: int, folder: Path) -> str:
    keys = SHAPES[shape]
    for index, name in enumerate(TABLES):
        store.apply(table(name))
        rows = spark.range(feature_rows).select(
            _keys(shape, keys, 10 + index).alias("customer_id"),
            (F.lit(T0.timestamp()) + F.floor(F.rand(20 + index) * SPAN_SECONDS)).cast("timestamp").alias("ts"),
            *[F.rand(30 + index * 10 + i).alias(f"{name[0]}{i}") for i in range(5)],
        ).dropDuplicates(["customer_id", "ts"])
        store.write(name, rows, write_id=f"bench-{shape}-{name}")
    path = str(folder / f"entities_{shape}")
    spark.range(entities).select(
        _keys(shape, keys, 40).alias("customer_id"),
        (F.lit(T0.timestamp()) + F.floor(F.rand(41) * SPAN_SECONDS)).cast("timestamp").alias("ts"),
        (F.rand(42) > 0.5).alias("label"),
    ).write.mode("overwrite").parquet(path)
    return path


# --- the methods -----------------------------------------------------------------------------


def fs_spark_join(store, entities, lookups):
    training = store._training
    numbered_rows = numbered(entities)
    resolved = [training.resolve(lookup, entities, None, {}) for lookup in lookups]
    return training._join(numbered_rows, resolved, ["label"], [])


def _features(store, name):
    return store.read(name, include_version_column=True)


def feast_shaped(store, entities, lookups):
    result = numbered(entities).withColumnRenamed("ts", "entity_ts")
    for name in TABLES:
        feats = [f"{name[0]}{i}" for i in range(5)]
        rows = _features(store, name).withColumnRenamed(VERSION_COLUMN, "created")
        base = result.select(ROW_COLUMN, "customer_id", "entity_ts").join(
            rows, on=[result.customer_id == rows.customer_id, rows.ts <= result.entity_ts], how="inner"
        ).drop(rows.customer_id)
        ranked = base.withColumn("rn", F.row_number().over(
            Window.partitionBy(ROW_COLUMN).orderBy(F.col("ts").desc(), F.col("created").desc())))
        latest = ranked.where("rn = 1").select(F.col(ROW_COLUMN).alias("l_row"), F.col("ts").alias("l_ts"),
                                               F.col("created").alias("l_created"))
        again = base.select(*[F.col(c).alias(f"b_{c}") for c in base.columns])  # the join back, as Feast does
        cleaned = latest.join(again, on=[F.col("l_row") == F.col(f"b_{ROW_COLUMN}"), F.col("l_ts") == F.col("b_ts"),
                                         F.col("l_created") == F.col("b_created")]) \
            .select(F.col("l_row").alias(ROW_COLUMN), *[F.col(f"b_{f}").alias(f) for f in feats])
        result = result.join(cleaned, on=ROW_COLUMN, how="left")
    return result


def join_row_number(store, entities, lookups):
    result = numbered(entities)
    for name in TABLES:
        feats = [f"{name[0]}{i}" for i in range(5)]
        rows = _features(store, name).select(
            F.col("customer_id").alias("k"), F.col("ts").alias("f_ts"), F.col(VERSION_COLUMN).alias("w"), *feats)
        joined = result.join(rows, on=[result.customer_id == rows.k, rows.f_ts <= result.ts], how="left")
        ranked = joined.withColumn("rn", F.row_number().over(
            Window.partitionBy(ROW_COLUMN).orderBy(F.col("f_ts").desc_nulls_last(), F.col("w").desc_nulls_last())))
        result = ranked.where("rn = 1").drop("k", "f_ts", "w", "rn")
    return result


def floor(store, entities, lookups):
    """Not one DataFrame: the sorted inputs, written one after the other by `run`."""
    frames = [entities.repartition("customer_id").sortWithinPartitions("customer_id", "ts")]
    for name in TABLES:
        frames.append(_features(store, name).repartition("customer_id").sortWithinPartitions("customer_id", "ts"))
    return frames


class Failed(Exception):
    """A baseline that failed for a reason of its own (for example its shuffle filled the disk)."""


def run_spark(spark, build, timeout: float) -> float | None:
    """Seconds to build the frames (planning included) and write each to the no-op sink, or None
    when cancelled at `timeout`."""
    group = f"bench-{time.monotonic_ns()}"
    spark.sparkContext.setJobGroup(group, group, interruptOnCancel=True)
    timer = threading.Timer(timeout, lambda: spark.sparkContext.cancelJobGroup(group))
    start = time.perf_counter()
    timer.start()
    try:
        frames = build()
        for frame in frames if isinstance(frames, list) else [frames]:
            frame.write.format("noop").mode("overwrite").save()
        return time.perf_counter() - start
    except Exception as exc:
        if time.perf_counter() - start >= timeout * 0.99:
            return None
        reason = next((line for line in str(exc).splitlines() if "Exception:" in line), str(exc)[:200])
        raise Failed(reason.strip()[:160]) from None
    finally:
        timer.cancel()
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)


def duckdb_asof(store, entity_path: str, timeout: float) -> float | None:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    sources = {n: f"read_parquet('{store._registry.current(n).storage_path}/**/*.parquet', hive_partitioning = false)" for n in TABLES}
    a, p = TABLES
    query = f"""
        CREATE OR REPLACE TEMP TABLE result AS
        SELECT e.*, a.a0, a.a1, a.a2, a.a3, a.a4, p.p0, p.p1, p.p2, p.p3, p.p4
        FROM read_parquet('{entity_path}/*.parquet') e
        ASOF LEFT JOIN {sources[a]} a ON e.customer_id = a.customer_id AND e.ts >= a.ts
        ASOF LEFT JOIN {sources[p]} p ON e.customer_id = p.customer_id AND e.ts >= p.ts
    """
    timer = threading.Timer(timeout, con.interrupt)
    start = time.perf_counter()
    timer.start()
    try:
        con.execute(query)
        return time.perf_counter() - start
    except duckdb.InterruptException:
        return None
    finally:
        timer.cancel()


def fs_spark_build(store, entities, lookups) -> float:
    start = time.perf_counter()
    store.create_training_set(entities, lookups, label="label")
    return time.perf_counter() - start


# --- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--feature-rows", type=int, default=5_000_000)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per method; the best is reported")
    parser.add_argument("--others", nargs="*", default=list(OTHERS), choices=list(OTHERS),
                        help="methods timed besides fs_spark and the floor (default: all)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="fs_spark_bench_pit_"))
    settings = Settings(store=StoreSettings(root=str(work / "store"), user="bench"),
                        spark=SparkSettings(master="local[2]", driver_memory="8g"))
    spark_methods = {"fs_spark": fs_spark_join, "feast_shaped": feast_shaped,
                     "join_row_number": join_row_number, "floor": floor}
    spark_methods = {name: method for name, method in spark_methods.items() if name in ("fs_spark", "floor", *args.others)}
    try:
        for shape in args.shapes:
            store = FeatureStore(settings=settings.model_copy(update={
                "store": StoreSettings(root=str(work / f"store_{shape}"), user="bench")}))
            spark = store.spark
            spark.sparkContext.setLogLevel("OFF")  # cancelled baselines log long stack traces
            entity_path = make_data(store, spark, shape, args.entities, args.feature_rows, work)
            entities = spark.read.parquet(entity_path)
            lookups = [FeatureLookup(table_name=n) for n in TABLES]
            for warm_up in (fs_spark_join, floor):  # the JIT, before any timing
                run_spark(spark, lambda: warm_up(store, entities, lookups), args.timeout)
            runs: dict[str, list[float | None]] = {name: [] for name in spark_methods}
            times: dict[str, float | str | None] = {}
            for _ in range(args.repeat):  # rounds, so no method is always timed first or last
                for name, method in spark_methods.items():
                    if name in times:  # failed or timed out: not run again
                        continue
                    try:
                        runs[name].append(run_spark(spark, lambda: method(store, entities, lookups), args.timeout))
                    except Failed as failure:
                        if name in ("fs_spark", "floor"):
                            raise
                        times[name] = f"failed: {failure}"
                    if None in runs[name]:
                        times[name] = None
            for name, seconds in runs.items():
                if name not in times:
                    times[name] = min(seconds)
            times = {name: times[name] for name in spark_methods}
            if "duckdb_asof" in args.others:
                times["duckdb_asof"] = duckdb_asof(store, entity_path, args.timeout)
            if "fs_spark_build" in args.others:
                times["fs_spark_build"] = min(fs_spark_build(store, entities, lookups) for _ in range(args.repeat))
            report(shape, args, times)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fmt(seconds: float | str | None, timeout: float) -> str:
    if isinstance(seconds, str):
        return seconds
    return f"> {timeout:.0f} s" if seconds is None else f"{seconds:8.2f} s"


def report(shape: str, args, times: dict[str, float | None]) -> None:
    floor_s, ours = times["floor"], times["fs_spark"]
    print(f"\n== {shape}: {args.entities:,} entity rows, 2 tables x {args.feature_rows:,} rows, {SHAPES[shape]:,} keys ==")
    for name, seconds in times.items():
        ratio = f"{seconds / floor_s:6.2f}x floor" if isinstance(seconds, float) else ""
        print(f"  {name:<16} {_fmt(seconds, args.timeout)}  {ratio}")
    for other in ("feast_shaped", "join_row_number", "duckdb_asof"):
        if ours and other in times:
            value = times[other]
            if isinstance(value, str):
                continue
            ratio = f"{value / ours:.1f}x" if value else f"> {args.timeout / ours:.1f}x (timed out)"
            print(f"  {other} / fs_spark: {ratio}")
    print(flush=True)


if __name__ == "__main__":
    main()
