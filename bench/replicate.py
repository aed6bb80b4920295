"""Replication and object storage, against baselines in the same run, on a local S3 server (moto).

    make bench                      # 10M rows
    python -m bench.replicate --rows 1000000

  replicate_full     store.replicate(to="eu") of a table of --rows rows written as --versions
                     versions, with its catalog, into an empty region
  plain_copy         the same data files and catalog files copied with boto3, one server-side copy
                     per object, no order, no checks (the baseline)
  replicate_one      one more version (10k rows) replicated incrementally
  pit_s3 / pit_local the same point-in-time build (100k entity rows) on the s3a:// store and on a
                     local folder holding the same rows: what object storage costs a build

moto is a Python server on this machine: absolute times say little about S3, the ratios (same
server, same files) say what fs_spark adds to a copy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pyspark.sql import functions as F

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import S3Settings, Settings, SparkSettings, StoreSettings
from fs_spark.session import build_local_session
from fs_spark.storage.s3 import client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import s3_server  # noqa: E402  (the tests' own server helpers)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
TABLE = FeatureTable(
    name="activity",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name=f"f{i}", dtype="double") for i in range(8)],
)


def _batch(spark, start: int, rows: int):
    frame = spark.range(start, start + rows).withColumnRenamed("id", "n")
    frame = frame.select(
        (F.col("n") % 1_000_000).alias("customer_id"),
        (F.lit(T0.timestamp()) + (F.col("n") % 86_400) * 60).cast("timestamp").alias("ts"),
        *[(F.col("n") * (i + 1) % 997 / 7.0).alias(f"f{i}") for i in range(8)],
    )
    return frame


def _plain_copy(s3: S3Settings, source: str, target: str) -> tuple[float, int]:
    s3c = client(s3)
    began, count = time.perf_counter(), 0
    for page in s3c.get_paginator("list_objects_v2").paginate(Bucket=source, Prefix="store/"):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.startswith(("store/tables/", "store/_catalog/")):
                s3c.copy({"Bucket": source, "Key": key}, target, key)
                count += 1
    return time.perf_counter() - began, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--versions", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

    folder = Path(tempfile.mkdtemp(prefix="fs_bench_replicate_"))
    with s3_server(folder) as url:
        s3 = S3Settings(endpoint=url, region="us-east-1", path_style_access=True)
        for bucket in ("bench-us", "bench-eu", "bench-plain"):
            client(s3).create_bucket(Bucket=bucket)
        regions = folder / "regions.yaml"
        regions.write_text("version: 1\nhome: us\nregions:\n  us: {root: 's3a://bench-us/store'}\n"
                           "  eu: {root: 's3a://bench-eu/store'}\n")
        spark = build_local_session(SparkSettings(master="local[2]", shuffle_partitions=4, driver_memory="8g"), s3)
        spark.sparkContext.setLogLevel("ERROR")
        settings = Settings(store=StoreSettings(root="s3a://bench-us/store", user="bench", regions_file=str(regions)),
                            s3=s3)
        home = FeatureStore(spark=spark, settings=settings)
        home.apply(TABLE)
        local = FeatureStore(str(folder / "local"), spark=spark, settings=Settings(store=StoreSettings(user="bench")))
        local.apply(TABLE)
        per = args.rows // args.versions
        for v in range(args.versions):
            batch = _batch(spark, v * per, per)
            home.write("activity", batch, write_id=f"v{v}")
            local.write("activity", batch, write_id=f"v{v}")
        print(f"{args.rows:,} rows in {args.versions} versions on s3a:// and in a local folder")

        began = time.perf_counter()
        [full] = home.replicate(to="eu")
        replicate_full = time.perf_counter() - began
        plain, objects = _plain_copy(s3, "bench-us", "bench-plain")
        print(f"replicate_full  {replicate_full:8.2f} s  {full.files} files, {full.bytes / 1e6:.0f} MB, "
              f"{full.catalog_rows} catalog rows")
        ratio = replicate_full / plain
        print(f"plain_copy      {plain:8.2f} s  {objects} objects   ratio replicate/plain {ratio:.2f}x")

        home.write("activity", _batch(spark, args.rows, 10_000), write_id="one more")
        began = time.perf_counter()
        [one] = home.replicate(to="eu")
        print(f"replicate_one   {time.perf_counter() - began:8.2f} s  {sum(t.commits for t in one.tables)} commit(s), "
              f"{one.files} file(s)")

        entities = spark.range(100_000).select(
            (F.col("id") * 7 % 1_000_000).alias("customer_id"),
            (F.lit((T0 + timedelta(days=30)).timestamp())).cast("timestamp").alias("ts"),
        ).cache()
        entities.count()
        timings = {}
        for name, store in (("pit_local", local), ("pit_s3", home)):
            store.create_training_set(entities, ["activity:f0"])  # warm-up
            began = time.perf_counter()
            store.create_training_set(entities, [f"activity:f{i}" for i in range(8)])
            timings[name] = time.perf_counter() - began
        print(f"pit_local       {timings['pit_local']:8.2f} s")
        ratio = timings["pit_s3"] / timings["pit_local"]
        print(f"pit_s3          {timings['pit_s3']:8.2f} s   ratio s3/local {ratio:.2f}x")
        spark.stop()


if __name__ == "__main__":
    main()
