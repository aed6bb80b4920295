"""Commands of the online side: materialize (starts Spark), get-online-features and serve (no Spark)."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from fs_spark.cli.app import Cli
from fs_spark.cli.params import argument, command

TABLE_HELP = "a feature table's name (`fs-spark tables` lists them)"


@command("materialize", "Online")
@argument("table", TABLE_HELP)
@click.pass_obj
def materialize(cli: Cli, table: str) -> None:
    """Bring the online store up to the latest servable version of a table (only what changed)."""
    done = cli.store().materialize(table)
    served = f"serves #{done.version_number}" if done.version_number else "serves nothing"
    cli.echo(
        f"{table}: {done.kind}, {done.keys_written} key(s) written, {done.keys_removed} removed; "
        f"{done.online_store} {served}"
    )


def _entity(text: str) -> tuple[str, object]:
    column, sep, value = text.partition("=")
    if not sep or not column:
        raise click.BadParameter(f"{text!r}: an entity key is COLUMN=VALUE")
    return column, int(value) if value.lstrip("-").isdigit() else value


@command("get-online-features", "Online")
@click.option("--features", "-f", multiple=True, help="table:feature (repeat it)")
@click.option("--service", help="a feature service instead of --features")
@click.option("--entity", "-e", "entities", multiple=True, required=True, help="COLUMN=VALUE of one entity (repeat)")
@click.pass_obj
def get_online_features(cli: Cli, features: tuple[str, ...], service: str | None, entities: tuple[str, ...]) -> None:
    """Print one entity's online feature vector as JSON (integers are read as integral keys)."""
    store = cli.store()
    if bool(features) == bool(service):
        raise click.UsageError("pass --features or --service")
    lookups: list = list(store.feature_service(service).lookups) if service else list(features)
    row = dict(_entity(e) for e in entities)
    result = store.get_online_features(lookups, [row])
    cli.echo(json.dumps({k: v[0] for k, v in result.items()}, default=str))


@command("serve", "Online")
@click.option("--host", help="address to listen on (default: online.server.host)")
@click.option("--port", type=int, help="port (default: online.server.port, 6580)")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="server processes")
@click.pass_obj
def serve(cli: Cli, host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP feature server: POST /get-online-features, GET /health, GET /metrics."""
    import uvicorn

    from fs_spark.online.server import create_app, frozen

    store = cli.store()
    settings = store.settings.online.server
    app = create_app(store)  # also checks the settings before any worker starts
    bound_host, bound_port = host or settings.host, port or settings.port
    cli.echo(f"serving {store.root} on http://{bound_host}:{bound_port} ({workers} process(es))")
    options: dict[str, Any] = {"host": bound_host, "port": bound_port, "log_level": "warning", "access_log": False}
    if workers == 1:
        uvicorn.run(frozen(app), **options)
        return
    # Each worker process builds its own store from the environment, told the same as this one.
    os.environ["FS_SPARK_STORE__ROOT"] = store.root
    os.environ["FS_SPARK_STORE__USER"] = store.user
    if cli.conf:
        os.environ["FS_SPARK_CONF"] = cli.conf
    uvicorn.run("fs_spark.online.server:app_from_environment", factory=True, workers=workers, **options)


COMMANDS = (materialize, get_online_features, serve)
