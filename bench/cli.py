"""How long the command line takes to answer questions about the catalog, on a store of 10,000
feature versions, against the same commands on a store of one version and against starting the
interpreter with fs_spark imported (the floor of any command).

    make bench
    python -m bench.cli --versions 10000

The store is real: one table applied and written once with Spark, then its version record
appended again (new IDs and numbers) through the catalog's own appends, --per-commit versions a
commit (10 by default, so 1,000 commits; one a commit, as writes make them, only takes longer to
build), and the catalog compacts itself as it goes. Each
command runs as a user runs it, `fs-spark --root <store> ...` in a fresh process, best of
--repeat; a command that started Spark would take seconds more, so the jar folder is hidden
from it (the command would fail).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.catalog.schema import FEATURE_VERSIONS
from fs_spark.config import Settings, SparkSettings, StoreSettings
from fs_spark.ids import new_id

TABLE = FeatureTable(
    name="clicks",
    entity=Entity(name="page", keys={"page_id": "long"}),
    event_time="ts",
    features=[Feature(name=f"f{i}", dtype="double") for i in range(20)],
)
COMMANDS = (
    ("versions", "clicks"),
    ("tables",),
    ("quality", "--table", "clicks"),
    ("recall", "clicks", "1"),
    ("deprecations",),
    ("versions", "clikcs"),
)


def make_store(root: Path, versions: int, per_commit: int = 10) -> str:
    settings = Settings(
        store=StoreSettings(root=str(root), user="bench"), spark=SparkSettings(master="local[2]", driver_memory="2g")
    )
    store = FeatureStore(settings=settings)
    store.apply(TABLE)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(i, t0 + timedelta(minutes=i), *[float(i)] * 20) for i in range(100)]
    schema = "page_id long, ts timestamp, " + ", ".join(f"f{i} double" for i in range(20))
    first = store.write("clicks", store.spark.createDataFrame(rows, schema))
    catalog = store._catalog
    started = time.perf_counter()
    numbers = list(range(2, versions + 1))
    for start in range(0, len(numbers), per_commit):
        records = [
            first.model_copy(
                update={
                    "version_id": new_id(),
                    "version_number": n,
                    "write_id": f"bench-{n}",
                    "committed_at": datetime.now(UTC),
                }
            ).to_row()
            for n in numbers[start : start + per_commit]
        ]
        catalog.append(FEATURE_VERSIONS, records)
    print(f"built a catalog of {versions} versions in {time.perf_counter() - started:.0f} s")
    return first.version_id


def answer_time(root: Path, command: tuple[str, ...], repeat: int) -> float:
    env = {**os.environ, "FS_SPARK_SPARK__JARS_DIR": os.devnull}
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "fs_spark.cli", "--root", str(root), *command],
            capture_output=True,
            text=True,
            env=env,
        )
        best = min(best, time.perf_counter() - began)
        if done.returncode not in (0, 2) or "DeltaJarsMissing" in done.stderr:
            raise SystemExit(f"{command} failed: {done.stderr[-2000:]}")
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--per-commit", type=int, default=10, help="versions appended per catalog commit")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="fs_spark_bench_cli_"))
    try:
        make_store(work / "small", 1)
        make_store(work / "large", args.versions, args.per_commit)
        began = time.perf_counter()
        for _ in range(args.repeat):
            subprocess.run([sys.executable, "-c", "import fs_spark.cli"], check=True)
        floor = (time.perf_counter() - began) / args.repeat
        print(f"\nfloor: python -c 'import fs_spark.cli' {floor:.2f} s")
        print(f"{'command':<28} {'1 version':>10} {f'{args.versions:,} versions':>16} {'ratio':>7} {'vs floor':>9}")
        for command in COMMANDS:
            small = answer_time(work / "small", command, args.repeat)
            large = answer_time(work / "large", command, args.repeat)
            print(
                f"{' '.join(command):<28} {small:>9.2f}s {large:>15.2f}s {large / small:>6.2f}x {large / floor:>8.2f}x"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
