"""spark-submit entry point: replicate the store from its home region to the others.

    spark-submit $(fs-spark submit-args) jobs/replicate.py --root s3a://features-us/store --to eu
    # crontab: */5 * * * *  cd /opt/features && spark-submit ... jobs/replicate.py --root s3a://features-us/store

The regions come from `store.regions_file` (conf/regions.yaml). Each run copies what the home
region committed since the last one, in commit order, and resumes where a killed run stopped.
Prints one JSON line per region; exit status 2 with a one-line reason when refused (in a
replica region, say).
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replicate a store to its other regions.")
    parser.add_argument("--root", required=True, help="the home region's store root")
    parser.add_argument("--to", action="append", help="a region to copy to (repeatable); default: all others")
    args = parser.parse_args(argv)
    try:
        results = FeatureStore(args.root).replicate(args.to)
    except FsSparkError as exc:
        print(f"replication refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(
            json.dumps(
                {
                    "region": result.region,
                    "commits": sum(t.commits for t in result.tables),
                    "files": result.files,
                    "catalog_rows": result.catalog_rows,
                    "kept_out": list(result.skipped_tables),
                }
            )
        )
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
