"""spark-submit entry point: lay feature tables' files out by key and event time, for cron or a
workflow scheduler, after the writes of the day.

    spark-submit $(fs-spark submit-args) jobs/optimize.py --root ./fs_store
    # crontab: 30 2 * * *  cd /opt/features && spark-submit ... jobs/optimize.py --root s3a://features/store

Runs `FeatureStore.optimize` on every feature table (or `--table` ones): Delta OPTIMIZE where
files were added since the last run; no feature version is made. Prints one JSON line per Delta
table (files and bytes rewritten, the share of the table); exit status 2 with a one-line reason
when refused (the principal needs `admin`; a replica refuses it).
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lay feature tables' files out by key and event time.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--table", action="append", help="only these tables (repeatable); default: all")
    parser.add_argument("--reason", default="scheduled optimize", help="kept in each maintenance record")
    args = parser.parse_args(argv)
    store = FeatureStore(args.root)
    try:
        results = [r for name in args.table or store.list_tables() for r in store.optimize(name, reason=args.reason)]
    except FsSparkError as exc:
        print(f"optimize refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(
            json.dumps(
                {
                    "table": result.table,
                    "method": result.method,
                    "delta_version": result.delta_version,
                    "files_rewritten": result.files_removed,
                    "files_written": result.files_added,
                    "bytes_rewritten": result.bytes_rewritten,
                    "share_rewritten": round(result.rewritten_fraction, 4),
                }
            )
        )
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
