"""The manifest of a training set: everything needed to rebuild it exactly, as a catalog row."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from fs_spark.catalog.schema import TRAINING_SETS
from fs_spark.provenance import from_spark


class LookupFeature(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    output: str
    spark_type: str
    default: Any = None


class ResolvedLookup(BaseModel):
    """One lookup with everything resolved: the exact Delta version read and how to join it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    table_name: str
    definition_version: int
    storage_path: str
    version_id: str | None
    version_number: int | None
    delta_version: int | None  # None: nothing was written yet, the lookup matched nothing
    keys: tuple[str, ...]
    event_time: str
    key_types: tuple[str, ...]
    entity_keys: tuple[str, ...]
    entity_time: str
    features: tuple[LookupFeature, ...]
    lookback_micros: int | None = None
    excluded_versions: tuple[int, ...] = ()  # writes a rollback took out: their rows are left out
    supplied_by: tuple[str, ...] | None = None  # versions whose rows the join picked (None: not recorded)


class TrainingSetManifest(BaseModel):
    """One row of the `training_sets` catalog table, typed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    training_set_id: str
    name: str | None = None
    created_at: datetime
    user: str
    entity_path: str
    entity_delta_version: int
    entity_digest: str
    entity_row_count: int
    label: list[str] = []
    exclude_columns: list[str] = []
    as_of: datetime | None = None
    timezone: str | None = None
    lookups_json: str
    feature_version_ids: list[str] = []
    supplying_version_ids: list[str] | None = None
    output_path: str
    output_delta_version: int
    output_schema_json: str
    content_digest: str
    row_count: int
    fs_spark_version: str
    spark_version: str
    experiment_id: str | None = None
    run_id: str | None = None
    context: str | None = None
    mlflow_run_id: str | None = None

    @property
    def lookups(self) -> list[ResolvedLookup]:
        return [ResolvedLookup.model_validate(item) for item in json.loads(self.lookups_json)]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TrainingSetManifest:
        data: dict[str, Any] = {k: from_spark(v) if isinstance(v, datetime) else v for k, v in row.items()}
        for name in ("label", "exclude_columns", "feature_version_ids"):
            data[name] = list(data.get(name) or [])
        if data.get("supplying_version_ids") is not None:
            data["supplying_version_ids"] = list(data["supplying_version_ids"])
        return cls.model_validate(data)

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _, _ in TRAINING_SETS.columns}
