"""The feature spec a logged model carries: what it was trained on, enough to look its inputs up.

It lives in the MLflow model's own metadata (the `MLmodel` file, key `fs_spark`), so wherever
the model goes its features go with it: the training set, the feature versions it read, and the
lookups (table, features, key and time columns, lookback, defaults) that give the model's input
columns, in order.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from fs_spark.training.lookups import FeatureLookup
from fs_spark.training.manifest import ResolvedLookup, TrainingSetManifest

METADATA_KEY = "fs_spark"


class FeatureSpec(BaseModel):
    """The model's inputs: `input_columns` in order, each from one lookup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = 1
    training_set_id: str
    feature_version_ids: list[str]
    lookups_json: str
    input_columns: list[str]
    labels: list[str]

    @classmethod
    def of(cls, manifest: TrainingSetManifest) -> FeatureSpec:
        outputs = [f.output for lookup in manifest.lookups for f in lookup.features]
        return cls(
            training_set_id=manifest.training_set_id,
            feature_version_ids=list(manifest.feature_version_ids),
            lookups_json=manifest.lookups_json,
            input_columns=outputs,
            labels=list(manifest.label),
        )

    @property
    def resolved(self) -> list[ResolvedLookup]:
        return [ResolvedLookup.model_validate(item) for item in json.loads(self.lookups_json)]

    def time_columns(self) -> list[str]:
        """The entity time column of each lookup, in order, once each."""
        return list(dict.fromkeys(lookup.entity_time for lookup in self.resolved))

    def lookups(self, skip: set[str]) -> list[FeatureLookup]:
        """Unpinned lookups of the same features (the latest versions, as of each entity row's
        time), leaving out the outputs in `skip` (columns the caller supplies)."""
        out = []
        for lookup in self.resolved:
            features = [f for f in lookup.features if f.output not in skip]
            if not features:
                continue
            out.append(
                FeatureLookup(
                    table_name=lookup.table_name,
                    feature_names=[f.name for f in features],
                    lookup_key=list(lookup.entity_keys),
                    timestamp_lookup_key=lookup.entity_time,
                    lookback_window=timedelta(microseconds=lookup.lookback_micros) if lookup.lookback_micros else None,
                    rename_outputs={f.name: f.output for f in features if f.output != f.name},
                    default_values={f.name: f.default for f in features if f.default is not None},
                )
            )
        return out

    def to_metadata(self) -> dict[str, Any]:
        return {METADATA_KEY: self.model_dump()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> FeatureSpec | None:
        raw = (metadata or {}).get(METADATA_KEY)
        return cls.model_validate(raw) if raw else None
