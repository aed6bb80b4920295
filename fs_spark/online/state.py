"""What the online store holds of one table, and what the next materialization must change.

Per table the store keeps one state entry beside the vectors: the definition version it
serves, the feature version its vectors reflect (the watermark), the versions whose values must not be
served (withheld: quarantined writes and writes a rollback took out), features retired by a
deprecation, and a generation that changes at every update, so caches know to drop entries.

The version served is the latest one whose rows include no quarantined write, as offline
reads have it: after a quarantine, readers stop serving the quarantined write's values at
once (they are withheld), and the next materialization restores the good version's values.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fs_spark.catalog.records import FeatureVersion
from fs_spark.definitions.model import FeatureTable
from fs_spark.governance.deprecation import Deprecation
from fs_spark.ids import new_id
from fs_spark.versions.series import included, series


def state_name(table: str) -> str:
    return f"table:{table}"


@dataclass(frozen=True)
class TableState:
    definition_version: int | None = None
    revision: int | None = None  # the definition revision the vectors are encoded with
    watermark: int | None = None
    withheld: frozenset[int] = frozenset()
    retired: dict[str, dict] = field(default_factory=dict)  # feature ("*": the table) -> end, reason, replacement
    generation: str = ""
    materialized_at: str | None = None  # ISO time of the last materialization

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "definition_version": self.definition_version,
                "revision": self.revision,
                "watermark": self.watermark,
                "withheld": sorted(self.withheld),
                "retired": self.retired,
                "generation": self.generation,
                "materialized_at": self.materialized_at,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> TableState:
        if data is None:
            return cls()
        raw = json.loads(data)
        return cls(
            raw["definition_version"],
            raw["revision"],
            raw["watermark"],
            frozenset(raw["withheld"]),
            dict(raw["retired"]),
            raw["generation"],
            raw.get("materialized_at"),
        )

    def changed(self, **changes: Any) -> TableState:
        """A copy with `changes` and a new generation."""
        return dataclasses.replace(self, **{"generation": new_id(), **changes})


def served_version(
    versions: list[FeatureVersion], table: str, definition_version: int, quarantined: dict[str, str]
) -> FeatureVersion | None:
    """The latest version of a definition version whose rows hold no quarantined write."""
    own = [v for v in versions if v.table_name == table and v.definition_version == definition_version]
    for version in sorted(own, key=lambda v: v.version_number, reverse=True):
        by_number = series(versions, version)
        if not any(by_number[n].version_id in quarantined for n in included(versions, version)):
            return version
    return None


def withheld_versions(
    versions: list[FeatureVersion], served: FeatureVersion | None, table: str, definition_version: int
) -> frozenset[int]:
    """Every write of the definition version that `served` does not hold."""
    own = {v.version_number for v in versions if v.table_name == table and v.definition_version == definition_version}
    held = included(versions, served) if served is not None else set()
    return frozenset(own - held)


def retired_features(table: str, deprecations: Sequence[Deprecation]) -> dict[str, dict]:
    """The deprecation schedules of the table's features (or "*", the whole table): online
    reads refuse a feature from its end on."""
    return {
        (d.feature or "*"): {"end": d.end.isoformat(), "reason": d.reason, "replacement": d.replacement}
        for d in deprecations
        if d.table == table
    }


@dataclass(frozen=True)
class Plan:
    """What one materialization does.

    kind "full": every key's latest row of the served version, replacing what is there.
    kind "incremental": the latest rows of the new writes only, each kept where it is later
        than the stored one (the stored vectors all come from versions still served).
    kind "refresh": writes stopped or started being served (a quarantine, a rollback, a release):
        every key those writes touched is recomputed from the served version, or removed.
    kind "none": the store reflects the served version already.
    """

    kind: str
    versions: frozenset[int] = frozenset()  # the writes whose rows (or keys) the run reads


def plan(
    versions: list[FeatureVersion], table: FeatureTable, revision: int, served: FeatureVersion | None, state: TableState
) -> Plan:
    """What to do to make the store (in `state`) serve `served`, of `table` at `revision`."""
    held_now = included(versions, served) if served is not None else set()
    if state.watermark is None or (state.definition_version, state.revision) != (table.definition_version, revision):
        return Plan("full") if served is not None else Plan("none")
    previous = next(
        (
            v
            for v in versions
            if v.table_name == table.name
            and v.definition_version == table.definition_version
            and v.version_number == state.watermark
        ),
        None,
    )
    held_before = included(versions, previous) if previous is not None else set()
    if held_before == held_now:
        return Plan("none")
    if held_before <= held_now:
        return Plan("incremental", frozenset(held_now - held_before))
    return Plan("refresh", frozenset(held_now ^ held_before))
