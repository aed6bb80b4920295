"""MLflow, both ways: fs_spark runs mirror into MLflow runs, training sets are logged as MLflow
dataset inputs, model versions become MLflow logged models and registered versions; the IDs of
each side are kept on the other (MLflow tags `fs_spark.*`, our `mlflow_*` catalog columns).

mlflow is imported only when a run is linked to MLflow, so a store without MLflow never loads it.
A run is linked when it is given an MLflow run ID, when an MLflow run is active in this thread
(and mlflow is already imported), or, with `mlflow.start_runs`, always.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fs_spark.config import MlflowSettings

if TYPE_CHECKING:
    from fs_spark.training.manifest import TrainingSetManifest

DELTA_VERSION_TAG = "fs_spark.delta_version"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class MlflowBridge:
    def __init__(self, settings: MlflowSettings):
        self.settings = settings
        self._client: Any = None
        self._client_uri: str | None = None
        self._started: set[str] = set()

    def client(self):
        """A client of the configured tracking store, else of MLflow's current one (which the
        user may change between calls: the client follows)."""
        import mlflow
        from mlflow import MlflowClient

        uri = self.settings.tracking_uri or mlflow.get_tracking_uri()
        if self._client is None or self._client_uri != uri:
            self._client, self._client_uri = MlflowClient(tracking_uri=uri), uri
        return self._client

    def active_run_id(self) -> str | None:
        """The MLflow run active in this thread, if mlflow is in use at all."""
        if not self.settings.follow_active_run or "mlflow" not in sys.modules:
            return None
        active = sys.modules["mlflow"].active_run()
        return active.info.run_id if active else None

    # --- runs ---------------------------------------------------------------------------------

    def link_run(
        self, mlflow_run_id: str | None, experiment: str, name: str | None, tags: Mapping[str, str]
    ) -> str | None:
        """The MLflow run an fs_spark run is linked to (tagged with our IDs), or None."""
        chosen = mlflow_run_id or self.active_run_id()
        if chosen is None and self.settings.start_runs:
            client = self.client()
            found = client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else client.create_experiment(experiment)
            chosen = client.create_run(experiment_id, run_name=name).info.run_id
            self._started.add(chosen)
        if chosen is not None:
            for key, value in tags.items():
                self.client().set_tag(chosen, key, value)
        return chosen

    def log_params(self, run_id: str | None, params: Mapping[str, Any]) -> None:
        for key, value in params.items() if run_id else ():
            self.client().log_param(run_id, key, _text(value))

    def log_metrics(self, run_id: str | None, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items() if run_id else ():
            self.client().log_metric(run_id, key, float(value), step=step)

    def end_run(self, run_id: str | None, status: str) -> None:
        """End the MLflow run if fs_spark started it; a run the user started is theirs to end."""
        if run_id in self._started:
            self.client().set_terminated(run_id, "FINISHED" if status == "finished" else "FAILED")
            self._started.discard(run_id)

    # --- datasets and models ------------------------------------------------------------------

    def log_training_set(self, run_id: str, manifest: TrainingSetManifest, context: str) -> None:
        """Log a training set as a dataset input of an MLflow run, with a Delta source.

        MLflow's Delta source drops Delta version 0 (`if version:`), and every training set
        table is at version 0, so the version is kept in our own tag too.
        """
        from mlflow.data.delta_dataset_source import DeltaDatasetSource
        from mlflow.entities import Dataset, DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        source = DeltaDatasetSource(path=manifest.output_path, delta_table_version=manifest.output_delta_version)
        dataset = Dataset(
            name=manifest.name or f"fs_spark_training_set_{manifest.training_set_id}",
            digest=manifest.content_digest[:36],
            source_type=DeltaDatasetSource._get_source_type(),
            source=source.to_json(),
            schema=manifest.output_schema_json,
            profile=json.dumps({"num_rows": manifest.row_count}),
        )
        tags = [
            InputTag(MLFLOW_DATASET_CONTEXT, context),
            InputTag("fs_spark.training_set_id", manifest.training_set_id),
            InputTag(DELTA_VERSION_TAG, str(manifest.output_delta_version)),
            InputTag("fs_spark.content_digest", manifest.content_digest),
            InputTag("fs_spark.feature_version_ids", ",".join(manifest.feature_version_ids)),
        ]
        self.client().log_inputs(run_id, datasets=[DatasetInput(dataset, tags)])

    def register_model(self, run_id: str | None, record: Mapping[str, Any]) -> dict[str, Any]:
        """For a model version trained in a linked run: an MLflow logged model and registered
        model version, tagged with our IDs. Returns the MLflow IDs to record (nothing if unlinked)."""
        if run_id is None or record.get("mlflow_model_id"):
            return {}
        client = self.client()
        tags = {
            "fs_spark.model_version_id": record["model_version_id"],
            "fs_spark.run_id": record["run_id"] or "",
            "fs_spark.training_set_ids": ",".join(record["training_set_ids"]),
        }
        experiment_id = client.get_run(run_id).info.experiment_id
        logged = client.create_logged_model(experiment_id, name=record["model_name"], source_run_id=run_id, tags=tags)
        name = record["model_name"]
        if client.search_registered_models(filter_string=f"name = '{name}'") == []:
            client.create_registered_model(name)
        registered = client.create_model_version(
            name, source=f"models:/{logged.model_id}", run_id=run_id, tags=tags, model_id=logged.model_id
        )
        return {"mlflow_model_id": logged.model_id, "mlflow_registered_version": str(registered.version)}

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """MLflow's own calls (a flavor's `log_model`) against the configured tracking store."""
        import mlflow

        before = mlflow.get_tracking_uri()
        if self.settings.tracking_uri:
            mlflow.set_tracking_uri(self.settings.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)

    @contextmanager
    def logging_run(self, run_id: str | None, experiment: str) -> Iterator[str]:
        """The MLflow run a model is logged in: `run_id`, else one started here in `experiment`
        and ended after (MLflow's own notion of the active experiment is process-global, and
        may name one of another tracking store)."""
        if run_id is not None:
            yield run_id
            return
        client = self.client()
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        started = client.create_run(experiment_id, run_name="log_model").info.run_id
        try:
            yield started
        except BaseException:
            client.set_terminated(started, "FAILED")
            raise
        client.set_terminated(started, "FINISHED")

    def logged_model(self, run_id: str, name: str) -> str:
        """A logged model in the run's own experiment, for a flavor's `log_model(model_id=...)`
        to fill: given only `run_id`, MLflow puts the model in the process's active experiment
        (its Default one), with its artifacts under that experiment's location."""
        client = self.client()
        run = client.get_run(run_id)
        made = client.create_logged_model(
            run.info.experiment_id, name=name, source_run_id=run_id, params=dict(run.data.params)
        )
        return str(made.model_id)

    def tag_model(self, name: str, info: Any, model_version_id: str, training_set_id: str) -> None:
        """Our IDs on a logged model and its registered version."""
        tags = {"fs_spark.model_version_id": model_version_id, "fs_spark.training_set_ids": training_set_id}
        client = self.client()
        client.set_logged_model_tags(info.model_id, tags)
        if info.registered_model_version is not None:
            for key, value in tags.items():
                client.set_model_version_tag(name, str(info.registered_model_version), key, value)
