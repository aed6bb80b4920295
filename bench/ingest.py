"""Validated ingestion against a plain Delta append of the same DataFrame, in the same run.

    make bench                      # 1M and 10M rows x 20 features
    python -m bench.ingest --rows 1000000 --repeat 2

The source is written to Parquet once (untimed); every method then reads that same Parquet:
  plain_append      df.write.format("delta").mode("append")       (the baseline)
  clustered_append  the former inline layout without validation: range-partitioned by (month,
                    key), sorted, into the same partitioned table
  fs_spark_write_id FeatureStore.write(..., write_id=...)        validated, one pass, unclustered
  fs_spark_default  FeatureStore.write(...)                       + a content-digest pass for the retry identity
  fs_spark_write_optimize  fs_spark_write_id, then FeatureStore.optimize: the total work of a
                    validated write laid out by key and time (against append_validate_zorder)
  merge_into        Databricks Feature Engineering's write_table: MERGE INTO on the keys and event
                    time, the batch into a table already holding the previous batch (same keys,
                    earlier times; that table is written untimed)
  append_validate   a plain append, then one validation job per rule over the table (the shape
                    of a Great-Expectations-style check: the same rules fs_spark checks in its pass)
  append_validate_zorder  append_validate, then Delta's OPTIMIZE ZORDER BY the key: the
                    competitor given a key layout afterwards, as a Delta user wanting pruned reads
                    would run it; also what a write that defers clustering to a compaction costs
Each method appends to its own fresh table; the best of --repeat runs is reported, with ratios
against the plain append and against the clustered append (the cost of validation itself).
Then, whether the layout pays for itself, over the fs_spark table (as written, and after
`optimize`) against the plain append of the same rows: a read of one key (median of 5 keys), and
the point-in-time join of 100k entity rows of 1% of the keys (a contiguous ID range, as a segment
or a shard is) over the last 30 days.
First, the latency of 10-row writes (the fixed cost of a version), against a plain Delta append
of the same 10 rows.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import functions as F

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import Settings, SparkSettings, StoreSettings
from fs_spark.ingest.conform import conform
from fs_spark.ingest.rules import row_rules
from fs_spark.storage.layout import VERSION_COLUMN, create_table, data_columns, layout
from fs_spark.training.pit_join import JoinSide, point_in_time_join

N_FEATURES = 20
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def definition(name: str) -> FeatureTable:
    features = [Feature(name=f"f{i:02d}", dtype="double", min_value=-10.0, max_value=10.0, nullable=i % 2 == 0)
                for i in range(N_FEATURES - 2)]
    features.append(Feature(name="count_7d", dtype="long", min_value=0))
    features.append(Feature(name="segment", dtype="string", allowed_values=("a", "b", "c", "d")))
    return FeatureTable(name=name, entity=Entity(name="entity", keys={"entity_id": "long"}), event_time="event_ts",
                        features=features, rules=[{"name": "f00_le_f01", "expression": "f00 <= f01"}])


def make_source(spark, rows: int, path: str) -> None:
    """rows rows over rows/10 keys and 180 days; values that pass every rule."""
    keys = max(rows // 10, 1)
    df = spark.range(rows).select(
        (F.col("id") % keys).alias("entity_id"),
        (F.lit(T0.timestamp()) + (F.col("id") / keys).cast("long") * 86400 * 18 + F.col("id") % keys)
        .cast("timestamp").alias("event_ts"),
    )
    base = F.rand(7) * 5 - 5
    df = df.withColumn("f00", base).withColumn("f01", base + F.rand(8) * 5)
    for i in range(2, N_FEATURES - 2):
        df = df.withColumn(f"f{i:02d}", F.rand(i) * 20 - 10)
    df = df.withColumn("count_7d", (F.rand(99) * 100).cast("long"))
    df = df.withColumn("segment", F.element_at(F.array(*[F.lit(s) for s in "abcd"]), (F.rand(5) * 4).cast("int") + 1))
    df.write.mode("overwrite").parquet(path)


def previous_batch(spark, source: str, path: str) -> None:
    """The batch before `source`: the same keys and values, 180 days earlier."""
    df = spark.read.parquet(source).withColumn("event_ts", F.col("event_ts") - F.expr("INTERVAL 180 DAYS"))
    df.write.format("delta").save(path)


def merge_into(spark, source: str, path: str) -> None:
    from delta.tables import DeltaTable

    batch = spark.read.parquet(source)
    condition = "t.entity_id = s.entity_id AND t.event_ts = s.event_ts"
    DeltaTable.forPath(spark, path).alias("t").merge(batch.alias("s"), condition).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()


def append_then_validate(spark, source: str, path: str, table: FeatureTable) -> None:
    """Append, then one job per rule counting the rows that break it (and one for duplicates)."""
    spark.read.parquet(source).write.format("delta").mode("append").save(path)
    written = spark.read.format("delta").load(path)
    for rule in row_rules(table, datetime.now(timezone.utc)):
        written.where(rule.broken).count()
    written.groupBy(*table.keys, table.event_time).count().where("count > 1").count()


def zorder_by_key(spark, path: str) -> None:
    """Delta's OPTIMIZE ZORDER BY the key over the table (a dataChange=false rewrite)."""
    from delta.tables import DeltaTable

    DeltaTable.forPath(spark, path).optimize().executeZOrderBy("entity_id")


def layout_reads(spark, rows: int, fs_path: str, plain_path: str) -> dict[str, tuple[float, float]]:
    """Seconds over the fs_spark table and over the plain append of the same rows: one key read
    (median of 5), and a point-in-time join of 100k entity rows over 1% of the keys."""
    keys = max(rows // 10, 1)
    rng = random.Random(3)
    picks = [rng.randrange(keys) for _ in range(5)]
    out = {}
    times = {}
    for name, path in (("fs_spark", fs_path), ("plain", plain_path)):
        frame = spark.read.format("delta").load(path)
        times[name] = statistics.median(timed(lambda k=k: frame.where(F.col("entity_id") == k).collect()) for k in picks)
    out["key_read"] = (times["fs_spark"], times["plain"])
    lo, width = keys // 2, max(keys // 100, 1)
    t_max = T0 + timedelta(days=180)
    entities = spark.range(100_000).select(
        (F.lit(lo) + F.col("id") % width).alias("customer"),
        (F.lit(int((t_max - timedelta(days=30)).timestamp())) + F.col("id") * 25 % (30 * 86400)).cast("timestamp").alias("as_of"),
    ).cache()
    entities.count()
    for name, path in (("fs_spark", fs_path), ("plain", plain_path)):
        frame = spark.read.format("delta").load(path)
        if VERSION_COLUMN not in frame.columns:
            frame = frame.withColumn(VERSION_COLUMN, F.lit(1).cast("long"))
        frame = frame.where(F.col("entity_id").between(lo, lo + width - 1) & (F.col("event_ts") <= F.lit(t_max)))
        side = JoinSide(("customer",), "as_of", ("entity_id",), "event_ts", VERSION_COLUMN, frame, (("f00", "f00"), ("count_7d", "count_7d")))
        times[name] = timed(lambda side=side: point_in_time_join(entities, [side]).write.format("noop").mode("overwrite").save())
    out["pit_join"] = (times["fs_spark"], times["plain"])
    entities.unpersist()
    return out


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(rows: int, repeat: int, work: Path, spark) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    source = str(work / f"source_{rows}")
    make_source(spark, rows, source)
    best: dict[str, float] = {}
    for attempt in range(repeat):
        root = work / f"store_{rows}_{attempt}"
        store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(root), user="bench")))
        store.apply(definition("plain_shape"), definition("with_id"), definition("default_id"))
        plain_path, clustered_path = str(root / "plain_append"), str(root / "clustered_append")
        shape = definition("plain_shape")
        create_table(spark, clustered_path, shape)
        df = lambda: spark.read.parquet(source)  # noqa: E731
        clustered = lambda: layout(conform(df(), shape), shape).withColumn(VERSION_COLUMN, F.lit(1).cast("long")).select(  # noqa: E731
            [c for c, _ in data_columns(shape)])
        merge_path, validated_path = str(root / "merge_into"), str(root / "append_validate")
        previous_batch(spark, source, merge_path)
        results = {
            "plain_append": timed(lambda: df().write.format("delta").mode("append").save(plain_path)),
            "clustered_append": timed(lambda: clustered().write.format("delta").mode("append").save(clustered_path)),
            "fs_spark_write_id": timed(lambda: store.write("with_id", df(), write_id=f"bench-{attempt}")),
            "fs_spark_default": timed(lambda: store.write("default_id", df())),
            "merge_into": timed(lambda: merge_into(spark, source, merge_path)),
            "append_validate": timed(lambda: append_then_validate(spark, source, validated_path, shape)),
        }
        results["append_validate_zorder"] = results["append_validate"] + timed(lambda: zorder_by_key(spark, validated_path))
        assert store.versions("with_id")[0].row_count == rows
        fs_path = store.versions("with_id")[0].storage_path
        if attempt == 0:
            reads = {f"{name} (as written)": pair for name, pair in layout_reads(spark, rows, fs_path, plain_path).items()}
        results["fs_spark_write_optimize"] = results["fs_spark_write_id"] + timed(lambda: store.optimize("with_id"))
        if attempt == 0:
            reads |= {f"{name} (optimized)": pair for name, pair in layout_reads(spark, rows, fs_path, plain_path).items()}
        for name, seconds in results.items():
            best[name] = min(seconds, best.get(name, float("inf")))
        shutil.rmtree(root, ignore_errors=True)
    return best, reads


def small_writes(work: Path, spark, writes: int) -> dict[str, float]:
    """Median seconds of a 10-row write, the fixed cost of a version: fs_spark.write from a
    Parquet file (the optimizer knows its size) and from a DataFrame of Python rows (it does
    not), against a plain Delta append of the same rows. The first two writes warm up."""
    store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(work / "small"), user="bench")))
    store.apply(definition("small_file"), definition("small_rows"))
    plain_path = str(work / "small_plain")
    columns = [c for c, _ in data_columns(definition("small_rows")) if c != VERSION_COLUMN]
    times: dict[str, list[float]] = {"plain_append": [], "fs_spark_from_file": [], "fs_spark_from_rows": []}
    for k in range(writes + 2):
        rows = spark.range(k * 10, k * 10 + 10).select(
            F.col("id").alias("entity_id"), F.lit(T0).alias("event_ts"),
            *[F.lit(0.5).alias(f"f{i:02d}") for i in range(N_FEATURES - 2)],
            F.lit(1).cast("long").alias("count_7d"), F.lit("a").alias("segment")).select(columns)
        file = str(work / f"small_{k}.parquet")
        rows.write.parquet(file)
        local = spark.createDataFrame(rows.collect(), rows.schema)
        measured = {
            "plain_append": timed(lambda: spark.read.parquet(file).write.format("delta").mode("append").save(plain_path)),
            "fs_spark_from_file": timed(lambda: store.write("small_file", spark.read.parquet(file), write_id=f"f{k}")),
            "fs_spark_from_rows": timed(lambda: store.write("small_rows", local, write_id=f"r{k}")),
        }
        if k >= 2:
            for name, seconds in measured.items():
                times[name].append(seconds)
    return {name: statistics.median(found) for name, found in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--small-writes", type=int, default=20)
    args = parser.parse_args(argv)
    settings = SparkSettings(master="local[2]", shuffle_partitions=args.shuffle_partitions, driver_memory="8g")
    store_spark = FeatureStore(settings=Settings(spark=settings), root=tempfile.mkdtemp()).spark
    work = Path(tempfile.mkdtemp(prefix="fs_spark_bench_"))
    try:
        small = small_writes(work, store_spark, args.small_writes)
        print(f"10-row writes: local[2], {N_FEATURES} features, median of {args.small_writes} "
              "(every 100th commit also writes a Delta checkpoint)")
        for name, seconds in small.items():
            print(f"{'10':>10}  {name:<18} {seconds:>8.3f}  {seconds / small['plain_append']:>14.2f}x", flush=True)
        print(f"ingestion benchmark: local[2], {N_FEATURES} features, best of {args.repeat}")
        print(f"{'rows':>10}  {'method':<22} {'seconds':>8}  {'vs plain append':>15}  {'vs clustered append':>19}")
        layouts = {}
        for rows in args.rows:
            best, layouts[rows] = run(rows, args.repeat, work, store_spark)
            plain, clustered = best["plain_append"], best["clustered_append"]
            for name, seconds in best.items():
                print(f"{rows:>10}  {name:<22} {seconds:>8.2f}  {seconds / plain:>14.2f}x  {seconds / clustered:>18.2f}x",
                      flush=True)
            total = best["fs_spark_write_optimize"] / best["append_validate_zorder"]
            print(f"{rows:>10}  total work: fs_spark_write_optimize / append_validate_zorder = {total:.2f}x", flush=True)
        print("the layout's pay-off: the fs_spark table against a plain append of the same rows")
        print(f"{'rows':>10}  {'read':<24} {'fs_spark s':>10}  {'plain s':>8}  {'plain / fs_spark':>16}")
        for rows, reads in layouts.items():
            for name, (ours, plain) in reads.items():
                print(f"{rows:>10}  {name:<24} {ours:>10.2f}  {plain:>8.2f}  {plain / ours:>15.1f}x", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
