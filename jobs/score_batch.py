"""spark-submit entry point: score rows that hold only keys with a model logged by fs_spark.

    MLFLOW_TRACKING_URI=sqlite:///mlflow.db spark-submit $(fs-spark submit-args) jobs/score_batch.py \\
        --root ./fs_store --model demand:1 --entities data/to_score --output /data/predictions/demand

`--model` is a model version ID, NAME:VERSION, or an MLflow model URI (`models:/...`). The model
carries its features (see `FeatureStore.log_model`); they are looked up for each row, point in
time when the rows have the lookups' time column. `--entities` is a Delta or Parquet path, a
CSV/JSON file (with --format), or a table name. Prints one JSON line with the row count and
where the predictions went; exit status 2 with a one-line reason when scoring is refused.
"""

from __future__ import annotations

import argparse
import json
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.inputs import ENTITY_FORMATS, read_entities
from fs_spark.progress import progress_line


def model_reference(text: str) -> str | tuple[str, int]:
    """NAME:VERSION as (name, version); an ID or a URI as it is."""
    name, sep, number = text.rpartition(":")
    return (name, int(number)) if sep and number.isdigit() and "/" not in text else text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score rows with a model logged by fs_spark.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--model", required=True, help="model version ID, NAME:VERSION, or an MLflow model URI")
    parser.add_argument("--entities", required=True, help="the rows to score: a path or a table name")
    parser.add_argument("--format", default="auto", choices=ENTITY_FORMATS)
    parser.add_argument("--output", required=True, help="Delta table to write the predictions to")
    parser.add_argument("--on-stale", default="error", choices=("error", "warn"),
                        help="when the model's features changed since training: refuse (default) or warn")
    args = parser.parse_args(argv)
    try:
        store = FeatureStore(args.root)
        rows = read_entities(store.spark, args.entities, args.format)
        scored = store.score_batch(model_reference(args.model), rows, path=args.output, on_stale=args.on_stale)
    except FsSparkError as exc:
        print(f"scoring refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"rows": scored.count(), "output_path": args.output}))
    return 0


if __name__ == "__main__":
    with progress_line():  # one updating line on a terminal, nothing in a log
        sys.exit(main())
