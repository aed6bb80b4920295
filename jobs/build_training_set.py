"""spark-submit entry point: build a point-in-time training set from entity rows and a spec.

    spark-submit $(fs-spark submit-args) jobs/build_training_set.py \\
        --root ./fs_store --entities data/churn_labels --spec conf/training/churn.yaml \\
        --output /data/training/churn_2024_05

`--entities` is a Delta or Parquet path, a CSV/JSON file (with --format), or a table name.
`--output` is where the rows go (default: under the store root); the manifest is always in the
store's catalog. Prints one JSON line with the training set ID; exit status 2 with a one-line
reason when the build is refused.
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.inputs import ENTITY_FORMATS, read_entities
from fs_spark.progress import progress_line
from fs_spark.training.spec import load_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a point-in-time training set.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--entities", required=True, help="entity rows: a path or a table name")
    parser.add_argument("--format", default="auto", choices=ENTITY_FORMATS)
    parser.add_argument("--spec", required=True, help="training-set YAML, e.g. conf/training/churn.yaml")
    parser.add_argument("--output", help="where to write the rows (default: under the store root)")
    args = parser.parse_args(argv)
    try:
        store = FeatureStore(args.root)
        spec = load_spec(args.spec)
        entities = read_entities(store.spark, args.entities, args.format)
        built = store.create_training_set(entities, list(spec.feature_lookups), path=args.output, **spec.options())
    except FsSparkError as exc:
        print(f"build refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    manifest = built.manifest
    print(
        json.dumps(
            {
                "training_set_id": built.id,
                "rows": manifest.row_count,
                "output_path": manifest.output_path,
                "feature_version_ids": manifest.feature_version_ids,
                "content_digest": manifest.content_digest,
            }
        )
    )
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
