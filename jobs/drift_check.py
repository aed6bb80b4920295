"""spark-submit entry point: drift of a feature version against a baseline, all features in one pass.

    spark-submit $(fs-spark submit-args) jobs/drift_check.py --root ./fs_store --table customer_activity \\
        [--version 7] [--baseline previous | <training set id>] [--fail-on-breach]

Thresholds, the alert sink and quarantine-on-breach come from conf/fs_spark.yaml (`quality`).
Prints the report, then one JSON line; exit status 1 on a breach with --fail-on-breach, 2 when
the check cannot run (no baseline, unknown table or version).
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a feature version for drift.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--table", required=True)
    parser.add_argument("--version", help="a version number or ID (default: the latest)")
    parser.add_argument("--baseline", default="previous", help="previous, or a training set ID")
    parser.add_argument("--fail-on-breach", action="store_true")
    args = parser.parse_args(argv)
    version = int(args.version) if args.version and args.version.isdigit() else args.version
    try:
        report = FeatureStore(args.root).quality.check_drift(args.table, version=version, baseline=args.baseline)
    except FsSparkError as exc:
        print(f"drift check refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(report.to_text(), file=sys.stderr)
    print(
        json.dumps(
            {
                "check_id": report.check_id,
                "table": args.table,
                "version_id": report.version.version_id,
                "baseline": report.baseline,
                "breaches": [list(b) for b in report.result.breaches],
                "alert_ids": list(report.alert_ids),
                "quarantined": report.quarantined,
            }
        )
    )
    return 1 if report.breached and args.fail_on_breach else 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
