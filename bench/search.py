"""Searching a catalog of 10,000 features: in process and from the command line, against
`fs-spark tables` (a command that reads the same definitions and searches nothing).

    make bench
    python -m bench.search --tables 100 --features 100

--tables tables of --features features each are applied (descriptions, tags and owners on every
feature). Then `store.search` in process (best of 5, the catalog's rows cached as in a server),
and `fs-spark --root <store> search ...` and `fs-spark --root <store> tables` each in a fresh
process, best of 3.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import Settings, SparkSettings, StoreSettings

ROOT = Path(__file__).resolve().parent.parent
QUERY = "revenue 4242"


def tables(count: int, features: int) -> list[FeatureTable]:
    return [
        FeatureTable(
            name=f"t{t:03d}",
            entity=Entity(name="customer", keys={"customer_id": "long"}),
            event_time="ts",
            owner=f"team{t % 7}",
            features=[
                Feature(name=f"f{f:03d}", dtype="double", description=f"revenue metric {t * features + f}",
                        tags=("finance",) if f % 10 == 0 else (), unit="eur")
                for f in range(features)
            ],
        )
        for t in range(count)
    ]


def best(runs: int, call) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=100)
    parser.add_argument("--features", type=int, default=100)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fs_bench_search_"))
    try:
        settings = Settings(store=StoreSettings(root=str(folder / "store"), user="bench"),
                            spark=SparkSettings(master="local[2]", driver_memory="2g"))
        store = FeatureStore(settings=settings)
        started = time.perf_counter()
        store.apply(*tables(args.tables, args.features))
        total = args.tables * args.features
        print(f"search over {total:,} features ({args.tables} tables applied in {time.perf_counter() - started:.1f} s):")
        found = store.search(QUERY)
        assert [h.name for h in found] == [f"t{4242 // args.features:03d}:f{4242 % args.features:03d}"], found
        in_process = best(5, lambda: store.search(QUERY))
        store.spark.stop()
        command = [sys.executable, "-m", "fs_spark.cli", "--root", str(folder / "store")]

        def cli(*words: str) -> None:
            subprocess.run([*command, *words], check=True, capture_output=True, cwd=ROOT)

        searched = best(3, lambda: cli("search", QUERY))
        listed = best(3, lambda: cli("tables"))
        print(f"  store.search, in process      {in_process * 1e3:8.1f} ms")
        print(f"  fs-spark search, fresh process {searched:7.2f} s  (fs-spark tables {listed:.2f} s: "
              f"searching adds {searched - listed:+.2f} s)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
