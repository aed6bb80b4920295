"""spark-submit entry point: the scheduled retention pass, for cron or a workflow scheduler.

    spark-submit $(fs-spark submit-args) jobs/retention.py --root ./fs_store
    # crontab: 0 3 * * 0  cd /opt/features && spark-submit ... jobs/retention.py --root s3a://features/store

VACUUMs every feature table (or `--table` ones) with its retention from `retention` in
conf/fs_spark.yaml, keeping the files that recorded training sets still need. Prints one JSON
line per table (files deleted, files kept and what holds them); exit status 2 with a one-line
reason when refused (for example by the access policy: the principal needs `admin`).
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the scheduled retention pass over a store.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--table", action="append", help="only these tables (repeatable); default: all")
    parser.add_argument("--reason", default="scheduled retention", help="kept in each removal's record")
    args = parser.parse_args(argv)
    try:
        results = FeatureStore(args.root).run_retention(args.table, reason=args.reason)
    except FsSparkError as exc:
        print(f"retention refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(
            json.dumps(
                {
                    "table": result.table,
                    "deleted_files": result.deleted_files,
                    "kept_files": result.kept_files,
                    "held_by": list(result.held_by),
                }
            )
        )
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
