"""Validated identifiers: a table or feature name can never become a path or an SQL fragment."""

from __future__ import annotations

import re

from fs_spark.errors import InvalidNameError

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)


def check_name(name: object, kind: str = "feature") -> str:
    """Return `name` if it is a safe identifier, else raise InvalidNameError."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidNameError(kind, name, NAME_PATTERN)
    return name
