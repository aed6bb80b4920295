"""spark-submit entry point: check that every link the catalog records still holds.

    spark-submit $(fs-spark submit-args) jobs/reconcile.py --root ./fs_store

Every feature version referenced by a run, training set, model version or deployment must exist
and be readable at its recorded Delta version. Prints each dangling link, then one JSON line;
exit status 1 when a link dangles with no authorised record of its removal.
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore
from fs_spark.progress import progress_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reconcile the lineage records of a store.")
    parser.add_argument("--root", required=True, help="store root")
    args = parser.parse_args(argv)
    report = FeatureStore(args.root).lineage.reconcile()
    for link in report.dangling:
        print(link, file=sys.stderr)
    print(
        json.dumps(
            {
                "checked": report.checked,
                "dangling": len(report.dangling),
                "unauthorised": [str(d) for d in report.unauthorised],
            }
        )
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
