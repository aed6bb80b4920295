"""`FeatureStore`: the object users hold. It ties one store root to one Spark session.

Example:
    >>> store = FeatureStore("./fs_store")                        # doctest: +SKIP
    >>> store.apply(customer_activity)                            # doctest: +SKIP
    >>> version = store.write("customer_activity", batch_df)      # doctest: +SKIP
    >>> store.read("customer_activity", version=version.version_id).show()  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import MAINTENANCE_EVENTS, VERSION_STATUS
from fs_spark.config import Settings, load_settings
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import VersionNotFoundError
from fs_spark.ids import is_id, new_id
from fs_spark.ingest.writer import FeatureWriter, Mode
from fs_spark.integrations.mlflow import MlflowBridge
from fs_spark.lineage.lineage import Lineage
from fs_spark.lineage.openlineage import LineageEvents
from fs_spark.provenance import RunRef, SourceInfo, as_run_ref, require_utc
from fs_spark.quality.checks import QualityChecks
from fs_spark.registry import PlanItem, Registry
from fs_spark.retention import VacuumResult, vacuum
from fs_spark.session import check_delta, get_session
from fs_spark.storage.paths import StorePaths
from fs_spark.storage.reader import read_version, readable_delta_version
from fs_spark.tracking.models import Models
from fs_spark.tracking.records import Deployment, ModelVersion
from fs_spark.tracking.runs import Run, Tracking
from fs_spark.training.builder import TrainingSets
from fs_spark.training.lookups import FeatureLookup
from fs_spark.training.manifest import TrainingSetManifest
from fs_spark.training.training_set import TrainingSet


class FeatureStore:
    """A feature store rooted at one folder (local path or URI), on one Spark session.

    Args:
        root: the store root; default: `store.root` from settings.
        spark: a session to use as it is (it must have Delta); default: the active session, or
            a local Delta session built from settings.
        settings: default: `load_settings()` (conf/fs_spark.yaml plus FS_SPARK_* overrides).
        user: the principal recorded in provenance; default: settings, then the OS user.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        spark: SparkSession | None = None,
        settings: Settings | None = None,
        user: str | None = None,
    ):
        self.settings = settings or load_settings()
        if spark is not None:
            check_delta(spark)
        self.spark = spark or get_session(self.settings.spark)
        self.paths = StorePaths(root or self.settings.store.root)
        self.user = user or self.settings.store.user or getpass.getuser()
        timeout = self.settings.store.lock_timeout_seconds
        self.catalog = Catalog(self.spark, self.paths, timeout)
        self.registry = Registry(self.spark, self.paths, self.catalog, self.user, timeout)
        self._writer = FeatureWriter(self.spark, self.paths, self.catalog, self.user, timeout)
        self._training = TrainingSets(self, self.settings.training.buckets)
        self.mlflow = MlflowBridge(self.settings.mlflow)
        self.events = LineageEvents(self.settings.lineage, self.paths.root)
        self.tracking = Tracking(self)
        self.models = Models(self)
        self.lineage = Lineage(self)
        self.quality = QualityChecks(self)

    @property
    def root(self) -> str:
        return self.paths.root

    def init(self) -> FeatureStore:
        """Create the catalog tables (also done on first use)."""
        self.catalog.ensure()
        return self

    # --- definitions --------------------------------------------------------------------------

    def plan(self, *tables: FeatureTable) -> list[PlanItem]:
        """What `apply` would do, changing nothing."""
        return self.registry.plan(list(tables))

    def apply(self, *tables: FeatureTable) -> list[PlanItem]:
        """Create or update definitions; a breaking change needs a new definition_version."""
        return self.registry.apply(list(tables))

    def get_table(self, name: str) -> FeatureTable:
        return self.registry.current(name).definition

    def list_tables(self) -> list[str]:
        return self.registry.names()

    # --- writing ------------------------------------------------------------------------------

    def write(
        self,
        table: str,
        df: DataFrame,
        *,
        mode: Mode = "strict",
        write_id: str | None = None,
        source: SourceInfo | None = None,
        run: Run | RunRef | None = None,
    ) -> FeatureVersion:
        """Validate `df` and commit it as one new feature version.

        Args:
            mode: "strict" refuses the whole batch if any row breaks a rule; "quarantine" writes
                the good rows and sends the bad ones, with the rules they broke, to quarantine.
            write_id: the identity of this write. A retry with the same identity and the same
                data returns the first version; with different data it raises
                WriteConflictError. Default: the batch's content digest (one extra pass).
            source: where the batch came from and the time range it covers.
            run: the experiment and run making the write.
        """
        applied = self.registry.current(table)
        ref = as_run_ref(run)
        path = self.paths.table(table, applied.definition.definition_version)
        with self.events.job(f"write.{table}", run=ref) as job:
            version = self._writer.write(
                applied.definition, applied.revision, df, mode=mode, write_id=write_id, source=source, run=ref
            )
            job.output(path, version.delta_version, {"fs_spark.version_id": version.version_id})
        return version

    # --- reading ------------------------------------------------------------------------------

    def versions(self, table: str) -> list[FeatureVersion]:
        """Every version of `table`, oldest first."""
        self.registry.current(table)
        return self.catalog.versions(table)

    def version(self, table: str, version: int | str | None = None, as_of: datetime | None = None) -> FeatureVersion | None:
        """Resolve a version number, version ID or point in time to one feature version.

        Numbers count within the current definition version; IDs are global. With neither,
        the latest version (None when nothing was written yet).
        """
        return self._resolve(table, version, as_of)[0]

    def _resolve(self, table: str, version, as_of) -> tuple[FeatureVersion | None, FeatureVersion | None]:
        """The version asked for, and the next version of the same table and definition version."""
        applied = self.registry.current(table)
        current = applied.definition.definition_version
        if version is not None and as_of is not None:
            raise ValueError("pass either version or as_of, not both")
        every = self.catalog.versions(table)
        if isinstance(version, str):
            if not is_id(version):
                raise VersionNotFoundError(table, version, "a version ID is a UUIDv7 string")
            found = [v for v in every if v.version_id == version]
            if not found:
                raise VersionNotFoundError(table, version, f"it has {len(every)} version(s)")
            chosen = found[0]
        else:
            candidates = [v for v in every if v.definition_version == current]
            if isinstance(version, int) and not isinstance(version, bool):
                found = [v for v in candidates if v.version_number == version]
                if not found:
                    numbers = f"versions 1..{len(candidates)}" if candidates else "no versions yet"
                    raise VersionNotFoundError(table, version, f"definition version {current} has {numbers}")
                chosen = found[0]
            elif version is not None:
                raise VersionNotFoundError(table, version, "a version is a number or a version ID")
            elif as_of is not None:
                moment = require_utc(as_of, "as_of")
                before = [v for v in candidates if v.committed_at <= moment]
                if not before:
                    first = candidates[0].committed_at.isoformat() if candidates else "never"
                    raise VersionNotFoundError(table, f"as of {moment.isoformat()}", f"its first commit was {first}")
                chosen = before[-1]
            else:
                chosen = candidates[-1] if candidates else None
        if chosen is None:
            return None, None
        later = [v for v in every if v.definition_version == chosen.definition_version
                 and v.version_number > chosen.version_number]
        return chosen, (later[0] if later else None)

    def read(
        self,
        table: str,
        *,
        version: int | str | None = None,
        as_of: datetime | None = None,
        features: list[str] | None = None,
        include_version_column: bool = False,
    ) -> DataFrame:
        """The table's rows exactly as of one version: every row committed up to and including it.

        Args:
            version: a version number (within the current definition version) or a version ID.
            as_of: an aware datetime; the latest version committed at or before it.
            features: the features to return (default: all); keys and event time always come.
        """
        resolved, following = self._resolve(table, version, as_of)
        if resolved is None:
            applied = self.registry.current(table)
        else:
            applied = self.registry.at_version(table, resolved.definition_version)
        delta_version = readable_delta_version(self.spark, applied.storage_path, resolved, following)
        return read_version(self.spark, applied.definition, resolved, delta_version, applied.storage_path,
                            features, include_version_column)

    # --- version status -----------------------------------------------------------------------

    def quarantine_version(self, table: str, version: int | str, reason: str) -> FeatureVersion:
        """Mark a feature version as suspect: training-set builds refuse to read it (or any later
        version, whose rows include it) until it is released."""
        return self._set_status(table, version, "quarantined", reason)

    def release_version(self, table: str, version: int | str, reason: str = "") -> FeatureVersion:
        """Lift a quarantine."""
        return self._set_status(table, version, "released", reason)

    def _set_status(self, table: str, version: int | str, status: str, reason: str) -> FeatureVersion:
        resolved = self.version(table, version)
        self.catalog.append(VERSION_STATUS, [{
            "event_id": new_id(), "version_id": resolved.version_id, "table_name": table, "status": status,
            "reason": reason, "user": self.user, "at": datetime.now(timezone.utc),
        }])
        return resolved

    # --- training sets ------------------------------------------------------------------------

    def create_training_set(
        self,
        df: DataFrame,
        feature_lookups: Sequence[FeatureLookup | str],
        *,
        label: str | Sequence[str] | None = None,
        exclude_columns: Sequence[str] = (),
        as_of: datetime | None = None,
        timezone: str | None = None,
        name: str | None = None,
        path: str | None = None,
        run: Run | RunRef | None = None,
        context: str = "training",
    ) -> TrainingSet:
        """Join each entity row to its features as of its time, store the result and its manifest.

        Args:
            df: the entity rows: keys, a time per lookup, labels, anything else. Every row comes
                back, in the same order, duplicates included.
            feature_lookups: `FeatureLookup`s or `"table:feature"` strings.
            label: label column(s), placed last.
            exclude_columns: entity columns to leave out of the result.
            as_of: see only feature rows committed at or before this time (an aware datetime),
                so a later backfill cannot leak into a past training set.
            timezone: the zone of zone-less entity times (TimestampNTZ or date columns), which
                are refused without it.
            name: a name to find the training set by.
            path: where to write the rows (default: under the store root).
            run: the run the training set is built for (see `start_run`).
            context: what the run uses it for, training or validation (as MLflow records it).

        Example:
            >>> ts = store.create_training_set(                           # doctest: +SKIP
            ...     entities,
            ...     [FeatureLookup(table_name="customer_activity", feature_names=["spend_7d"],
            ...                    lookup_key="customer_id", timestamp_lookup_key="ts")],
            ...     label="churned")
            >>> ts.load_df().show()                                       # doctest: +SKIP
        """
        return self._training.create(
            df, feature_lookups, label=label, exclude_columns=exclude_columns, as_of=as_of,
            timezone_name=timezone, name=name, path=path, run=as_run_ref(run), context=context,
        )

    def get_historical_features(self, entity_df: DataFrame, features: Sequence[str], **options) -> TrainingSet:
        """Feast's spelling of `create_training_set`: `features` are `"table:feature"` strings."""
        return self.create_training_set(entity_df, list(features), **options)

    def training_set(self, training_set_id: str) -> TrainingSet:
        """A stored training set, read from its Delta table."""
        return self._training.open(training_set_id)

    def load_training_set(self, training_set_id: str, *, verify: bool = True) -> TrainingSet:
        """Rebuild a training set from its manifest alone: the entity rows and every feature table
        read at the Delta versions the build read. With `verify` (one extra pass), the rebuilt
        rows' digest must equal the original's, or ReplayMismatchError is raised."""
        return self._training.rebuild(training_set_id, verify=verify)

    def training_sets(self) -> list[TrainingSetManifest]:
        """The manifest of every training set built in this store, oldest first."""
        return self._training.manifests()

    # --- experiments, runs, models and deployments -------------------------------------------

    def start_run(
        self,
        experiment: str,
        *,
        name: str | None = None,
        hypothesis: str | None = None,
        stage: str = "training",
        params: dict | None = None,
        tags: dict | None = None,
        mlflow_run_id: str | None = None,
    ) -> Run:
        """Start a run of `experiment` (created on first use). Use it as a context manager; what
        is done through it carries its IDs.

        Args:
            hypothesis: what the run sets out to show; recorded on the feature versions it writes.
            stage: training, validation or deployment.
            mlflow_run_id: the MLflow run to link (default: the active MLflow run, if any).

        Example:
            >>> with store.start_run(experiment="churn", params={"lr": 0.1}) as run:   # doctest: +SKIP
            ...     ts = run.create_training_set(entities, ["customer_activity:spend_7d"], label="churned")
            ...     run.log_metrics({"val_auc": 0.81})
        """
        return self.tracking.start_run(experiment, name=name, hypothesis=hypothesis, stage=stage, params=params,
                                       tags=tags, mlflow_run_id=mlflow_run_id)

    def register_model(
        self,
        name: str,
        *,
        training_sets: Sequence[TrainingSet | str],
        run: Run | RunRef | None = None,
        artifact_uri: str | None = None,
        description: str = "",
        mlflow_model_id: str | None = None,
    ) -> ModelVersion:
        """Register a new version of model `name`, trained on `training_sets` (objects or IDs)."""
        return self.models.register(name, training_sets=training_sets, run=as_run_ref(run), artifact_uri=artifact_uri,
                                    description=description, mlflow_model_id=mlflow_model_id)

    def deploy(self, model_version: str | tuple[str, int], environment: str, *, run: Run | RunRef | None = None) -> Deployment:
        """Record that a model version (ID, or (name, version)) is live in `environment`, with its
        active feature set and a snapshot of its lineage."""
        return self.models.deploy(model_version, environment, run=as_run_ref(run))

    # --- retention ----------------------------------------------------------------------------

    def vacuum(self, table: str, *, retention_hours: float | None = None, force: bool = False,
               reason: str = "") -> VacuumResult:
        """Delta VACUUM of a feature table (every definition version), refused with
        RetentionGuardError when it would delete files a recorded training set still reads.

        Args:
            retention_hours: Delta's retention period (default: the table's, 7 days).
            force: VACUUM even so; rebuilding those training sets then fails with
                TrainingSetInputExpiredError.
            reason: why, kept in the `maintenance_events` record of the removal.
        """
        paths = [r["storage_path"] for r in self.catalog.definition_rows(table)]
        if not paths:
            self.registry.current(table)  # raises TableNotFoundError
        storage = sorted(set(paths))
        result = vacuum(self.spark, table, storage, self._training.manifests(), retention_hours, force)
        self.catalog.append(MAINTENANCE_EVENTS, [{
            "event_id": new_id(), "action": "vacuum", "table_name": table, "storage_paths": storage, "forced": force,
            "deleted_files": result.deleted_files, "affected_training_sets": list(result.expired), "reason": reason,
            "user": self.user, "at": datetime.now(timezone.utc),
        }])
        return result
