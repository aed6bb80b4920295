"""What changed between two definitions of a table, and whether readers survive it.

Readers of a definition version rely on its keys, event time, layout, feature names, types and
units. Changing any of those breaks them, except adding a nullable feature and, when the table's
evolution policy is "widening" (the default), widening a type (int -> long or double, float ->
double); under "additive" only additions are compatible. A breaking change needs a new
definition version. The policy in force is the current definition's.
"""

from __future__ import annotations

from dataclasses import dataclass

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import WIDENINGS


@dataclass(frozen=True)
class Change:
    kind: str  # add_feature, drop_feature, change_type, widen_type, change_unit, change_keys, ...
    subject: str
    detail: str
    breaking: bool

    def __str__(self) -> str:
        return f"{self.kind} {self.subject}: {self.detail}"


def diff(old: FeatureTable, new: FeatureTable) -> list[Change]:
    """List the changes from `old` to `new`, each marked breaking or not under `old`'s policy."""
    changes: list[Change] = []
    if dict(old.entity.keys) != dict(new.entity.keys) or list(old.entity.keys) != list(new.entity.keys):
        changes.append(Change("change_keys", old.name, f"{dict(old.entity.keys)} -> {dict(new.entity.keys)}", True))
    if old.event_time != new.event_time:
        changes.append(Change("change_event_time", old.name, f"{old.event_time} -> {new.event_time}", True))
    if old.time_partition != new.time_partition:
        changes.append(Change("change_layout", old.name, f"{old.time_partition} -> {new.time_partition}", True))
    old_features = {f.name: f for f in old.features}
    new_features = {f.name: f for f in new.features}
    for name in old_features.keys() - new_features.keys():
        changes.append(Change("drop_feature", name, "feature removed", True))
    for name in new_features.keys() - old_features.keys():
        feature = new_features[name]
        changes.append(
            Change("add_feature", name, f"{feature.dtype.value}, nullable={feature.nullable}", not feature.nullable)
        )
    for name in sorted(old_features.keys() & new_features.keys()):
        before, after = old_features[name], new_features[name]
        if before.dtype != after.dtype:
            widened = after.dtype in WIDENINGS.get(before.dtype, frozenset())
            kind = "widen_type" if widened else "change_type"
            allowed = widened and old.evolution == "widening"
            detail = f"{before.dtype.value} -> {after.dtype.value}" + (
                "" if allowed or not widened else " (evolution: additive)"
            )
            changes.append(Change(kind, name, detail, not allowed))
        if before.unit != after.unit:
            changes.append(Change("change_unit", name, f"{before.unit} -> {after.unit}", True))
        for field in (
            "nullable",
            "min_value",
            "max_value",
            "allowed_values",
            "allow_nan",
            "description",
            "owner",
            "tags",
        ):
            if getattr(before, field) != getattr(after, field):
                changes.append(
                    Change(f"change_{field}", name, f"{getattr(before, field)!r} -> {getattr(after, field)!r}", False)
                )
    for field in (
        "description",
        "owner",
        "tags",
        "ttl",
        "source",
        "transformation",
        "parents",
        "rules",
        "max_future",
        "evolution",
    ):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change(f"change_{field}", old.name, "updated", False))
    return sorted(changes, key=lambda c: (not c.breaking, c.kind, c.subject))


TABLE_WIDE = {"change_keys", "change_event_time", "change_layout"}


def affected_features(table: FeatureTable, changes: list[Change]) -> list[str]:
    """The features whose readers a list of breaking changes touches (all, for table-wide ones)."""
    breaking = [c for c in changes if c.breaking]
    if any(c.kind in TABLE_WIDE for c in breaking):
        return list(table.feature_names)
    return sorted({c.subject for c in breaking})
