"""Models that carry their features: `log_model` puts the feature spec inside the MLflow model,
`score_batch` looks the features up again from keys alone and scores on the executors.

Scoring looks features up exactly as a training set does (`create_training_set`, context
`scoring`): point in time at each row's time when the rows have the lookups' time column,
else as of the call; features the rows already have are used as given. So a scoring is
recorded like a training set (the feature versions it read, the run), and its predictions are a
lineage node linked to the model version.

Before scoring, the features the model learned from are checked: a version it read that is now
quarantined, rows of it that a rollback has since taken out, or a feature retired by a
deprecation make its inputs differ from what it was trained on; that is refused, naming each
(`on_stale="warn"` warns and scores anyway).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import SCORINGS
from fs_spark.errors import ModelNotFoundError, StaleModelFeaturesError, first_line
from fs_spark.governance.deprecation import Deprecations
from fs_spark.ids import is_id, new_id
from fs_spark.integrations.mlflow import MlflowBridge
from fs_spark.lineage.openlineage import LineageEvents
from fs_spark.provenance import RunRef
from fs_spark.scoring.spec import FeatureSpec
from fs_spark.storage.layout import kept_stats_columns, write_new_table
from fs_spark.tracking.models import Models
from fs_spark.tracking.records import ModelVersion
from fs_spark.training.builder import TrainingSets
from fs_spark.versions.resolver import VersionResolver
from fs_spark.versions.series import ROLLBACK, included, quarantined_within, series
from fs_spark.versions.status import quarantined

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore
    from fs_spark.training.training_set import TrainingSet


MODELS_EXPERIMENT = "fs_spark_models"  # where a model is logged when no MLflow run is linked


class StaleModelFeaturesWarning(UserWarning):
    """Scoring goes on with features that differ from those the model was trained on."""


class Scoring:
    """log_model and score_batch for one store."""

    def __init__(
        self,
        store: FeatureStore,
        catalog: Catalog,
        training_sets: TrainingSets,
        versions: VersionResolver,
        models: Models,
        deprecations: Deprecations,
        mlflow: MlflowBridge,
        events: LineageEvents,
        user: str,
    ):
        self._store = store
        self._catalog = catalog
        self._training_sets = training_sets
        self._versions = versions
        self._models = models
        self._deprecations = deprecations
        self._mlflow = mlflow
        self._events = events
        self._user = user

    # --- logging ------------------------------------------------------------------------------

    def log_model(
        self,
        model: Any,
        flavor: Any,
        *,
        training_set: TrainingSet | str,
        registered_model_name: str,
        run: RunRef | None,
        name: str = "model",
        **flavor_options: Any,
    ) -> ModelVersion:
        manifest = self._training_sets.manifest(training_set if isinstance(training_set, str) else training_set.id)
        spec = FeatureSpec.of(manifest)
        metadata = {**(flavor_options.pop("metadata", None) or {}), **spec.to_metadata()}
        if "signature" not in flavor_options and "input_example" not in flavor_options:
            flavor_options["signature"] = self._signature(model, manifest.training_set_id, spec)
        linked = (run.mlflow_run_id if run else None) or self._mlflow.active_run_id()
        with self._mlflow.tracking(), self._mlflow.logging_run(linked, MODELS_EXPERIMENT) as run_id:
            if "model_id" not in flavor_options:
                flavor_options["model_id"] = self._mlflow.logged_model(run_id, name)
            info = flavor.log_model(
                model,
                name=name,
                metadata=metadata,
                registered_model_name=registered_model_name,
                run_id=run_id,
                **flavor_options,
            )
            version = self._models.register(
                registered_model_name,
                training_sets=[manifest.training_set_id],
                run=run,
                artifact_uri=info.model_uri,
                mlflow_model_id=info.model_id,
                mlflow_registered_version=str(info.registered_model_version),
            )
            self._mlflow.tag_model(registered_model_name, info, version.model_version_id, manifest.training_set_id)
        return version

    def _signature(self, model: Any, training_set_id: str, spec: FeatureSpec) -> Any:
        """The model's signature from a sample of its training set's feature columns (read
        without Spark), and what the model predicts for them. Integer features are declared
        double: a key with no features scores with nulls, which an integer column cannot hold."""
        import mlflow

        stored = self._store.open_training_set(training_set_id, verify=False)
        sample = next(stored.to_batches(batch_rows=100), None)  # a sample: no need to read it all
        if sample is None:  # no rows to infer from: the model is logged without a signature
            return None
        rows = sample.to_pandas()
        features = rows[spec.input_columns]
        integers = [c for c in features.columns if features[c].dtype.kind in "iu"]
        features = features.astype(dict.fromkeys(integers, "float64"))
        return mlflow.models.infer_signature(features, model.predict(features))

    # --- scoring ------------------------------------------------------------------------------

    def model_spec(self, model: str | tuple[str, int]) -> tuple[str, FeatureSpec, ModelVersion | None, Any]:
        """The model's URI, its feature spec, fs_spark's model version (None for a model fs_spark
        did not register) and MLflow's model info."""
        import mlflow

        version = None
        if isinstance(model, tuple) or is_id(model):
            version = self._models.version(model)
            if not version.artifact_uri:
                raise ModelNotFoundError(version.model_version_id, "it has no logged model: log it with log_model")
            uri = version.artifact_uri
        else:
            uri = model
            version = next((v for v in self._models.versions() if uri in _uris(v)), None)
        try:
            info = mlflow.models.get_model_info(uri)
        except Exception as error:  # MLflow's own kinds for a URI it cannot resolve
            raise ModelNotFoundError(str(model), f"MLflow cannot open it: {first_line(error)}") from None
        spec = FeatureSpec.from_metadata(info.metadata)
        if spec is None:
            raise ModelNotFoundError(str(model), "it carries no fs_spark feature spec: log it with log_model")
        return uri, spec, version, info

    def stale_features(self, spec: FeatureSpec, now: datetime | None = None) -> list[str]:
        """Why the features the model learned from would differ now, one line each."""
        now = now or datetime.now(UTC)
        problems = []
        held = quarantined(self._catalog)
        retired = [d for d in self._deprecations.in_force() if now >= d.end]
        for lookup in spec.resolved:
            every = self._catalog.versions(lookup.table_name)
            trained = next((v for v in every if v.version_id == lookup.version_id), None)
            if trained is not None:
                problems += [
                    f"{v.table_name} #{v.version_number} ({v.version_id}) is quarantined: {held[v.version_id]}"
                    for v in quarantined_within(every, trained, held)
                ]
                by_number = series(every, trained)
                latest, _ = self._versions.resolve(lookup.table_name)
                if latest is not None and latest.definition_version == trained.definition_version:
                    seen = included(every, trained)
                    gone = sorted(n for n in seen - included(every, latest) if by_number[n].mode != ROLLBACK)
                    if gone:
                        problems.append(
                            f"{lookup.table_name} #{', #'.join(map(str, gone))} rolled back by "
                            f"#{latest.version_number}: the model learned from rows it no longer holds"
                        )
            names = {f.name for f in lookup.features}
            for schedule in retired:
                if schedule.table == lookup.table_name and (schedule.feature is None or schedule.feature in names):
                    problems.append(f"{schedule.subject} was retired on {schedule.end.isoformat()} ({schedule.reason})")
        return problems

    def score_batch(
        self,
        model: str | tuple[str, int],
        df: DataFrame,
        *,
        result_type: str | None = None,
        prediction_column: str = "prediction",
        path: str | None = None,
        on_stale: str = "error",
        run: RunRef | None = None,
    ) -> DataFrame:
        import mlflow.pyfunc

        if on_stale not in ("error", "warn"):
            raise ValueError(f"on_stale is 'error' or 'warn', not {on_stale!r}")
        uri, spec, version, info = self.model_spec(model)
        label = version.model_name if version else uri
        problems = self.stale_features(spec)
        if problems and on_stale == "error":
            raise StaleModelFeaturesError(label, problems)
        for problem in problems:
            warnings.warn(f"scoring with {label}: {problem}", StaleModelFeaturesWarning, stacklevel=3)
        if prediction_column in df.columns:
            raise ValueError(f"the rows already have a column {prediction_column!r}: pass prediction_column=")
        supplied = set(df.columns) & set(spec.input_columns)
        now = datetime.now(UTC)
        added = [c for c in spec.time_columns() if c not in df.columns]
        rows = df.select("*", *[F.lit(now).alias(c) for c in added])
        lenient = on_stale == "warn"
        scoring_set = self._store.create_training_set(
            rows,
            spec.lookups(skip=supplied),
            name=f"scoring {label}",
            run=run,
            context="scoring",
            allow_quarantined=lenient,
            accept_deprecated=lenient,
        )
        features = scoring_set.load_df().drop(*added)
        kind = result_type or _output_type(info)
        predict = mlflow.pyfunc.spark_udf(self._store.spark, uri, result_type=kind, env_manager="local")
        scored = features.withColumn(prediction_column, predict(*_inputs(spec.input_columns, info)))
        output_version = None
        if path is not None:
            # No statistics of the features tagged sensitive, as in the scoring set's own table.
            withheld = self._training_sets.withheld(scoring_set.lookups)
            write_new_table(scored, path, kept_stats_columns(scored.schema, withheld))
            output_version = 0
            scored = self._store.spark.read.format("delta").load(path)
        self._record(scoring_set, version, uri, path, output_version, run)
        return scored

    def _record(self, scoring_set, version, uri, path, output_version, run) -> None:
        manifest = scoring_set.manifest
        row = {
            "scoring_id": new_id(),
            "model_version_id": version.model_version_id if version else None,
            "model_uri": uri,
            "scoring_set_id": manifest.training_set_id,
            "feature_version_ids": list(manifest.feature_version_ids),
            "output_path": path,
            "output_delta_version": output_version,
            "row_count": manifest.row_count,
            "run_id": run.run_id if run else None,
            "user": self._user,
            "at": datetime.now(UTC),
        }
        inputs = [(manifest.output_path, manifest.output_delta_version)]
        name = version.model_name if version else "model"
        with self._events.job(f"score_batch.{name}", run=run, inputs=inputs) as job:
            self._catalog.append(SCORINGS, [row])
            if path is not None:
                job.output(path, output_version, {"fs_spark.scoring_id": row["scoring_id"]})


def _inputs(columns: list[str], info: Any) -> list[Column]:
    """The model's input columns, each cast to the type its signature declares where that is a
    floating type (MLflow refuses to widen an integer column itself)."""
    declared = {}
    if info.signature is not None and info.signature.inputs is not None and info.signature.inputs.has_input_names():
        declared = {c.name: getattr(c.type, "name", str(c.type)) for c in info.signature.inputs.inputs}
    return [F.col(c).cast(declared[c]) if declared.get(c) in ("double", "float") else F.col(c) for c in columns]


# MLflow's column types, then numpy's (a tensor output) -> Spark's
_SPARK_TYPES = {
    "boolean": "boolean",
    "integer": "int",
    "long": "long",
    "float": "float",
    "double": "double",
    "string": "string",
    "bool": "boolean",
    "int32": "int",
    "int64": "long",
    "float32": "float",
    "float64": "double",
}


def _output_type(info: Any) -> str:
    """The prediction's Spark type: the model signature's one output, else double."""
    outputs = info.signature.outputs if info.signature is not None else None
    if outputs is None or len(outputs.inputs) != 1:
        return "double"
    return _SPARK_TYPES.get(getattr(outputs.inputs[0].type, "name", ""), "double")


def _uris(version: ModelVersion) -> set[str]:
    """The URIs that name a model version: its logged model's, and its registered version's."""
    uris = {version.artifact_uri or ""}
    if version.mlflow_model_id:
        uris.add(f"models:/{version.mlflow_model_id}")
    if version.mlflow_registered_version:
        uris.add(f"models:/{version.model_name}/{version.mlflow_registered_version}")
    return uris - {""}
