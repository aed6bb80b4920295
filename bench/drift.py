"""Drift checks: all features in one pass, against one Spark job per feature.

    make bench
    python -m bench.drift --rows 10000000 --features 20

Two batches of --rows rows and --features double features (the second shifted for half the
features) are written to Parquet. Both methods compute, for every feature, the same profile
(null and NaN counts over every row, quantiles at 101 levels from a sample of 200,000 rows per
side) of both batches:
  one_pass       `profile_pair`, what `FeatureStore.quality.check_drift` runs: one job
  per_feature    the same aggregation, one feature at a time: one job per feature
Best of --repeat runs each, in the same session; the ratio is printed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from fs_spark.config import DriftThresholds, SparkSettings
from fs_spark.quality.drift import SchemaDrift, compare
from fs_spark.quality.profile import profile_pair
from fs_spark.session import build_local_session


def make(spark, rows: int, features: int, shift: float, seed: int, path: str) -> None:
    columns = [(F.randn(seed + i) + (shift if i % 2 else 0.0)).alias(f"f{i}") for i in range(features)]
    spark.range(rows, numPartitions=8).select(*columns).write.mode("overwrite").parquet(path)


def one_pass(a, b, names, rows):
    return compare(a, b, names, DriftThresholds(), SchemaDrift(), (rows, rows))


def per_feature(a, b, names, rows):
    return [profile_pair(a.select(n), b.select(n), [n], rows=(rows, rows)) for n in names]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fs_spark_bench_drift_"))
    spark = build_local_session(SparkSettings(master="local[2]", driver_memory="8g"))
    spark.sparkContext.setLogLevel("OFF")
    try:
        make(spark, args.rows, args.features, 0.0, 1, str(work / "a"))
        make(spark, args.rows, args.features, 0.5, 101, str(work / "b"))
        a, b = spark.read.parquet(str(work / "a")), spark.read.parquet(str(work / "b"))
        names = [f"f{i}" for i in range(args.features)]
        times = {}
        for name, method in (("one_pass", one_pass), ("per_feature", per_feature)):
            runs = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = method(a, b, names, args.rows)
                runs.append(time.perf_counter() - start)
            times[name] = min(runs)
            if name == "one_pass":
                drifted = sorted(f.feature for f in result.features if f.breaches)
        print(f"\n== drift check: 2 x {args.rows:,} rows x {args.features} features ==")
        for name, seconds in times.items():
            print(f"  {name:<12} {seconds:8.2f} s  {seconds / times['one_pass']:6.2f}x one_pass")
        print(f"  features found drifted (the shifted odd ones): {len(drifted)} of {args.features}", flush=True)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
