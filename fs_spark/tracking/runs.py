"""Experiments, runs and metrics.

A run is an object the user holds (`with store.start_run(...) as run:`), never a hidden global.
What is done through it (`run.write`, `run.read`, `run.create_training_set`,
`run.register_model`, `run.deploy`) carries its IDs into feature-version provenance, manifests,
Delta commit metadata and the Spark job group, so the Spark UI and the Delta history show them.
Its state is a series of events in the `runs` catalog table: started, then finished or failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import EXPERIMENTS, RUN_INPUTS, RUN_METRICS, RUNS
from fs_spark.errors import RunNotFoundError, RunStateError, without_values
from fs_spark.ids import new_id
from fs_spark.integrations.mlflow import MlflowBridge
from fs_spark.names import check_name
from fs_spark.provenance import RunRef
from fs_spark.spark_jobs import job_group
from fs_spark.tracking.records import STAGES, Experiment, RunInfo

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore
    from fs_spark.tracking.models import ModelVersion
    from fs_spark.training.training_set import TrainingSet


def _now() -> datetime:
    return datetime.now(UTC)


def _scalar(name: str, value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"parameter {name!r} must be a str, int, float, bool or None, not {type(value).__name__}")


class Run:
    """One run of an experiment. Use it as a context manager: it ends as finished, or as failed
    when the block raises.

    Example:
        >>> with store.start_run(experiment="churn", hypothesis="spend predicts churn") as run:  # doctest: +SKIP
        ...     ts = run.create_training_set(entities, ["customer_activity:spend_7d"], label="churned")
        ...     run.log_metrics({"val_auc": 0.81})
        ...     run.register_model("churn", training_sets=[ts])
    """

    def __init__(
        self,
        store: FeatureStore,
        tracking: Tracking,
        catalog: Catalog,
        mlflow: MlflowBridge,
        info: RunInfo,
        accept_deprecated: bool = False,
    ):
        self._store = store  # the facade: what a run does goes through its access-checked doors
        self._tracking = tracking
        self._catalog = catalog
        self._mlflow = mlflow
        self._info = info
        self._group: AbstractContextManager[None] | None = None
        self.accept_deprecated = accept_deprecated

    # --- identity -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._info.run_id

    @property
    def experiment_id(self) -> str:
        return self._info.experiment_id

    @property
    def info(self) -> RunInfo:
        return self._info

    @property
    def ref(self) -> RunRef:
        """The IDs that travel with everything done through this run."""
        return RunRef(
            experiment_id=self.experiment_id,
            run_id=self.id,
            hypothesis=self._info.hypothesis,
            mlflow_run_id=self._info.mlflow_run_id,
        )

    # --- context ------------------------------------------------------------------------------

    def __enter__(self) -> Run:
        text = f"fs_spark run {self.id} (experiment {self.experiment_id})"
        group = job_group(self._store.spark, self.id, text)
        group.__enter__()
        self._group = group
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            if self._info.status == "running":
                # Anyone may list runs: the error is kept without feature values (validation examples).
                told = f"{kind.__name__}: {without_values(error)}" if error else None
                self.end("failed" if error else "finished", error=told)
        finally:
            if self._group is not None:
                self._group.__exit__(None, None, None)
                self._group = None

    # --- what is recorded ---------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add parameters (recorded as a new state event of the run)."""
        self._check_running("log parameters")
        merged = {**self._info.params, **{k: _scalar(k, v) for k, v in params.items()}}
        self._info = self._tracking.record(self._info, params_json=json.dumps(merged, sort_keys=True))
        self._mlflow.log_params(self._info.mlflow_run_id, params)

    def log_param(self, name: str, value: Any) -> None:
        self.log_params({name: value})

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Record metric values, all in one catalog commit."""
        self._check_running("log metrics")
        at = _now()
        rows = [
            {"run_id": self.id, "key": key, "value": float(value), "step": int(step), "at": at}
            for key, value in metrics.items()
        ]
        self._catalog.append(RUN_METRICS, rows)
        self._mlflow.log_metrics(self._info.mlflow_run_id, metrics, step)

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        self.log_metrics({key: value}, step)

    def metrics(self) -> dict[str, float]:
        """The latest value of each metric (highest step, then latest logged)."""
        return self._tracking.metrics(self.id)

    def end(self, status: str = "finished", error: str | None = None) -> None:
        if status not in ("finished", "failed"):
            raise ValueError(f"a run ends as finished or failed, not {status!r}")
        self._check_running(f"end it as {status}")
        self._info = self._tracking.record(self._info, status=status, error=error, ended_at=_now())
        self._mlflow.end_run(self._info.mlflow_run_id, status)

    def _check_running(self, action: str) -> None:
        if self._info.status != "running":
            raise RunStateError(self.id, self._info.status, action)

    # --- operations through the run -----------------------------------------------------------

    def write(self, table: str, df: DataFrame, **options):
        """`FeatureStore.write`, made by this run."""
        self._check_running("write")
        return self._store.write(table, df, run=self.ref, **options)

    def read(self, table: str, **options) -> DataFrame:
        """`FeatureStore.read`, recording in `run_inputs` which feature version this run read."""
        self._check_running("read")
        version = self._store.version(table, options.get("version"), options.get("as_of"))
        frame = self._store.read(table, **options)
        if version is not None:
            self._catalog.append(
                RUN_INPUTS,
                [
                    {
                        "run_id": self.id,
                        "version_id": version.version_id,
                        "table_name": table,
                        "delta_version": version.delta_version,
                        "at": _now(),
                    }
                ],
            )
        return frame

    def create_training_set(
        self, df: DataFrame, feature_lookups: Sequence, *, context: str = "training", **options
    ) -> TrainingSet:
        """`FeatureStore.create_training_set` for this run; `context` is what the run uses it for
        (training or validation), as MLflow records dataset inputs."""
        self._check_running("build a training set")
        options.setdefault("accept_deprecated", self.accept_deprecated)
        return self._store.create_training_set(df, feature_lookups, run=self.ref, context=context, **options)

    def register_model(self, name: str, **options) -> ModelVersion:
        """`FeatureStore.register_model`, trained by this run."""
        self._check_running("register a model")
        return self._store.register_model(name, run=self.ref, **options)

    def log_model(self, model: Any, flavor: Any, **options) -> ModelVersion:
        """`FeatureStore.log_model`, trained by this run (logged into its MLflow run, if linked)."""
        self._check_running("log a model")
        return self._store.log_model(model, flavor, run=self.ref, **options)

    def score_batch(self, model: Any, df: DataFrame, **options) -> DataFrame:
        """`FeatureStore.score_batch`, recorded for this run."""
        self._check_running("score")
        return self._store.score_batch(model, df, run=self.ref, **options)

    def deploy(self, model_version: str, environment: str, **options):
        """`FeatureStore.deploy`, made by this run."""
        self._check_running("deploy")
        return self._store.deploy(model_version, environment, run=self.ref, **options)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, experiment_id={self.experiment_id!r}, status={self._info.status!r})"


class Tracking:
    """Experiments and runs of one store."""

    def __init__(self, store: FeatureStore, catalog: Catalog, mlflow: MlflowBridge):
        self._store = store  # handed to the runs it starts
        self._catalog = catalog
        self._mlflow = mlflow

    # --- experiments --------------------------------------------------------------------------

    def experiments(self) -> list[Experiment]:
        rows = sorted(self._catalog.rows(EXPERIMENTS.name), key=lambda r: r["experiment_id"])
        return [Experiment.from_row(r) for r in rows]

    def experiment(self, name: str, description: str = "", create: bool = True) -> Experiment:
        """The experiment called `name`, created on first use."""
        check_name(name, "experiment")
        found = [e for e in self.experiments() if e.name == name]
        if found:
            return found[0]
        if not create:
            raise KeyError(f"no experiment {name!r}")
        row = {
            "experiment_id": new_id(),
            "name": name,
            "description": description,
            "user": self._store.user,
            "created_at": _now(),
        }
        self._catalog.append(EXPERIMENTS, [row])
        return Experiment.from_row(row)

    # --- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        hypothesis: str | None = None,
        stage: str = "training",
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        mlflow_run_id: str | None = None,
        accept_deprecated: bool = False,
    ) -> Run:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        chosen = self.experiment(experiment)
        run_id = new_id()
        clean = {k: _scalar(k, v) for k, v in (params or {}).items()}
        mlflow_run_id = self._mlflow.link_run(
            mlflow_run_id,
            experiment,
            name,
            {
                "fs_spark.run_id": run_id,
                "fs_spark.experiment_id": chosen.experiment_id,
                "fs_spark.stage": stage,
                **({"fs_spark.hypothesis": hypothesis} if hypothesis else {}),
            },
        )
        self._mlflow.log_params(mlflow_run_id, clean)
        at = _now()
        row = {
            "event_id": new_id(),
            "run_id": run_id,
            "experiment_id": chosen.experiment_id,
            "name": name,
            "hypothesis": hypothesis,
            "stage": stage,
            "status": "running",
            "params_json": json.dumps(clean, sort_keys=True),
            "tags_json": json.dumps(dict(tags or {}), sort_keys=True),
            "error": None,
            "user": self._store.user,
            "started_at": at,
            "ended_at": None,
            "mlflow_run_id": mlflow_run_id,
            "at": at,
        }
        self._catalog.append(RUNS, [row])
        return Run(self._store, self, self._catalog, self._mlflow, RunInfo.from_row(row), accept_deprecated)

    def record(self, info: RunInfo, **changes) -> RunInfo:
        """Append a new state event of a run; return its new state."""
        row = {**info.model_dump(), **changes, "event_id": new_id(), "at": _now()}
        self._catalog.append(RUNS, [row])
        return RunInfo.from_row(row)

    def runs(self, experiment: str | None = None) -> list[RunInfo]:
        """The latest state of every run (of one experiment, by name, if given), oldest first."""
        latest: dict[str, dict] = {}
        for row in sorted(self._catalog.rows(RUNS.name), key=lambda r: r["event_id"]):
            latest[row["run_id"]] = row
        runs = [RunInfo.from_row(r) for _, r in sorted(latest.items())]
        if experiment is not None:
            wanted = {e.experiment_id for e in self.experiments() if e.name == experiment}
            runs = [r for r in runs if r.experiment_id in wanted]
        return runs

    def run(self, run_id: str) -> RunInfo:
        found = [r for r in self.runs() if r.run_id == run_id]
        if not found:
            raise RunNotFoundError(run_id)
        return found[0]

    def metrics(self, run_id: str) -> dict[str, float]:
        rows = [r for r in self._catalog.rows(RUN_METRICS.name) if r["run_id"] == run_id]
        rows.sort(key=lambda r: (r["step"], r["at"]))
        return {r["key"]: r["value"] for r in rows}

    def best_feature_versions(
        self, metric: str, *, experiment: str | None = None, ascending: bool = False
    ) -> DataFrame:
        """One Spark SQL query over the catalog: each run's latest value of `metric` with the feature
        versions its training sets read, best first. It answers "which feature-version combination
        gave the best validation AUC"."""
        self._catalog.register_views()
        order = "ASC" if ascending else "DESC"
        where = ""
        if experiment is not None:
            check_name(experiment, "experiment")
            where = f"WHERE e.name = '{experiment}'"
        return self._store.spark.sql(f"""
            WITH latest_metric AS (
                SELECT run_id, max_by(value, struct(step, at)) AS value
                FROM fs_run_metrics WHERE key = '{_sql_text(metric)}' GROUP BY run_id
            ), run_state AS (
                SELECT run_id, max_by(struct(experiment_id, hypothesis, stage, status), event_id) AS s
                FROM fs_runs GROUP BY run_id
            ), inputs AS (
                SELECT run_id, array_sort(array_distinct(flatten(collect_list(feature_version_ids)))) AS feature_version_ids,
                       array_sort(collect_list(training_set_id)) AS training_set_ids
                FROM fs_training_sets WHERE run_id IS NOT NULL GROUP BY run_id
            )
            SELECT m.run_id, e.name AS experiment, r.s.hypothesis AS hypothesis, r.s.stage AS stage,
                   m.value AS {_sql_ident(metric)}, i.feature_version_ids, i.training_set_ids
            FROM latest_metric m
            JOIN run_state r ON r.run_id = m.run_id
            JOIN fs_experiments e ON e.experiment_id = r.s.experiment_id
            LEFT JOIN inputs i ON i.run_id = m.run_id
            {where}
            ORDER BY m.value {order}, m.run_id
        """)


def _sql_text(text: str) -> str:
    if not text.replace("_", "").replace(".", "").replace("-", "").isalnum():
        raise ValueError(f"metric name {text!r} may hold letters, digits, '_', '.' and '-' only")
    return text


def _sql_ident(text: str) -> str:
    return "`" + _sql_text(text) + "`"
