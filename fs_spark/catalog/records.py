"""Typed views of catalog rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from fs_spark.catalog.schema import FEATURE_VERSIONS
from fs_spark.provenance import from_spark


class FeatureVersion(BaseModel):
    """One immutable feature version: a committed write, mapped to its Delta commit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version_id: str
    table_name: str
    definition_version: int
    definition_revision: int
    version_number: int
    delta_version: int
    committed_at: datetime
    storage_path: str
    write_id: str
    content_digest: str | None = None
    mode: str
    row_count: int
    quarantined_row_count: int = 0
    schema_hash: str
    stats_json: str | None = None
    event_time_min: datetime | None = None
    event_time_max: datetime | None = None
    user: str
    source_description: str | None = None
    source_start: datetime | None = None
    source_end: datetime | None = None
    transformation_fingerprint: str | None = None
    transformation_json: str | None = None
    parents: list[str] = []
    experiment_id: str | None = None
    run_id: str | None = None
    hypothesis: str | None = None
    recovered: bool = False
    restores_version: int | None = None

    @property
    def stats(self) -> dict[str, Any]:
        return json.loads(self.stats_json) if self.stats_json else {}

    def without_stats_of(self, features: set[str]) -> FeatureVersion:
        """A copy whose statistics of `features` are withheld: min, max and null count are
        data of their feature, so a principal who may not read it gets none of them."""
        stats = self.stats
        hidden = features & set(stats.get("features", {}))
        if not hidden:
            return self
        for name in hidden:
            stats["features"][name] = {"min": None, "max": None, "null_count": None, "redacted": True}
        return self.model_copy(update={"stats_json": json.dumps(stats, sort_keys=True)})

    @classmethod
    def from_row(cls, row: Any) -> FeatureVersion:
        data = dict(row) if isinstance(row, dict) else row.asDict()
        for name, value in data.items():
            if isinstance(value, datetime):
                data[name] = from_spark(value)
        data["parents"] = list(data.get("parents") or [])
        return cls.model_validate(data)

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _, _ in FEATURE_VERSIONS.columns}
