"""What recording lineage costs a training-set build, against the join itself.

    make bench
    python -m bench.lineage --entities 1000000 --feature-rows 5000000

On the typical shape of `bench.pit` (two feature tables, 5 features each), the same build runs
two ways in one session, best of --repeat each:
  untracked   `create_training_set` with no run, no MLflow and OpenLineage events off
  tracked     the same inside `store.start_run(...)` linked to a real MLflow run (sqlite tracking
              store), with OpenLineage events written by the file transport
Each build reports its phases (`TrainingSet.timings`): resolve (catalog reads), join_and_write
(entity snapshot, point-in-time join, Delta write), mlflow (dataset input), catalog (manifest
append) and openlineage (START and COMPLETE); "run start/end" is the rest of the tracked time,
the run's own start and end events. The records are everything but join_and_write.
Also timed: a lineage query (upstream of the newest training set) and a deployment record.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mlflow

from bench.pit import TABLES, make_data
from fs_spark import FeatureLookup, FeatureStore
from fs_spark.config import LineageSettings, MlflowSettings, Settings, SparkSettings, StoreSettings

PHASES = ("resolve", "join_and_write", "mlflow", "catalog", "openlineage")


def build(store, entities, lookups, tracked: bool):
    store.events.enabled = tracked
    if not tracked:
        return store.create_training_set(entities, lookups, label="label")
    with store.start_run("bench_lineage", params={"shape": "typical"}) as run:
        return run.create_training_set(entities, lookups, label="label")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--feature-rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fs_spark_bench_lineage_"))
    try:
        uri = f"sqlite:///{work / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        settings = Settings(
            store=StoreSettings(root=str(work / "store"), user="bench"),
            spark=SparkSettings(master="local[2]", driver_memory="8g"),
            mlflow=MlflowSettings(tracking_uri=uri, start_runs=True),
            lineage=LineageSettings(openlineage={"transport": {"type": "file", "log_file_path": str(work / "ol.jsonl"), "append": True}}),
        )
        store = FeatureStore(settings=settings)
        store.spark.sparkContext.setLogLevel("OFF")
        entity_path = make_data(store, store.spark, "typical", args.entities, args.feature_rows, work)
        entities = store.spark.read.parquet(entity_path)
        lookups = [FeatureLookup(table_name=n) for n in TABLES]
        build(store, entities, lookups, tracked=True)  # warm-up: JIT, Python workers, MLflow schema
        results = {}
        for tracked in (False, True):
            runs = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                built = build(store, entities, lookups, tracked)
                runs.append((time.perf_counter() - start, built))
            results["tracked" if tracked else "untracked"] = min(runs, key=lambda r: r[0])
        start = time.perf_counter()
        up = store.lineage.upstream(results["tracked"][1].id)
        query = time.perf_counter() - start
        model = store.register_model("bench_model", training_sets=[results["tracked"][1]])
        start = time.perf_counter()
        store.deploy(model.model_version_id, "prod")
        deploy = time.perf_counter() - start
        report(args, results, query, len(up.nodes), deploy)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(args, results, query: float, nodes: int, deploy: float) -> None:
    print(f"\n== training-set build, typical shape: {args.entities:,} entity rows, 2 tables x {args.feature_rows:,} rows ==")
    print(f"  {'':<10} {'total':>8} " + " ".join(f"{p:>14}" for p in (*PHASES, "run start/end"))
          + f" {'records':>8} {'records/join':>13}")
    for name, (total, built) in results.items():
        t = built.timings
        run = total - sum(t.get(p, 0.0) for p in PHASES)  # the run's own start and end events
        records = total - t["join_and_write"]
        print(f"  {name:<10} {total:7.2f}s " + " ".join(f"{t.get(p, 0.0):13.3f}s" for p in PHASES)
              + f" {run:13.3f}s {records:7.2f}s {records / t['join_and_write']:12.1%}")
    (untracked, _), (tracked, _) = results["untracked"], results["tracked"]
    print(f"  tracked / untracked build: {tracked / untracked:.2f}x")
    print(f"  lineage query (upstream of the training set, {nodes} nodes): {query:.2f} s; deployment record: {deploy:.2f} s")
    print(flush=True)


if __name__ == "__main__":
    main()
