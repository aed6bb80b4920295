"""Deprecation schedules: a feature (or a whole table) is announced as deprecated, then retired.

After the announcement, training-set builds that read it warn (DeprecatedFeatureWarning, with the
replacement); after the end date they refuse (DeprecatedFeatureError) unless the run or call says
it accepts deprecated features. Schedules are events in the `deprecations` catalog table; the
latest event per (table, feature) is in force, so a schedule can be moved or withdrawn.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import DEPRECATIONS
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import DeprecatedFeatureError
from fs_spark.governance.access import AccessControl, Request
from fs_spark.ids import new_id
from fs_spark.provenance import require_utc

if TYPE_CHECKING:
    from fs_spark.training.lookups import FeatureLookup


class DeprecatedFeatureWarning(UserWarning):
    """A build reads a feature whose deprecation has been announced."""


@dataclass(frozen=True)
class Deprecation:
    table: str
    feature: str | None  # None: every feature of the table
    announce: datetime
    end: datetime
    replacement: str | None
    reason: str
    withdrawn: bool = False

    @property
    def subject(self) -> str:
        return f"{self.table}.{self.feature}" if self.feature else f"table {self.table}"


class Deprecations:
    """Deprecation schedules of one store. Scheduling needs `deprecate` on what it retires,
    checked here, where the schedule is written."""

    def __init__(
        self, catalog: Catalog, access: AccessControl, definition_of: Callable[[str], FeatureTable], user: str
    ):
        self._catalog = catalog
        self._access = access
        self._definition_of = definition_of
        self._user = user

    def schedule(
        self,
        table: str,
        feature: str | None,
        *,
        announce: datetime,
        end: datetime,
        replacement: str | None,
        reason: str,
        withdrawn: bool = False,
    ) -> Deprecation:
        definition = self._definition_of(table)
        if feature is not None:
            definition.feature(feature)  # raises, naming the features that exist
        if replacement is not None:
            self._check_replacement(table, feature, replacement)
        self._access.require(Request("deprecate", table, [feature] if feature else None))
        announce, end = require_utc(announce, "announce"), require_utc(end, "end")
        if end < announce:
            raise ValueError(f"deprecation of {table}: end {end.isoformat()} is before announce {announce.isoformat()}")
        self._catalog.append(
            DEPRECATIONS,
            [
                {
                    "event_id": new_id(),
                    "table_name": table,
                    "feature": feature,
                    "announce_at": announce,
                    "end_at": end,
                    "replacement": replacement,
                    "reason": reason,
                    "withdrawn": withdrawn,
                    "user": self._user,
                    "at": datetime.now(UTC),
                }
            ],
        )
        return Deprecation(table, feature, announce, end, replacement, reason, withdrawn)

    def _check_replacement(self, table: str, feature: str | None, replacement: str) -> None:
        """The replacement, `table` or `table:feature`, must exist and differ from what it replaces."""
        other_table, _, other_feature = replacement.partition(":")
        replacing = self._definition_of(other_table)  # TableNotFoundError, with the closest name
        if other_feature:
            replacing.feature(other_feature)  # FeatureNotFoundError, with the closest name
        if (other_table, other_feature or None) == (table, feature):
            raise ValueError(f"deprecation of {replacement}: it cannot replace itself")

    def in_force(self) -> list[Deprecation]:
        latest: dict[tuple[str, str | None], dict] = {}
        for row in sorted(self._catalog.rows(DEPRECATIONS.name), key=lambda r: r["event_id"]):
            latest[(row["table_name"], row["feature"])] = row
        return [
            Deprecation(r["table_name"], r["feature"], r["announce_at"], r["end_at"], r["replacement"], r["reason"])
            for r in latest.values()
            if not r["withdrawn"]
        ]

    def check_build(
        self, lookups: Sequence[FeatureLookup], accept: bool, now: datetime | None = None
    ) -> list[Deprecation]:
        """Warn for announced deprecations the lookups touch; refuse ended ones unless `accept`.
        Returns the deprecations that applied."""
        now = now or datetime.now(UTC)
        schedules = self.in_force()
        applied = []
        for lookup in lookups:
            names = lookup.feature_names or self._definition_of(lookup.table_name).feature_names
            for schedule in schedules:
                if schedule.table != lookup.table_name or (schedule.feature and schedule.feature not in names):
                    continue
                if now < schedule.announce:
                    continue
                applied.append(schedule)
                instead = f"; use {schedule.replacement} instead" if schedule.replacement else ""
                if now >= schedule.end and not accept:
                    raise DeprecatedFeatureError(schedule.subject, schedule.end, schedule.replacement, schedule.reason)
                warnings.warn(
                    f"{schedule.subject} is deprecated ({schedule.reason}) and retires on "
                    f"{schedule.end.isoformat()}{instead}",
                    DeprecatedFeatureWarning,
                    stacklevel=4,
                )
        return applied
