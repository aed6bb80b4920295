"""Commands on versions, their quality and their life: versions, quarantine, release, recall,
rollback, deprecate, deprecations, quality, drift."""

from __future__ import annotations

import json

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.data import TABLE_HELP
from fs_spark.cli.params import TIME_HELP, argument, command, feature_list, instant, timezone_option, version_value

VERSION_HELP = "a version number or version ID (`fs-spark versions TABLE` lists them)"


@command("versions", "Data")
@argument("table", TABLE_HELP)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per version and line")
@click.pass_obj
def versions(cli: Cli, table: str, as_json: bool) -> None:
    """List a table's versions with their provenance."""
    for v in cli.store().versions(table):
        if as_json:
            cli.echo(json.dumps(v.model_dump(mode="json"), sort_keys=True))
        else:
            cli.echo(
                f"v{v.definition_version} #{v.version_number:<4} {v.version_id}  delta={v.delta_version:<4} "
                f"{v.committed_at:%Y-%m-%dT%H:%M:%S%z}  rows={v.row_count} quarantined={v.quarantined_row_count} "
                f"by={v.user}"
            )


@command("quarantine", "Governance and quality")
@argument("table", TABLE_HELP)
@argument("version", VERSION_HELP)
@click.option("--reason", required=True, help="why, kept in the record")
@click.pass_obj
def quarantine(cli: Cli, table: str, version: str, reason: str) -> None:
    """Quarantine a version: reads and builds refuse it. Prints what it reached."""
    store = cli.store()
    changed = store.quarantine_version(table, version_value(version), reason)  # type: ignore[arg-type]
    cli.echo(f"{table}: version {changed.version_number} ({changed.version_id}) quarantined")
    cli.echo(store.recall(table, changed.version_id).to_text())


@command("release", "Governance and quality")
@argument("table", TABLE_HELP)
@argument("version", VERSION_HELP)
@click.option("--reason", default="", help="why, kept in the record")
@click.pass_obj
def release(cli: Cli, table: str, version: str, reason: str) -> None:
    """Lift a version's quarantine."""
    changed = cli.store().release_version(table, version_value(version), reason)  # type: ignore[arg-type]
    cli.echo(f"{table}: version {changed.version_number} ({changed.version_id}) released")


@command("recall", "Governance and quality")
@argument("table", TABLE_HELP)
@argument("version", VERSION_HELP)
@click.pass_obj
def recall(cli: Cli, table: str, version: str) -> None:
    """What used a version's rows: training sets, models, deployments."""
    cli.echo(cli.store().recall(table, version_value(version)).to_text())  # type: ignore[arg-type]


@command("rollback", "Governance and quality")
@argument("table", TABLE_HELP)
@argument("version", "the version number or ID whose rows become current again")
@click.option("--reason", required=True, help="why, kept in the record")
@click.pass_obj
def rollback(cli: Cli, table: str, version: str, reason: str) -> None:
    """Make a known-good version current again, as a new version (nothing is deleted)."""
    rolled = cli.store().rollback(table, version_value(version), reason=reason)  # type: ignore[arg-type]
    cli.echo(
        f"{table}: version {rolled.version_number} ({rolled.version_id}) holds the rows of version "
        f"{rolled.restores_version} again"
    )


@command("deprecate", "Governance and quality")
@argument("table", TABLE_HELP)
@click.option("--feature", help="the feature (default: the whole table)")
@click.option("--announce", required=True, help=f"builds warn from then: {TIME_HELP}")
@click.option("--end", required=True, help=f"builds refuse from then: {TIME_HELP}")
@timezone_option
@click.option("--replacement", help="what to use instead: table or table:feature (it must exist)")
@click.option("--reason", required=True, help="why, shown in every warning")
@click.pass_obj
def deprecate(
    cli: Cli,
    table: str,
    feature: str | None,
    announce: str,
    end: str,
    timezone: str,
    replacement: str | None,
    reason: str,
) -> None:
    """Schedule a feature's (or a table's) deprecation."""
    scheduled = cli.store().deprecate(
        table,
        feature,
        announce=instant(announce, timezone, "--announce"),  # type: ignore[arg-type]
        end=instant(end, timezone, "--end"),  # type: ignore[arg-type]
        replacement=replacement,
        reason=reason,
    )
    cli.echo(
        f"{scheduled.subject}: deprecated from {scheduled.announce.isoformat()}, "
        f"retired from {scheduled.end.isoformat()}"
    )


@command("deprecations", "Governance and quality")
@click.pass_obj
def deprecations(cli: Cli) -> None:
    """List the deprecation schedules in force."""
    for schedule in cli.store().deprecations():
        cli.echo(
            f"{schedule.subject}  announce={schedule.announce.isoformat()}  end={schedule.end.isoformat()}  "
            f"replacement={schedule.replacement or '-'}  reason={schedule.reason}"
        )


@command("quality", "Governance and quality")
@click.option("--table", help="only this table")
@click.pass_obj
def quality(cli: Cli, table: str | None) -> None:
    """The quality scoreboard: rule failures, quarantine, drift and alerts per version."""
    cli.echo(cli.store().quality.scoreboard(table).to_text())


@command("drift", "Governance and quality")
@argument("table", TABLE_HELP)
@click.option("--version", help=f"{VERSION_HELP} (default: the latest)")
@click.option("--baseline", default="previous", show_default=True, help="previous, or a training set's ID")
@click.option("--features", help="comma-separated feature names (default: all)")
@click.option("--fail-on-breach", is_flag=True, help="exit 1 when a threshold is breached")
@click.pass_obj
def drift(cli: Cli, table: str, version: str | None, baseline: str, features: str | None, fail_on_breach: bool) -> int:
    """Drift of a version against a baseline, every feature in one pass."""
    report = cli.store().quality.check_drift(
        table, version=version_value(version), baseline=baseline, features=feature_list(features)
    )
    cli.echo(report.to_text())
    return 1 if report.breached and fail_on_breach else 0


COMMANDS = (versions, quarantine, release, recall, rollback, deprecate, deprecations, quality, drift)
