"""Typed views of the tracking tables' rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from fs_spark.provenance import from_spark

STAGES = ("training", "validation", "deployment")


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_row(cls, row: dict[str, Any]):
        data = {k: from_spark(v) if isinstance(v, datetime) else v for k, v in row.items()}
        for name, field in cls.model_fields.items():
            if data.get(name) is None and field.annotation in (list[str], "list[str]"):
                data[name] = []
        return cls.model_validate(data)


class Experiment(_Record):
    experiment_id: str
    name: str
    description: str | None = None
    user: str
    created_at: datetime


class RunInfo(_Record):
    """A run's latest recorded state."""

    run_id: str
    experiment_id: str
    name: str | None = None
    hypothesis: str | None = None
    stage: str
    status: str
    params_json: str = "{}"
    tags_json: str = "{}"
    error: str | None = None
    user: str
    started_at: datetime
    ended_at: datetime | None = None
    mlflow_run_id: str | None = None

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json or "{}")

    @property
    def tags(self) -> dict[str, str]:
        return json.loads(self.tags_json or "{}")


class Model(_Record):
    model_id: str
    name: str
    description: str | None = None
    user: str
    created_at: datetime


class ModelVersion(_Record):
    """A trained model tied to the run and training sets it came from."""

    model_version_id: str
    model_id: str
    model_name: str
    version: int
    run_id: str | None = None
    experiment_id: str | None = None
    training_set_ids: list[str] = []
    feature_version_ids: list[str] = []
    artifact_uri: str | None = None
    mlflow_model_id: str | None = None
    mlflow_registered_version: str | None = None
    user: str
    created_at: datetime


class Deployment(_Record):
    """A model version made live (or retired) in one environment, with what it needed then."""

    deployment_id: str
    model_version_id: str
    model_name: str
    model_version: int
    environment: str
    status: str
    feature_version_ids: list[str] = []
    features: list[str] = []
    feature_service: str | None = None
    feature_service_version: int | None = None
    lineage_json: str | None = None
    run_id: str | None = None
    user: str
    at: datetime

    @property
    def lineage(self) -> dict[str, Any]:
        return json.loads(self.lineage_json or "{}")
