"""Commands that watch the store: health, and the figures of recent operations."""

from __future__ import annotations

import json

import click
import pyarrow.compute as pc

from fs_spark.cli.app import Cli
from fs_spark.cli.params import command


@command("health", "Watching")
@click.option("--json", "as_json", is_flag=True, help="print the whole report as JSON")
@click.pass_obj
def health(cli: Cli, as_json: bool) -> int:
    """Check the store: storage, the online store's staleness, lineage, replication and the last
    failed operation, each with its figure. Exit status 0 ok, 1 degraded, 2 down. Starts no Spark."""
    from fs_spark.observability.health import check_health

    report = check_health(cli.store())
    cli.echo(json.dumps(report.to_dict(), default=str) if as_json else report.to_text())
    return report.exit_code


@command("operations", "Watching")
@click.option("--last", default=20, show_default=True, help="how many of the latest operations")
@click.option("--failed", is_flag=True, help="only the operations that failed")
@click.pass_obj
def operations(cli: Cli, last: int, failed: bool) -> None:
    """The latest operations of the catalog's `metrics` table: what ran, its rows, bytes, time and error."""
    columns = ["started_at", "operation", "table_name", "rows", "bytes", "seconds", "error_class"]
    where = pc.field("error_class").is_valid() if failed else pc.scalar(True)
    rows = cli.store().catalog.select("metrics", columns, where, newest=("started_at", last))[::-1]
    for r in rows:
        outcome = f"FAILED {r['error_class']}" if r["error_class"] else "ok"
        cli.echo(
            f"{r['started_at']:%Y-%m-%d %H:%M:%S} {r['operation']:<12} {r['table_name'] or '-':<28} "
            f"{r['rows']:>10,} rows {r['bytes']:>12,} B {r['seconds']:>8.2f}s {outcome}"
        )


@command("watch", "Watching")
@click.pass_obj
def watch(cli: Cli) -> int:
    """Run the notification rules once (version churn, lineage, anomalies, replication lag, online
    staleness; thresholds in the settings) and send each new breach to the alert sink. Prints one
    line per alert; exit status 1 when any was sent. Run it from cron or a scheduler."""
    from fs_spark.observability.watch import watch as run_watch

    result = run_watch(cli.store())
    for alert in result.alerts:
        where = ".".join(p for p in (alert["table_name"], alert["feature"]) if p) or "-"
        cli.echo(f"{alert['metric']} {where} {alert['value']:.4g} > {alert['threshold']:.4g}: {alert['baseline']}")
    cli.echo(f"{len(result.alerts)} alert(s) sent, {result.repeated} already sent; health {result.health.status}")
    return 1 if result.alerts else 0


COMMANDS = (health, operations, watch)
