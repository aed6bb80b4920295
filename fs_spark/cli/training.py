"""Training-set commands: build one from a spec, list them, rebuild one, copy one out."""

from __future__ import annotations

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.params import argument, command
from fs_spark.governance.exports import FORMATS
from fs_spark.inputs import ENTITY_FORMATS, read_entities
from fs_spark.training.spec import load_spec

ID_HELP = "a training set's ID (`fs-spark training-sets` lists them)"


@command("build-training-set", "Training sets")
@argument("entities", "the entity rows: a Delta or Parquet path, a CSV or JSON file, or a table name")
@click.option("--spec", required=True, help="the training-set YAML, e.g. conf/training/churn.yaml")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(ENTITY_FORMATS),
    default="auto",
    show_default=True,
    help="the entity rows' format (auto: Delta if the folder has a _delta_log, else Parquet)",
)
@click.option("--output", help="where to write the rows (default: under the store root)")
@click.pass_obj
def build_training_set(cli: Cli, entities: str, spec: str, fmt: str, output: str | None) -> None:
    """Build a point-in-time correct training set and record what it read."""
    loaded = load_spec(spec)
    store = cli.store()
    rows = read_entities(store.spark, entities, fmt)
    built = store.create_training_set(rows, list(loaded.feature_lookups), path=output, **loaded.options())
    cli.echo(f"training set {built.id}: {built.manifest.row_count} rows at {built.manifest.output_path}")
    for lookup in built.lookups:
        cli.echo(
            f"  {lookup.table_name} version {lookup.version_number} ({lookup.version_id}) delta "
            f"{lookup.delta_version}: {', '.join(f.output for f in lookup.features)}"
        )


@command("training-sets", "Training sets")
@click.pass_obj
def training_sets(cli: Cli) -> None:
    """List the training sets with what they read."""
    for m in cli.store().training_sets():
        cli.echo(
            f"{m.training_set_id}  {m.created_at:%Y-%m-%dT%H:%M:%S%z}  rows={m.row_count}  name={m.name or ''}  "
            f"by={m.user}  versions={','.join(m.feature_version_ids)}"
        )


@command("rebuild-training-set", "Training sets")
@argument("training_set_id", ID_HELP)
@click.option("--limit", type=int, default=0, help="also print this many rows")
@click.pass_obj
def rebuild_training_set(cli: Cli, training_set_id: str, limit: int) -> None:
    """Rebuild a training set from its manifest alone and check its digest."""
    rebuilt = cli.store().load_training_set(training_set_id)
    cli.echo(f"training set {rebuilt.id} rebuilt: digest {rebuilt.manifest.content_digest} matches")
    if limit:
        rows = rebuilt.load_df()
        cli.echo("\t".join(rows.columns))
        for row in rows.limit(limit).collect():
            cli.echo("\t".join("" if v is None else str(v) for v in row))


@command("export-training-set", "Training sets")
@argument("training_set_id", ID_HELP)
@argument("path", "the destination (refused if it exists, unless --overwrite)")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="parquet", show_default=True, help="the copy's format"
)
@click.option("--overwrite", is_flag=True, help="replace what is at PATH")
@click.pass_obj
def export_training_set(cli: Cli, training_set_id: str, path: str, fmt: str, overwrite: bool) -> None:
    """Copy a stored training set out of the store (under the access policies of what it read)."""
    made = cli.store().export_training_set(
        training_set_id, path, format=fmt, mode="overwrite" if overwrite else "error"
    )
    cli.echo(f"export {made.export_id}: {made.row_count} rows of {made.source} to {made.path} ({made.format})")


COMMANDS = (build_training_set, training_sets, rebuild_training_set, export_training_set)
