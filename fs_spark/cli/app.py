"""The `fs-spark` command group: global options, help by section, "did you mean", and failures
printed as one line (`--debug` prints the trace too).

Only commands that move feature data start Spark; the others read the catalog of a local store
through delta-rs and answer in about a second.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from fs_spark.config import Settings, load_settings
from fs_spark.errors import FsSparkError, StoreNotFoundError, first_line
from fs_spark.progress import progress_line
from fs_spark.session import keep_interrupt_handler
from fs_spark.storage.paths import StorePaths
from fs_spark.version import __version__

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore

SECTIONS = (
    "Definitions",
    "Data",
    "Online",
    "Training sets",
    "Experiments and lineage",
    "Governance and quality",
    "Regions",
    "Watching",
    "Set-up",
)


@dataclass
class Cli:
    """What every command gets: the global options and, made on first use, the store."""

    out: TextIO = sys.stdout
    root: str | None = None
    conf: str | None = None
    user: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _store: Any = field(default=None, repr=False)

    def echo(self, text: Any = "") -> None:
        print(text, file=self.out)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.conf)
        return self._settings

    def store(self, creating: bool = False) -> FeatureStore:
        """The store at --root. Unless `creating`, a root that holds no store is refused, so a
        mistyped --root is an error instead of a new, empty store."""
        if self._store is None:
            from fs_spark.store import FeatureStore

            paths = StorePaths(self.root or self.settings.store.root)
            if not creating and not paths.holds_store(self.settings.s3):
                raise StoreNotFoundError(paths.root)
            self._store = FeatureStore(paths.root, settings=self.settings, user=self.user)
        return self._store


class Group(click.Group):
    """Commands listed by section, in the order they were added; aliases stay out of the list."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        width = formatter.width - 6 - max(len(n) for n in self.commands)
        listed: dict[str, list[tuple[str, str]]] = {}
        for name, cmd in self.commands.items():
            if cmd.name == name and not cmd.hidden:
                listed.setdefault(getattr(cmd, "section", ""), []).append((name, cmd.get_short_help_str(width)))
        for section in SECTIONS:
            if section in listed:
                with formatter.section(section):
                    formatter.write_dl(listed[section])

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, [n for n in self.commands if not n.startswith("_")], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise click.UsageError(f"no command {name!r}.{hint} `fs-spark --help` lists them.", ctx)
        return super().resolve_command(ctx, args)


CONTEXT = {"help_option_names": ["-h", "--help"], "terminal_width": 100}


@click.group("fs-spark", cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="fs-spark", message="%(prog)s %(version)s")
@click.option("--root", metavar="PATH", help="the store root (default: store.root from the settings file)")
@click.option("--conf", metavar="FILE", help="the settings file (default: FS_SPARK_CONF, else conf/fs_spark.yaml)")
@click.option("--user", help="the principal recorded in provenance and checked by access policies")
@click.option("--debug", is_flag=True, help="on failure, print the whole trace, not only its one-line reason")
@click.option(
    "--quiet",
    is_flag=True,
    help="no progress line (by default: an updating line on a terminal, else a line every 10 s)",
)
@click.pass_context
def cli(ctx: click.Context, root: str | None, conf: str | None, user: str | None, debug: bool, quiet: bool) -> None:
    """A feature store on Apache Spark and Delta Lake, one system with experiment tracking and
    model lineage. `fs-spark COMMAND --help` tells more of each command."""
    state = ctx.ensure_object(Cli)
    state.root, state.conf, state.user = root, conf, user


def _register() -> None:
    from fs_spark.cli import data, definitions, governance, observe, online, regions, tracking, training

    for module in (definitions, data, online, training, tracking, governance, regions, observe):
        for command in module.COMMANDS:
            cli.add_command(command)
    cli.add_command(data.read, "show")  # an alias, listed in `read --help`


_register()


def run(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Run one command line, writing its answer to `out`; fs_spark's errors are raised."""
    argv = list(argv)
    # on stderr: an updating line on a terminal, a plain line every 10 s elsewhere, once a step runs
    with progress_line(quiet="--quiet" in argv):
        result = cli.main(args=argv, prog_name="fs-spark", standalone_mode=False, obj=Cli(out=out))
    return result if isinstance(result, int) else 0


def failure_line(exc: BaseException) -> str:
    """One line saying what failed and why: fs_spark's own message in full, the first line of
    anything else (a Spark error keeps its error class, e.g. [PATH_NOT_FOUND])."""
    if isinstance(exc, FsSparkError):
        return f"{type(exc).__name__}: {exc}"
    first = first_line(exc, 10_000)
    return f"{type(exc).__name__}: {first} (run with --debug for the whole trace)"


def interrupted() -> NoReturn:
    """Ctrl-C: one line, exit 130, and none of the traces py4j and Spark's shutdown would print
    (the JVM goes with this process). Writes are safe: one that had not committed left nothing a
    reader sees, one that had is a version (recorded by the next write if its catalog row was not)."""
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    _kill_jvm()
    print(
        "fs-spark: interrupted: a write that had not committed wrote nothing readers see (its files go at the next "
        "VACUUM); one that had is a version (`fs-spark versions TABLE`)",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(130)


def _kill_jvm() -> None:
    """Spark's JVM, when this process started one, ended first: left to die after this process,
    it logs the errors of its tasks' shutdown on the same stderr."""
    context = getattr(sys.modules.get("pyspark"), "SparkContext", None)
    process = getattr(getattr(context, "_gateway", None), "proc", None)
    if process is not None:
        process.kill()
        try:
            process.wait(timeout=10)
        except Exception:  # gone or stuck: this process ends anyway
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """The `fs-spark` entry point: exit status 0 ok, 1 a check found problems, 2 refused or failed."""
    if argv is None:  # the process's own command line: Ctrl-C ends it (not a caller's, in-process)
        keep_interrupt_handler(lambda signum, frame: interrupted())
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("FS_SPARK_DEBUG"))
    try:
        return run(argv)
    except click.ClickException as exc:
        print(f"fs-spark: {exc.format_message()}", file=sys.stderr)
        return 2
    except (click.Abort, KeyboardInterrupt):
        interrupted()
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"fs-spark: {failure_line(exc)}", file=sys.stderr)
        return 2
