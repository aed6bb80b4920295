"""`fs-spark`: the command line over FeatureStore.

    fs-spark init
    fs-spark plan conf/features            # what apply would change, changing nothing
    fs-spark apply conf/features
    fs-spark ingest customer_activity data.parquet --mode quarantine
    fs-spark versions customer_activity
    fs-spark read customer_activity --version 2 --limit 20   (alias: show)
    fs-spark build-training-set data/labels --spec conf/training/churn.yaml
    fs-spark export customer_activity /shared/eu/activity --version 2 --format parquet
    fs-spark training-sets
    fs-spark rebuild-training-set <id>     # from its manifest alone, digest checked
    fs-spark vacuum customer_activity --retention-hours 168
    fs-spark vacuum --all                  # the scheduled retention pass, from conf

Errors are printed as one line naming the table, feature and rule, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime

from fs_spark.config import load_settings
from fs_spark.definitions.yaml_io import load_definitions
from fs_spark.errors import FsSparkError, StoreNotFoundError
from fs_spark.governance.exports import FORMATS
from fs_spark.progress import stage_progress
from fs_spark.provenance import SourceInfo
from fs_spark.storage.paths import StorePaths
from fs_spark.store import FeatureStore
from fs_spark.training.inputs import ENTITY_FORMATS, read_entities
from fs_spark.training.spec import load_spec

READ_FORMATS = ("parquet", "csv", "json", "delta")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fs-spark", description="A feature store on Spark and Delta Lake.")
    parser.add_argument("--root", help="store root (default: store.root from conf/fs_spark.yaml)")
    parser.add_argument("--conf", help="settings file (default: conf/fs_spark.yaml when present)")
    parser.add_argument("--user", help="principal recorded in provenance")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init", help="create the store's catalog tables")
    commands.add_parser("catalog", help="document the catalog tables and columns")
    commands.add_parser("submit-args", help="print the spark-submit flags for Delta (use as $(fs-spark submit-args))")
    commands.add_parser("tables", help="list feature tables")
    for name, text in (("plan", "show what apply would change"), ("apply", "apply definitions")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("definitions", help="a YAML file or a folder of them")
    ingest = commands.add_parser("ingest", help="validate a file and write it as a new version")
    ingest.add_argument("table")
    ingest.add_argument("input", help="path of the data to ingest")
    ingest.add_argument("--format", choices=READ_FORMATS, default="parquet")
    ingest.add_argument("--mode", choices=("strict", "quarantine"), default="strict")
    ingest.add_argument("--write-id", help="identity of this write, for safe retries")
    ingest.add_argument("--source-description", default="", help="default: the input path")
    versions = commands.add_parser("versions", help="list a table's versions")
    versions.add_argument("table")
    versions.add_argument("--json", action="store_true", help="one JSON object per line")
    for name in ("read", "show"):
        read = commands.add_parser(name, help="print a table as of a version")
        read.add_argument("table")
        group = read.add_mutually_exclusive_group()
        group.add_argument("--version", help="a version number or version ID")
        group.add_argument("--as-of", help="an ISO-8601 time with zone, e.g. 2024-05-01T00:00:00+00:00")
        read.add_argument("--limit", type=int, default=20)
        read.add_argument("--features", help="comma-separated feature names")
    build = commands.add_parser("build-training-set", help="build a point-in-time training set")
    build.add_argument("entities", help="entity rows: a Delta or Parquet path, a CSV/JSON file, or a table name")
    build.add_argument("--spec", required=True, help="training-set YAML, e.g. conf/training/churn.yaml")
    build.add_argument("--format", choices=ENTITY_FORMATS, default="auto")
    build.add_argument("--output", help="where to write the rows (default: under the store root)")
    build.add_argument("--quiet", action="store_true", help="no stage progress on stderr")
    export = commands.add_parser("export", help="copy a table's rows as of a version out of the store")
    export.add_argument("table")
    export.add_argument("path", help="destination (refused if it exists, unless --overwrite)")
    group = export.add_mutually_exclusive_group()
    group.add_argument("--version", help="a version number or version ID (default: the latest)")
    group.add_argument("--as-of", help="an ISO-8601 time with zone")
    export.add_argument("--features", help="comma-separated feature names")
    export_set = commands.add_parser("export-training-set", help="copy a stored training set out of the store")
    export_set.add_argument("training_set_id")
    export_set.add_argument("path", help="destination (refused if it exists, unless --overwrite)")
    for sub in (export, export_set):
        sub.add_argument("--format", choices=FORMATS, default="parquet")
        sub.add_argument("--overwrite", action="store_true")
    commands.add_parser("training-sets", help="list training sets")
    rebuild = commands.add_parser("rebuild-training-set", help="rebuild a training set from its manifest")
    rebuild.add_argument("training_set_id")
    rebuild.add_argument("--limit", type=int, default=0, help="also print this many rows")
    vacuum = commands.add_parser("vacuum", help="Delta VACUUM of a feature table, guarded for training sets")
    vacuum.add_argument("table", nargs="?", help="one table; or --all")
    vacuum.add_argument(
        "--all",
        action="store_true",
        help="the scheduled pass: every table with its retention from conf, keeping what training sets need",
    )
    vacuum.add_argument("--retention-hours", type=float, help="default: the table's Delta retention (7 days)")
    vacuum.add_argument("--force", action="store_true", help="even if recorded training sets need the files")
    vacuum.add_argument("--reason", default="", help="why, kept in the removal's record")
    runs = commands.add_parser("runs", help="list runs with their metrics")
    runs.add_argument("--experiment", help="only this experiment's runs")
    commands.add_parser("models", help="list model versions and what is deployed")
    lineage = commands.add_parser("lineage", help="the lineage around a node: text, HTML or DOT")
    lineage.add_argument("node", help="an ID (feature version, training set, run, model version, ...) or kind:id")
    lineage.add_argument("--html", help="write a page for people to read here")
    lineage.add_argument("--dot", help="write Graphviz DOT here")
    lineage.add_argument("--direction", choices=("upstream", "downstream", "both"), default="both")
    commands.add_parser("reconcile", help="check every recorded link; exit 1 on an unauthorised dangling one")
    rollback = commands.add_parser("rollback", help="make a known-good version current again (a new version)")
    rollback.add_argument("table")
    rollback.add_argument("version", help="the version number or ID to make current")
    rollback.add_argument("--reason", required=True)
    for name, text in (
        ("quarantine", "quarantine a version: builds and reads refuse it"),
        ("release", "lift a version's quarantine"),
        ("recall", "what used a version's rows"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("table")
        sub.add_argument("version", help="a version number or ID")
        if name != "recall":
            sub.add_argument("--reason", required=name == "quarantine", default="")
    deprecate = commands.add_parser("deprecate", help="schedule a feature's (or table's) deprecation")
    deprecate.add_argument("table")
    deprecate.add_argument("--feature", help="default: the whole table")
    deprecate.add_argument("--announce", required=True, help="ISO-8601 time with zone: builds warn from then")
    deprecate.add_argument("--end", required=True, help="ISO-8601 time with zone: builds refuse from then")
    deprecate.add_argument("--replacement", help="what to use instead, as table:feature")
    deprecate.add_argument("--reason", required=True)
    commands.add_parser("deprecations", help="list the deprecation schedules in force")
    quality = commands.add_parser("quality", help="the quality scoreboard: rule failures, quarantine, drift, alerts")
    quality.add_argument("--table", help="only this table")
    drift = commands.add_parser("drift", help="drift of a feature version against a baseline")
    drift.add_argument("table")
    drift.add_argument("--version", help="a version number or ID (default: the latest)")
    drift.add_argument("--baseline", default="previous", help="previous (default) or a training set ID")
    drift.add_argument("--features", help="comma-separated feature names (default: all)")
    drift.add_argument("--fail-on-breach", action="store_true", help="exit 1 when a threshold is breached")
    return parser


def _version_arg(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def _version_required(text: str) -> int | str:
    return int(text) if text.isdigit() else text


# Commands that may start a store at a new root; every other one refuses a root that holds none,
# so a mistyped --root is an error instead of an empty store.
CREATING_COMMANDS = ("init", "plan", "apply", "ingest")


def run(argv: Sequence[str], out=sys.stdout) -> int:
    args = _parser().parse_args(argv)
    if args.command == "catalog":
        from fs_spark.catalog.schema import describe_catalog

        print(describe_catalog(), file=out)
        return 0
    settings = load_settings(args.conf)
    if args.command == "submit-args":
        from fs_spark.session import submit_args

        print(" ".join(submit_args(settings.spark)), file=out)
        return 0
    root = StorePaths(args.root or settings.store.root)
    if args.command not in CREATING_COMMANDS and not root.holds_store():
        raise StoreNotFoundError(root.root)
    store = FeatureStore(root.root, settings=settings, user=args.user)
    if args.command == "init":
        store.init()
        print(f"initialised store at {store.root}", file=out)
    elif args.command == "tables":
        for name in store.list_tables():
            print(name, file=out)
    elif args.command in ("plan", "apply"):
        tables = load_definitions(args.definitions)
        items = store.plan(*tables) if args.command == "plan" else store.apply(*tables)
        for item in items:
            print(item, file=out)
    elif args.command == "ingest":
        frame = store.spark.read.format(args.format)
        if args.format == "csv":
            frame = frame.option("header", "true").option("inferSchema", "true")
        df = frame.load(args.input)
        source = SourceInfo(description=args.source_description or f"{args.format}:{args.input}")
        version = store.write(args.table, df, mode=args.mode, write_id=args.write_id, source=source)
        print(
            f"{args.table}: version {version.version_number} ({version.version_id}) delta {version.delta_version}: "
            f"{version.row_count} rows written, {version.quarantined_row_count} quarantined",
            file=out,
        )
    elif args.command == "versions":
        for v in store.versions(args.table):
            if args.json:
                print(json.dumps(v.model_dump(mode="json"), sort_keys=True), file=out)
            else:
                print(
                    f"v{v.definition_version} #{v.version_number:<4} {v.version_id}  delta={v.delta_version:<4} "
                    f"{v.committed_at:%Y-%m-%dT%H:%M:%S%z}  rows={v.row_count} quarantined={v.quarantined_row_count} "
                    f"by={v.user}",
                    file=out,
                )
    elif args.command in ("read", "show"):
        as_of = datetime.fromisoformat(args.as_of) if args.as_of else None
        features = args.features.split(",") if args.features else None
        table_rows = store.read(args.table, version=_version_arg(args.version), as_of=as_of, features=features)
        rows = table_rows.orderBy(*table_rows.columns[:2]).limit(args.limit).collect()
        print("\t".join(table_rows.columns), file=out)
        for row in rows:
            print("\t".join("" if v is None else str(v) for v in row), file=out)
    elif args.command == "build-training-set":
        spec = load_spec(args.spec)
        entities = read_entities(store.spark, args.entities, args.format)
        progress = nullcontext() if args.quiet else stage_progress(store.spark)
        with progress:
            built = store.create_training_set(entities, list(spec.feature_lookups), path=args.output, **spec.options())
        m = built.manifest
        print(f"training set {built.id}: {m.row_count} rows at {m.output_path}", file=out)
        for lookup in built.lookups:
            print(
                f"  {lookup.table_name} version {lookup.version_number} ({lookup.version_id}) delta {lookup.delta_version}: "
                f"{', '.join(f.output for f in lookup.features)}",
                file=out,
            )
    elif args.command in ("export", "export-training-set"):
        mode = "overwrite" if args.overwrite else "error"
        if args.command == "export":
            made = store.export(
                args.table,
                args.path,
                version=_version_arg(args.version),
                mode=mode,
                format=args.format,
                as_of=datetime.fromisoformat(args.as_of) if args.as_of else None,
                features=args.features.split(",") if args.features else None,
            )
        else:
            made = store.export_training_set(args.training_set_id, args.path, format=args.format, mode=mode)
        print(
            f"export {made.export_id}: {made.row_count} rows of {made.source} to {made.path} ({made.format})", file=out
        )
    elif args.command == "training-sets":
        for m in store.training_sets():
            print(
                f"{m.training_set_id}  {m.created_at:%Y-%m-%dT%H:%M:%S%z}  rows={m.row_count}  name={m.name or ''}  "
                f"by={m.user}  versions={','.join(m.feature_version_ids)}",
                file=out,
            )
    elif args.command == "rebuild-training-set":
        rebuilt = store.load_training_set(args.training_set_id)
        print(f"training set {rebuilt.id} rebuilt: digest {rebuilt.manifest.content_digest} matches", file=out)
        if args.limit:
            rebuilt_rows = rebuilt.load_df()
            print("\t".join(rebuilt_rows.columns), file=out)
            for row in rebuilt_rows.limit(args.limit).collect():
                print("\t".join("" if v is None else str(v) for v in row), file=out)
    elif args.command == "vacuum":
        if args.all == bool(args.table):
            print("fs-spark vacuum: name one table, or pass --all", file=sys.stderr)
            return 2
        if args.all:
            results = store.run_retention(reason=args.reason or "scheduled retention")
        else:
            results = [
                store.vacuum(args.table, retention_hours=args.retention_hours, force=args.force, reason=args.reason)
            ]
        for result in results:
            print(f"{result.table}: {result.deleted_files} file(s) deleted", file=out)
            for training_set_id in result.expired:
                print(f"  training set {training_set_id} can no longer be rebuilt", file=out)
            if result.kept_files:
                print(f"  {result.kept_files} file(s) kept, held by: {', '.join(result.held_by)}", file=out)
    elif args.command == "runs":
        for info in store.tracking.runs(args.experiment):
            metrics = " ".join(f"{k}={v:g}" for k, v in sorted(store.tracking.metrics(info.run_id).items()))
            print(f"{info.run_id}  {info.name or '-'}  {info.stage}  {info.status}  {metrics}", file=out)
    elif args.command == "models":
        for model in store.models.versions():
            print(
                f"{model.model_name} v{model.version}  {model.model_version_id}  run={model.run_id or '-'}  "
                f"training_sets={','.join(model.training_set_ids)}",
                file=out,
            )
        for live in store.models.deployments():
            print(
                f"deployment {live.environment}: {live.model_name} v{live.model_version} {live.status} "
                f"at {live.at:%Y-%m-%dT%H:%M:%S%z}",
                file=out,
            )
    elif args.command == "lineage":
        shown = store.lineage.render(args.node, html=args.html, dot=args.dot, direction=args.direction)
        for node in sorted(shown.nodes.values(), key=lambda n: (n.kind, n.label)):
            print(f"{node.kind:<16} {node.label:<32} {node.detail}", file=out)
        for path in (args.html, args.dot):
            if path:
                print(f"wrote {path}", file=out)
    elif args.command == "reconcile":
        report = store.lineage.reconcile()
        print(report.to_text(), file=out)
        return 0 if report.ok else 1
    elif args.command == "rollback":
        rolled = store.rollback(args.table, _version_required(args.version), reason=args.reason)
        print(
            f"{args.table}: version {rolled.version_number} ({rolled.version_id}) holds the rows of version "
            f"{rolled.restores_version} again",
            file=out,
        )
    elif args.command in ("quarantine", "release"):
        change = store.quarantine_version if args.command == "quarantine" else store.release_version
        changed = change(args.table, _version_required(args.version), args.reason)
        print(
            f"{args.table}: version {changed.version_number} ({changed.version_id}) "
            f"{'quarantined' if args.command == 'quarantine' else 'released'}",
            file=out,
        )
        if args.command == "quarantine":
            print(store.recall(args.table, changed.version_id).to_text(), file=out)
    elif args.command == "recall":
        print(store.recall(args.table, _version_required(args.version)).to_text(), file=out)
    elif args.command == "deprecate":
        scheduled = store.deprecate(
            args.table,
            args.feature,
            announce=datetime.fromisoformat(args.announce),
            end=datetime.fromisoformat(args.end),
            replacement=args.replacement,
            reason=args.reason,
        )
        print(
            f"{scheduled.subject}: deprecated from {scheduled.announce.isoformat()}, "
            f"retired from {scheduled.end.isoformat()}",
            file=out,
        )
    elif args.command == "deprecations":
        for schedule in store.deprecations():
            print(
                f"{schedule.subject}  announce={schedule.announce.isoformat()}  end={schedule.end.isoformat()}  "
                f"replacement={schedule.replacement or '-'}  reason={schedule.reason}",
                file=out,
            )
    elif args.command == "quality":
        print(store.quality.scoreboard(args.table).to_text(), file=out)
    elif args.command == "drift":
        features = args.features.split(",") if args.features else None
        drifted = store.quality.check_drift(
            args.table, version=_version_arg(args.version), baseline=args.baseline, features=features
        )
        print(drifted.to_text(), file=out)
        return 1 if drifted.breached and args.fail_on_breach else 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except FsSparkError as exc:
        print(f"fs-spark: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
