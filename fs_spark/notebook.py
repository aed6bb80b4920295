"""A small stand-in for Databricks' `dbutils.widgets`, so notebooks run as plain Python too.

    try:
        dbutils
    except NameError:
        from fs_spark.notebook import local_dbutils
        dbutils = local_dbutils()

Widget values come from the mapping given, then `FS_SPARK_WIDGET_<NAME>` environment
variables, then each widget's default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class LocalWidgets:
    def __init__(self, values: Mapping[str, str] | None = None):
        self._values = dict(values or {})
        self._defaults: dict[str, str] = {}

    def text(self, name: str, defaultValue: str = "", label: str | None = None) -> None:  # noqa: N803 (Databricks' name)
        self._defaults[name] = defaultValue

    def dropdown(self, name: str, defaultValue: str, choices: list[str], label: str | None = None) -> None:  # noqa: N803
        if defaultValue not in choices:
            raise ValueError(f"widget {name!r}: default {defaultValue!r} is not one of {choices}")
        self._defaults[name] = defaultValue

    def get(self, name: str) -> str:
        if name in self._values:
            return self._values[name]
        env = os.environ.get(f"FS_SPARK_WIDGET_{name.upper()}")
        if env is not None:
            return env
        if name not in self._defaults:
            raise KeyError(f"no widget {name!r}; defined: {sorted(self._defaults)}")
        return self._defaults[name]

    def removeAll(self) -> None:  # noqa: N802 (Databricks' name)
        self._defaults.clear()


class LocalDbutils:
    def __init__(self, values: Mapping[str, str] | None = None):
        self.widgets = LocalWidgets(values)


def local_dbutils(values: Mapping[str, str] | None = None) -> LocalDbutils:
    return LocalDbutils(values)
