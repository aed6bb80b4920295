"""Commands that move feature data, and so start Spark (ingest, read, export, vacuum, optimize), and
streams, which lists the streams from the catalog alone."""

from __future__ import annotations

import dataclasses
import json
import warnings

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.params import TIME_HELP, argument, command, feature_list, instant, timezone_option, version_value
from fs_spark.errors import DuplicateBatchWarning
from fs_spark.governance.exports import FORMATS
from fs_spark.ingest.conform import CASTS
from fs_spark.ingest.writer import MODES
from fs_spark.inputs import FILE_FORMATS, input_format, read_file
from fs_spark.provenance import SourceInfo

TABLE_HELP = "a feature table's name (`fs-spark tables` lists them)"


@command("ingest", "Data")
@argument("table", TABLE_HELP)
@argument("input", "the data to write: a file or folder of Parquet, CSV, JSON or Delta")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("auto", *FILE_FORMATS)),
    default="auto",
    show_default=True,
    help="the input's format (auto: by its extension; a folder with _delta_log is Delta)",
)
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default="strict",
    show_default=True,
    help="strict refuses the batch if any row breaks a rule; quarantine writes the good rows",
)
@click.option("--write-id", help="the identity of this write: a retry with it returns the first version")
@click.option(
    "--cast",
    type=click.Choice(CASTS),
    default="none",
    show_default=True,
    help="safe: also accept narrower-typed targets (a long for an int) when every value fits",
)
@click.option("--source-description", default="", help="where the data came from (default: the input path)")
@click.pass_obj
def ingest(
    cli: Cli, table: str, input: str, fmt: str, mode: str, write_id: str | None, cast: str, source_description: str
) -> None:
    """Validate a file and write it to a feature table as one new version."""
    store = cli.store(creating=True)
    store.get_table(table)  # an unknown table, a missing input or an unknown format: refused before Spark starts
    fmt = input_format(input, fmt)
    df = read_file(store.spark, input, fmt)
    source = SourceInfo(description=source_description or f"{fmt}:{input}")
    known = {v.version_id for v in store.versions(table)}  # a retry, or the same rows again, makes none
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateBatchWarning)  # said below, in one line
        version = store.write(table, df, mode=mode, write_id=write_id, source=source, cast=cast)  # type: ignore[arg-type]
    if version.version_id in known:
        cli.echo(
            f"{table}: nothing written: these rows are already version {version.version_number} "
            f"({version.version_id}), {version.row_count} rows"
        )
        return
    cli.echo(
        f"{table}: version {version.version_number} ({version.version_id}) delta {version.delta_version}: "
        f"{version.row_count} rows written, {version.quarantined_row_count} quarantined"
    )


@command("read", "Data")
@argument("table", TABLE_HELP)
@click.option("--version", help="a version number or version ID (default: the latest)")
@click.option("--as-of", help=f"the latest version committed at or before this time: {TIME_HELP}")
@timezone_option
@click.option("--features", help="comma-separated feature names (default: all)")
@click.option("--limit", type=int, default=20, show_default=True, help="rows to print")
@click.pass_obj
def read(
    cli: Cli, table: str, version: str | None, as_of: str | None, timezone: str, features: str | None, limit: int
) -> None:
    """Print a feature table's rows exactly as of a version (alias: show)."""
    if version and as_of:
        raise click.UsageError("give --version or --as-of, not both")
    store = cli.store()
    rows = store.read(
        table,
        version=version_value(version),
        as_of=instant(as_of, timezone, "--as-of"),
        features=feature_list(features),
    )
    cli.echo("\t".join(rows.columns))
    for row in rows.orderBy(*rows.columns[:2]).limit(limit).collect():
        cli.echo("\t".join("" if v is None else str(v) for v in row))


@command("export", "Data")
@argument("table", TABLE_HELP)
@argument("path", "the destination (refused if it exists, unless --overwrite)")
@click.option("--version", help="a version number or version ID (default: the latest)")
@click.option("--as-of", help=f"the latest version committed at or before this time: {TIME_HELP}")
@timezone_option
@click.option("--features", help="comma-separated feature names (default: all the policy allows)")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True, help="the copy's format"
)
@click.option("--overwrite", is_flag=True, help="replace what is at PATH")
@click.pass_obj
def export(
    cli: Cli,
    table: str,
    path: str,
    version: str | None,
    as_of: str | None,
    timezone: str,
    features: str | None,
    fmt: str,
    overwrite: bool,
) -> None:
    """Copy a table's rows as of a version out of the store (under its access policy, audited)."""
    if version and as_of:
        raise click.UsageError("give --version or --as-of, not both")
    made = cli.store().export(
        table,
        path,
        version=version_value(version),
        mode="overwrite" if overwrite else "error",
        format=fmt,
        as_of=instant(as_of, timezone, "--as-of"),
        features=feature_list(features),
    )
    cli.echo(f"export {made.export_id}: {made.row_count} rows of {made.source} to {made.path} ({made.format})")


@command("vacuum", "Data")
@argument("table", "one feature table; or --all", required=False)
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="the scheduled pass: every table with its retention from conf, keeping what training sets need",
)
@click.option("--retention-hours", type=float, help="default: the table's Delta retention (7 days)")
@click.option("--force", is_flag=True, help="even if recorded training sets need the files")
@click.option("--reason", default="", help="why, kept in the removal's record")
@click.pass_obj
def vacuum(cli: Cli, table: str | None, every: bool, retention_hours: float | None, force: bool, reason: str) -> None:
    """Delta VACUUM of a feature table, refused where recorded training sets need the files."""
    if every == bool(table):
        raise click.UsageError("name one table, or pass --all")
    store = cli.store()
    if every:
        results = store.run_retention(reason=reason or "scheduled retention")
    else:
        results = [store.vacuum(table, retention_hours=retention_hours, force=force, reason=reason)]  # type: ignore[arg-type]
    for result in results:
        cli.echo(f"{result.table}: {result.deleted_files} file(s) deleted")
        for training_set_id in result.expired:
            cli.echo(f"  training set {training_set_id} can no longer be rebuilt")
        if result.kept_files:
            cli.echo(f"  {result.kept_files} file(s) kept, held by: {', '.join(result.held_by)}")


@command("optimize", "Data")
@argument("table", "one feature table; or --all", required=False)
@click.option("--all", "every", is_flag=True, help="every feature table")
@click.option("--reason", default="", help="why, kept in the maintenance record")
@click.pass_obj
def optimize(cli: Cli, table: str | None, every: bool, reason: str) -> None:
    """Lay a table's files out by key and event time (Delta OPTIMIZE): faster reads, no new version."""
    if every == bool(table):
        raise click.UsageError("name one table, or pass --all")
    store = cli.store()
    for name in store.list_tables() if every else [str(table)]:
        for result in store.optimize(name, reason=reason):
            cli.echo(result.to_text())


@command("streams", "Data")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per stream and line")
@click.pass_obj
def streams(cli: Cli, as_json: bool) -> None:
    """List the streams into this store: batches, rows, restarts, rates and lag."""
    for s in cli.store().streams():
        if as_json:
            cli.echo(json.dumps(dataclasses.asdict(s), default=str, sort_keys=True))
            continue
        rate = f"{s.processed_rows_per_second:.0f} rows/s" if s.processed_rows_per_second is not None else "no report"
        behind = "" if s.offsets_behind_latest is None else f", {s.offsets_behind_latest} offsets behind"
        cli.echo(
            f"{s.name} -> {s.table}: {s.versions} batch(es) to #{s.last_batch_id}, {s.rows} rows "
            f"({s.quarantined_rows} quarantined), {s.restarts} restart(s), {s.retried_batches} batch(es) run again; "
            f"{rate}{behind}; source {s.source or '?'}"
        )


COMMANDS = (ingest, read, export, vacuum, optimize, streams)
