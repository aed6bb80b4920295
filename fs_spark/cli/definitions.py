"""Commands on definitions and the store itself: init, plan, apply, tables, catalog, submit-args."""

from __future__ import annotations

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.params import argument, command
from fs_spark.definitions.yaml_io import load_definitions
from fs_spark.replication.regions import RegionRoles, load_regions

DEFINITIONS_HELP = "a YAML file of definitions, or a folder of them (e.g. conf/features)"


@command("init", "Set-up")
@click.pass_obj
def init(cli: Cli) -> None:
    """Create the store's catalog tables at --root (done on first use too)."""
    store = cli.store(creating=True).init()
    cli.echo(f"initialised store at {store.root}")


def _regions_file(path: str) -> bool:
    """Whether `path` is a regions file (a mapping with `home` and `regions`), not definitions."""
    from pathlib import Path

    import yaml

    if not Path(path).is_file():
        return False
    data = yaml.safe_load(Path(path).read_text())
    return isinstance(data, dict) and {"home", "regions"} <= data.keys()


def _roles(cli: Cli, path: str) -> RegionRoles:
    return RegionRoles(load_regions(path), cli.settings.s3)


@command("plan", "Definitions")
@argument("definitions", DEFINITIONS_HELP + ", or a regions file (conf/regions.yaml)")
@click.pass_obj
def plan(cli: Cli, definitions: str) -> None:
    """Show what `apply` would change, and what a breaking change would break; change nothing."""
    if _regions_file(definitions):
        for line in _roles(cli, definitions).plan():
            cli.echo(line)
        return
    for item in cli.store(creating=True).plan(*load_definitions(definitions)):
        cli.echo(item)


@command("apply", "Definitions")
@argument("definitions", DEFINITIONS_HELP + ", or a regions file (conf/regions.yaml)")
@click.pass_obj
def apply(cli: Cli, definitions: str) -> None:
    """Create or update feature tables from their definitions (breaking changes need a new
    definition_version)."""
    from fs_spark.online.feature_service import load_feature_services

    if _regions_file(definitions):
        for role in _roles(cli, definitions).record():
            cli.echo(
                f"region {role.region}: {'home' if role.is_home else 'replica of ' + role.home} (epoch {role.epoch})"
            )
        return
    for item in cli.store(creating=True).apply(*load_definitions(definitions), *load_feature_services(definitions)):
        cli.echo(item)


@command("tables", "Definitions")
@click.pass_obj
def tables(cli: Cli) -> None:
    """List the feature tables."""
    for name in cli.store().list_tables():
        cli.echo(name)


@command("search", "Definitions")
@argument("text", "words to find in names, descriptions, tags, owners and units")
@click.option("--limit", default=20, show_default=True, help="most hits to list")
@click.pass_obj
def search(cli: Cli, text: str, limit: int) -> None:
    """Find features and tables, best first, with the models and deployments that use each."""
    hits = cli.store().search(text, limit=limit)
    for hit in hits:
        cli.echo(hit.to_text())
    if not hits:
        cli.echo(f"nothing matches {text!r}")


@command("catalog", "Set-up")
@click.pass_obj
def catalog(cli: Cli) -> None:
    """Document the catalog's tables and columns."""
    from fs_spark.catalog.schema import describe_catalog

    cli.echo(describe_catalog())


@command("submit-args", "Set-up")
@click.pass_obj
def submit_args(cli: Cli) -> None:
    """Print the spark-submit flags for Delta and fs_spark: spark-submit $(fs-spark submit-args) job.py"""
    from fs_spark.session import submit_args as flags

    cli.echo(" ".join(flags(cli.settings.spark, cli.settings.s3)))


COMMANDS = (plan, apply, tables, search, init, catalog, submit_args)
