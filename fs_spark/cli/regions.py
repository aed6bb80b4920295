"""Commands on regions: replicate, replication, promote, rejoin."""

from __future__ import annotations

import json

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.params import argument, command


@command("replicate", "Regions")
@click.option("--to", "to", multiple=True, help="a region to copy to (repeatable); default: every other region")
@click.pass_obj
def replicate(cli: Cli, to: tuple[str, ...]) -> None:
    """Copy this store, in its home region, to the other regions of store.regions_file: data
    in commit order, then the catalog rows that name it. Prints one JSON line per region."""
    for result in cli.store().replicate(list(to) or None):
        cli.echo(
            json.dumps(
                {
                    "region": result.region,
                    "commits": sum(t.commits for t in result.tables),
                    "files": result.files,
                    "bytes": result.bytes,
                    "catalog_rows": result.catalog_rows,
                    "kept_out": list(result.skipped_tables),
                    "seconds": round(result.seconds, 3),
                }
            )
        )


@command("replication", "Regions")
@click.pass_obj
def replication(cli: Cli) -> None:
    """How far each other region is behind this one, table by table."""
    for region, lags in cli.store().replication_status().items():
        for lag in lags:
            cli.echo(
                f"{region:<8} {lag.table:<40} home={lag.home_version} replica={lag.replica_version} "
                f"behind={lag.versions_behind} Delta version(s), {lag.seconds_behind:.0f}s"
            )


@command("promote", "Regions")
@argument("region", "the region to make the home region")
@click.option("--force", is_flag=True, help="promote even when the old home cannot be reached (stop its writers)")
@click.pass_obj
def promote(cli: Cli, region: str, force: bool) -> None:
    """Make REGION the home region; the old home becomes a replica first."""
    role = cli.store().promote(region, force=force)
    cli.echo(f"{role.region} is the home region (epoch {role.epoch})")


@command("rejoin", "Regions")
@click.pass_obj
def rejoin(cli: Cli) -> None:
    """Make this store's region, a home left behind by a forced promotion, a replica of the new
    home; what it wrote alone is moved under _diverged/. Prints what was set aside as JSON."""
    result = cli.store().rejoin()
    cli.echo(
        json.dumps(
            {
                "region": result.region,
                "home": result.home,
                "epoch": result.epoch,
                "set_aside": result.folder,
                "commits": result.commits,
                "catalog_rows": result.catalog_rows,
            }
        )
    )


COMMANDS = (replicate, replication, promote, rejoin)
