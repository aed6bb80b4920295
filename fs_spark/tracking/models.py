"""Models, model versions and deployments.

A model version is registered with the run that trained it and the training sets it learned
from, so the feature versions behind it are known. A deployment records the active feature set
and a snapshot of the model version's upstream lineage, so later analysis sees what was live then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import DEPLOYMENTS, MODEL_VERSIONS, MODELS
from fs_spark.errors import ModelNotFoundError
from fs_spark.ids import is_id, new_id
from fs_spark.integrations.mlflow import MlflowBridge
from fs_spark.lineage.graph import build_graph
from fs_spark.lineage.openlineage import LineageEvents
from fs_spark.names import check_name
from fs_spark.online.feature_service import FeatureServices, check_serves
from fs_spark.provenance import RunRef
from fs_spark.tracking.records import Deployment, Model, ModelVersion

if TYPE_CHECKING:
    from fs_spark.definitions.model import FeatureTable
    from fs_spark.training.builder import TrainingSets
    from fs_spark.training.training_set import TrainingSet


def _now() -> datetime:
    return datetime.now(UTC)


class Models:
    """The model registry of one store."""

    def __init__(
        self,
        catalog: Catalog,
        training_sets: TrainingSets,
        services: FeatureServices,
        definition_of: Callable[[str], FeatureTable],
        mlflow: MlflowBridge,
        events: LineageEvents,
        user: str,
    ):
        self._catalog = catalog
        self._training_sets = training_sets
        self._services = services
        self._definition_of = definition_of
        self._mlflow = mlflow
        self._events = events
        self._user = user

    def models(self) -> list[Model]:
        return [Model.from_row(r) for r in sorted(self._catalog.rows(MODELS.name), key=lambda r: r["model_id"])]

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        rows = [r for r in self._catalog.rows(MODEL_VERSIONS.name) if name is None or r["model_name"] == name]
        return [ModelVersion.from_row(r) for r in sorted(rows, key=lambda r: (r["model_name"], r["version"]))]

    def version(self, model_version: str | tuple[str, int]) -> ModelVersion:
        """A model version by its ID, or by (model name, version number)."""
        every = self.versions()
        if isinstance(model_version, tuple):
            name, number = model_version
            found = [v for v in every if v.model_name == name and v.version == number]
        elif is_id(model_version):
            found = [v for v in every if v.model_version_id == model_version]
        else:
            raise ModelNotFoundError(str(model_version), "pass a model version ID or (name, version)")
        if not found:
            raise ModelNotFoundError(str(model_version), f"the store has {len(every)} model version(s)")
        return found[0]

    def register(
        self,
        name: str,
        *,
        training_sets: Sequence[TrainingSet | str],
        run: RunRef | None = None,
        artifact_uri: str | None = None,
        description: str = "",
        mlflow_model_id: str | None = None,
        mlflow_registered_version: str | None = None,
    ) -> ModelVersion:
        check_name(name, "model")
        manifests = [self._training_sets.manifest(t if isinstance(t, str) else t.id) for t in training_sets]
        if not manifests:
            raise ValueError(f"model {name!r}: a model version needs the training sets it learned from")
        created = []
        model = next((m for m in self.models() if m.name == name), None)
        if model is None:
            row = {
                "model_id": new_id(),
                "name": name,
                "description": description,
                "user": self._user,
                "created_at": _now(),
            }
            created.append(row)
            model = Model.from_row(row)
        feature_versions = sorted({v for m in manifests for v in m.feature_version_ids})
        number = 1 + max((v.version for v in self.versions(name)), default=0)
        record: dict[str, Any] = {
            "model_version_id": new_id(),
            "model_id": model.model_id,
            "model_name": name,
            "version": number,
            "run_id": run.run_id if run else None,
            "experiment_id": run.experiment_id if run else None,
            "training_set_ids": [m.training_set_id for m in manifests],
            "feature_version_ids": feature_versions,
            "artifact_uri": artifact_uri,
            "mlflow_model_id": mlflow_model_id,
            "mlflow_registered_version": mlflow_registered_version,
            "user": self._user,
            "created_at": _now(),
        }
        inputs = [(m.output_path, m.output_delta_version) for m in manifests]
        with self._events.job(f"register_model.{name}", run=run, inputs=inputs) as job:
            linked = self._mlflow.register_model(run.mlflow_run_id if run else None, record)
            record.update(linked)
            self._catalog.append(MODELS, created)
            self._catalog.append(MODEL_VERSIONS, [record])
            job.output(f"models/{name}", number, {"fs_spark.model_version_id": record["model_version_id"]})
        return ModelVersion.from_row(record)

    # --- deployments --------------------------------------------------------------------------

    def deployments(self, environment: str | None = None) -> list[Deployment]:
        rows = [
            r for r in self._catalog.rows(DEPLOYMENTS.name) if environment is None or r["environment"] == environment
        ]
        return [Deployment.from_row(r) for r in sorted(rows, key=lambda r: r["deployment_id"])]

    def live_everywhere(self) -> list[Deployment]:
        """The deployment live in each environment now: the latest record per environment, if active."""
        latest: dict[str, Deployment] = {}
        for record in self.deployments():
            latest[record.environment] = record
        return [d for d in latest.values() if d.status == "active"]

    def live(self, environment: str) -> Deployment | None:
        """The model version live in `environment` now, if any."""
        return next((d for d in self.live_everywhere() if d.environment == environment), None)

    def features_of(self, model_version: str | tuple[str, int]) -> list[str]:
        """`table:feature` of every feature the model version was trained on."""
        version = self.version(model_version)
        return sorted(
            {
                f"{lookup.table_name}:{feature.name}"
                for ts in version.training_set_ids
                for lookup in self._training_sets.manifest(ts).lookups
                for feature in lookup.features
            }
        )

    def deploy(
        self,
        model_version: str | tuple[str, int],
        environment: str,
        *,
        feature_service: str | None = None,
        run: RunRef | None = None,
    ) -> Deployment:
        """Record that a model version is live in `environment`; a `feature_service` (its latest
        version) must serve exactly the features the model was trained on."""
        check_name(environment, "environment")
        version = self.version(model_version)
        features = self.features_of(model_version)
        service = None
        if feature_service is not None:
            applied = self._services.get(feature_service)
            check_serves(applied, features, self._definition_of)
            service = (applied.service.name, applied.version)
        graph = build_graph(self._catalog)
        snapshot = graph.upstream(f"model_version:{version.model_version_id}").to_dict()
        row = {
            "deployment_id": new_id(),
            "model_version_id": version.model_version_id,
            "model_name": version.model_name,
            "model_version": version.version,
            "environment": environment,
            "status": "active",
            "feature_version_ids": list(version.feature_version_ids),
            "features": features,
            "feature_service": service[0] if service else None,
            "feature_service_version": service[1] if service else None,
            "lineage_json": json.dumps(snapshot, sort_keys=True, default=str),
            "run_id": run.run_id if run else None,
            "user": self._user,
            "at": _now(),
        }
        self._catalog.append(DEPLOYMENTS, [row])
        return Deployment.from_row(row)

    def retire(self, environment: str) -> Deployment:
        """Take the live model version out of `environment` (recorded as an event)."""
        live = self.live(environment)
        if live is None:
            raise ModelNotFoundError(environment, "nothing is live in that environment")
        row = {**live.model_dump(), "deployment_id": new_id(), "status": "retired", "at": _now()}
        self._catalog.append(DEPLOYMENTS, [row])
        return Deployment.from_row(row)
