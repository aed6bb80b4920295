"""The pieces every command shares: commands filed under a section of `fs-spark --help`,
arguments with help, and the parsing of versions, times and feature lists."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click


class Command(click.Command):
    """A command filed under a section of `fs-spark --help`."""

    def __init__(self, *args: Any, section: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.section = section


def argument(name: str, help: str, **kwargs: Any) -> Callable:
    """A positional argument with its help, listed by `fs-spark COMMAND --help`."""
    return click.argument(name, help=help, **kwargs)


def version_value(text: str | None) -> int | str | None:
    """A version number (`3`) or a version ID (a UUID)."""
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def feature_list(text: str | None) -> list[str] | None:
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def instant(text: str | None, zone: str, option: str) -> datetime | None:
    """An ISO-8601 time; one written without a zone is read in `zone` (`--timezone`, UTC by default)."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO-8601 time, e.g. 2024-05-02T00:00:00Z", param_hint=option
        ) from exc
    if parsed.tzinfo is not None:
        return parsed
    try:
        return parsed.replace(tzinfo=ZoneInfo(zone))
    except ZoneInfoNotFoundError as exc:
        raise click.BadParameter(
            f"unknown time zone {zone!r}, e.g. UTC or Europe/Paris", param_hint="--timezone"
        ) from exc


TIME_HELP = "an ISO-8601 time, e.g. 2024-05-02T00:00:00Z; without a zone it is read in --timezone"
timezone_option = click.option(
    "--timezone", default="UTC", show_default=True, help="the zone of times given without one (an IANA name)"
)


def command(name: str, section: str) -> Callable:
    """A command filed under `section` in `fs-spark --help`; its docstring is its help."""
    return click.command(name, cls=Command, section=section)
