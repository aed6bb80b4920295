"""A training set on a laptop: delta-rs (no JVM) against starting Spark and `toPandas()`.

    make bench
    python -m bench.local_read --rows 1000000

A training set of --rows entity rows x 30 feature columns (plus keys, time and a label) is
built once. Then each reader runs in a fresh Python process, as a data scientist's would, and
is timed from the process's start:

- delta-rs: `fs_spark.open_training_set(id).to_batches()` to the first batch, and `to_pandas()`
  in full (reading, the digest check against the manifest, the entity rows' order);
- Spark: a local Spark session started, then the first row of the training set's Delta table
  (`toLocalIterator`, storage order as delta-rs's first batch), and `load_df().toPandas()` in
  full (the entity rows' order, with Arrow, as Spark does by default);
- to tensors: `to_torch()` through a PyTorch DataLoader (digest check, then every batch), against
  Spark's `toPandas()` turned into one tensor per column.

Best of 2 runs each; ratios are Spark's time over delta-rs's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import Settings, SparkSettings, StoreSettings

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 1, tzinfo=UTC)
FEATURES = 30

_DELTA_RS = """
import sys, time, json
started = time.perf_counter()
import fs_spark
rows = fs_spark.open_training_set(sys.argv[1], root=sys.argv[2])
if sys.argv[3] == "first":
    next(iter(rows.to_batches(batch_rows=65536)))
elif sys.argv[3] == "tensors":  # the digest checked first, then batches of tensors through a DataLoader
    from torch.utils.data import DataLoader
    batches = DataLoader(rows.to_torch(batch_size=65536), batch_size=None)
    assert sum(len(batch["label"]) for batch in batches) == int(sys.argv[4])
else:
    frame = rows.to_pandas()
    assert len(frame) == int(sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

_SPARK = """
import sys, time, json
started = time.perf_counter()
import fs_spark
from fs_spark.config import Settings, SparkSettings, StoreSettings
settings = Settings(store=StoreSettings(root=sys.argv[2]), spark=SparkSettings(master="local[2]", driver_memory="6g"))
store = fs_spark.FeatureStore(settings=settings)
training_set = store.training_set(sys.argv[1])
if sys.argv[3] == "first":  # storage order, as delta-rs's first batch: no sort
    manifest = training_set.manifest
    stored = store.spark.read.format("delta").option("versionAsOf", manifest.output_delta_version)
    next(stored.load(manifest.output_path).toLocalIterator())
else:
    pandas = training_set.load_df().toPandas()
    assert len(pandas) == int(sys.argv[4])
    if sys.argv[3] == "tensors":
        import torch
        numeric = pandas.drop(columns=["ts"])
        tensors = {name: torch.from_numpy(numeric[name].to_numpy()) for name in numeric.columns}
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def build(root: Path, rows: int) -> str:
    settings = Settings(store=StoreSettings(root=str(root), user="bench"),
                        spark=SparkSettings(master="local[2]", driver_memory="6g", shuffle_partitions=8))
    store = FeatureStore(settings=settings)
    table = FeatureTable(
        name="wide",
        entity=Entity(name="customer", keys={"customer_id": "long"}),
        event_time="ts",
        features=[Feature(name=f"f{i}", dtype="double" if i % 3 else "long") for i in range(FEATURES)],
    )
    store.apply(table)
    spark = store.spark
    columns = [f"CAST((id * {i + 7}) % 100003 AS {'double' if i % 3 else 'long'}) AS f{i}" for i in range(FEATURES)]
    store.write("wide", spark.range(rows).selectExpr("id AS customer_id", f"timestamp'{T0.isoformat()}' AS ts",
                                                     *columns))
    at = (T0 + timedelta(days=1)).isoformat()
    entities = spark.range(rows).selectExpr("id AS customer_id", f"timestamp'{at}' AS ts",
                                            "CAST(id % 2 AS DOUBLE) AS label")
    built = store.create_training_set(entities, [f"wide:f{i}" for i in range(FEATURES)], label="label")
    spark.stop()
    return built.id


def timed(script: str, training_set_id: str, root: Path, what: str, rows: int) -> float:
    best = float("inf")
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", script, training_set_id, str(root), what, str(rows)],
                             capture_output=True, text=True, cwd=ROOT, check=True)
        best = min(best, json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fs_bench_local_"))
    try:
        root = folder / "store"
        started = time.perf_counter()
        training_set_id = build(root, args.rows)
        print(f"training set of {args.rows:,} rows x {FEATURES} features built in "
              f"{time.perf_counter() - started:.1f} s; each reader in a fresh process, best of 2:", flush=True)
        for what, label in (("first", "first batch"), ("full", "full read to pandas"),
                            ("tensors", "full read to tensors")):
            local = timed(_DELTA_RS, training_set_id, root, what, args.rows)
            spark = timed(_SPARK, training_set_id, root, what, args.rows)
            print(f"  {label:<22} delta-rs {local:6.2f} s   Spark session + read {spark:6.2f} s   "
                  f"(delta-rs {spark / local:.1f}x faster)", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
