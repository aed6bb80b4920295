"""spark-submit entry point: validate a file and write it to a feature table as one version.

    spark-submit $(fs-spark submit-args) jobs/ingest.py \\
        --root ./fs_store --table customer_activity --input data.parquet --mode quarantine

Apply definitions first with `--definitions conf/features` (idempotent) or `fs-spark apply`.
Exit status 2 with a one-line reason when the batch is refused.
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError, SourceInfo, load_definitions
from fs_spark.inputs import FILE_FORMATS, input_format, read_file
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate and ingest one batch into a feature table.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--table", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument(
        "--format", default="auto", choices=("auto", *FILE_FORMATS), help="auto: by the input's extension"
    )
    parser.add_argument("--mode", default="strict", choices=("strict", "quarantine"))
    parser.add_argument("--write-id", help="identity of this write, for safe retries")
    parser.add_argument(
        "--cast",
        default="none",
        choices=("none", "safe"),
        help="safe: accept narrower-typed features (a long for an int) where every value fits",
    )
    parser.add_argument("--definitions", help="apply these definitions first (file or folder)")
    args = parser.parse_args(argv)
    try:
        store = FeatureStore(args.root)
        if args.definitions:
            store.apply(*load_definitions(args.definitions))
        fmt = input_format(args.input, args.format)
        version = store.write(
            args.table,
            read_file(store.spark, args.input, fmt),
            mode=args.mode,
            write_id=args.write_id,
            source=SourceInfo(description=f"{fmt}:{args.input}"),
            cast=args.cast,
        )
    except FsSparkError as exc:
        print(f"ingest refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "version_id": version.version_id,
                "version_number": version.version_number,
                "delta_version": version.delta_version,
                "rows": version.row_count,
                "quarantined": version.quarantined_row_count,
            }
        )
    )
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
