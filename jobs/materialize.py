"""spark-submit entry point: bring the online store (settings' `online.kind`) up to the latest
servable version of a feature table, from the executors; only what changed since the last run.

    spark-submit $(fs-spark submit-args) jobs/materialize.py --root ./fs_store --table customer_activity
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Materialize a feature table to the online store.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--table", required=True)
    args = parser.parse_args(argv)
    try:
        done = FeatureStore(args.root).materialize(args.table)
    except FsSparkError as exc:
        print(f"materialize refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(dataclasses.asdict(done)))
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
