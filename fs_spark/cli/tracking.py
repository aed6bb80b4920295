"""Commands on experiments, models and lineage: runs, models, lineage, reconcile."""

from __future__ import annotations

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.params import argument, command


@command("runs", "Experiments and lineage")
@click.option("--experiment", help="only this experiment's runs")
@click.pass_obj
def runs(cli: Cli, experiment: str | None) -> None:
    """List runs with their metrics."""
    tracking = cli.store().tracking
    for info in tracking.runs(experiment):
        metrics = " ".join(f"{k}={v:g}" for k, v in sorted(tracking.metrics(info.run_id).items()))
        cli.echo(f"{info.run_id}  {info.name or '-'}  {info.stage}  {info.status}  {metrics}")


@command("models", "Experiments and lineage")
@click.pass_obj
def models(cli: Cli) -> None:
    """List model versions and what is deployed where."""
    store = cli.store()
    for model in store.models.versions():
        cli.echo(
            f"{model.model_name} v{model.version}  {model.model_version_id}  run={model.run_id or '-'}  "
            f"training_sets={','.join(model.training_set_ids)}"
        )
    for live in store.models.deployments():
        cli.echo(
            f"deployment {live.environment}: {live.model_name} v{live.model_version} {live.status} "
            f"at {live.at:%Y-%m-%dT%H:%M:%S%z}"
        )


@command("lineage", "Experiments and lineage")
@argument("node", "an ID (feature version, training set, run, model version, ...) or kind:id")
@click.option("--html", help="also write a page for people to read here")
@click.option("--dot", help="also write Graphviz DOT here")
@click.option(
    "--direction",
    type=click.Choice(("upstream", "downstream", "both")),
    default="both",
    show_default=True,
    help="what to show: what fed the node, what it fed, or both",
)
@click.pass_obj
def lineage(cli: Cli, node: str, html: str | None, dot: str | None, direction: str) -> None:
    """The lineage around a node: as text, and as an HTML page or DOT."""
    cli.echo(cli.store().lineage.render(node, html=html, dot=dot, direction=direction).to_text())
    for path in (html, dot):
        if path:
            cli.echo(f"wrote {path}")


@command("reconcile", "Experiments and lineage")
@click.pass_obj
def reconcile(cli: Cli) -> int:
    """Check every recorded link; exit 1 when an unauthorised one dangles."""
    report = cli.store().lineage.reconcile()
    cli.echo(report.to_text())
    return 0 if report.ok else 1


COMMANDS = (runs, models, lineage, reconcile)
