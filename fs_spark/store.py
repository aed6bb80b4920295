"""`FeatureStore`: the object users hold. It ties one store root to one Spark session.

Example:
    >>> store = FeatureStore("./fs_store")                        # doctest: +SKIP
    >>> store.apply(customer_activity)                            # doctest: +SKIP
    >>> version = store.write("customer_activity", batch_df)      # doctest: +SKIP
    >>> store.read("customer_activity", version=version.version_id).show()  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import EXPORTS, MAINTENANCE_EVENTS, METRICS, STREAM_PROGRESS, STREAMS
from fs_spark.config import Settings, load_settings
from fs_spark.definitions.compatibility import affected_features
from fs_spark.definitions.inference import table_from_schema
from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.registry import PlanItem, Registry
from fs_spark.discovery import SearchHit, search
from fs_spark.errors import (
    ConfigError,
    ExportError,
    FeatureNotFoundError,
    FsSparkError,
    ModelNotFoundError,
    TrainingSetInputExpiredError,
    VersionExpiredError,
)
from fs_spark.governance.access import AccessControl, Request
from fs_spark.governance.deprecation import Deprecation, Deprecations
from fs_spark.governance.exports import Export, check_request, write_export
from fs_spark.ids import new_id
from fs_spark.ingest.backfill import Backfill, backfill
from fs_spark.ingest.stream import (
    DEFAULT_TRIGGER,
    FeatureStream,
    StreamIngestion,
    StreamTarget,
    default_checkpoint,
    describe_source,
)
from fs_spark.ingest.stream_status import StreamStatus, stream_statuses
from fs_spark.ingest.writer import FeatureWriter, Mode
from fs_spark.inputs import as_spark_frame
from fs_spark.integrations.mlflow import MlflowBridge
from fs_spark.lineage.lineage import Lineage
from fs_spark.lineage.openlineage import LineageEvents
from fs_spark.local.delta import latest_delta_version, version_dataset
from fs_spark.local.rows import TableRows, TrainingSetRows, table_rows
from fs_spark.locks import store_locks
from fs_spark.observability.metrics import StoreMetrics
from fs_spark.online.feature_service import AppliedService, FeatureService, FeatureServices
from fs_spark.online.reader import OnlineFeatures
from fs_spark.online.serving import Materialization, OnlineServing
from fs_spark.progress import step
from fs_spark.provenance import RunRef, SourceInfo, as_run_ref
from fs_spark.quality.checks import QualityChecks
from fs_spark.quality.recovery import Recall, recall
from fs_spark.replication.regions import Role
from fs_spark.replication.rejoin import RejoinResult
from fs_spark.replication.replicator import ReplicationResult, TableLag
from fs_spark.replication.service import StoreRegions
from fs_spark.scoring.scoring import Scoring
from fs_spark.session import LazySession
from fs_spark.storage.checkpoints import Checkpointer
from fs_spark.storage.delta_log import Commit, commit_metrics, latest_version
from fs_spark.storage.optimize import OptimizeResult, optimize
from fs_spark.storage.paths import StorePaths, absolute
from fs_spark.storage.reader import read_version, readable_delta_version
from fs_spark.storage.retention import VacuumResult, vacuum
from fs_spark.tracking.models import Models
from fs_spark.tracking.records import Deployment, ModelVersion
from fs_spark.tracking.runs import Run, Tracking
from fs_spark.training.builder import TrainingSets
from fs_spark.training.lookups import FeatureLookup, as_lookups
from fs_spark.training.manifest import TrainingSetManifest
from fs_spark.training.training_set import TrainingSet
from fs_spark.versions.resolver import VersionResolver
from fs_spark.versions.rollback import rollback
from fs_spark.versions.series import excluded, refuse_quarantined
from fs_spark.versions.status import quarantined, record_status

log = logging.getLogger("fs_spark")


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
        # Started on first use: questions about a local store's catalog need no Spark at all.
        self._session = LazySession(self.settings.spark, spark, self.settings.s3)
        self.paths = StorePaths(root or self.settings.store.root)
        self.user = user or self.settings.store.user or getpass.getuser()
        # The parts that change definitions, schedules or raw catalog rows are private: the
        # facade is their only door, and each also checks access where its action happens.
        locks = store_locks(self.paths, self.settings.s3, self.settings.store.lock_timeout_seconds)
        self._catalog = Catalog(self._session, self.paths, locks, self.settings.s3)
        self.metrics = StoreMetrics(
            self.settings.observability,
            lambda: self._session().sparkContext if self._session.started else None,
            lambda row: self._catalog.append(METRICS, [row]),
            self.user,
        )
        self._access = AccessControl(
            self.settings.governance,
            self.user,
            self._catalog,
            lambda name: self._registry.current(name).definition,
            self.paths.table_root,
        )
        self._registry = Registry(self._session, self.paths, self._catalog, self.user, self._access)
        self._regions = (
            StoreRegions(
                self.settings.store.regions_file,
                self.paths,
                self._catalog,
                self._access,
                self._session,
                self.settings.s3,
                self.settings.store.lock_timeout_seconds,
            )
            if self.settings.store.regions_file
            else None
        )
        self._writer = FeatureWriter(
            self._session,
            self.paths,
            self._catalog,
            self.user,
            self._access.sensitive_tags,
            self.settings.store.duplicate_batches,
        )
        self._versions = VersionResolver(
            self._catalog, lambda name: self._registry.current(name).definition.definition_version
        )
        self._deprecations = Deprecations(
            self._catalog, self._access, lambda name: self._registry.current(name).definition, self.user
        )
        self.mlflow = MlflowBridge(self.settings.mlflow)
        self.events = LineageEvents(self.settings.lineage, self.paths.root)
        self._training = TrainingSets(
            self._session,
            self.paths,
            self._catalog,
            self._registry,
            self._versions,
            self.mlflow,
            self.events,
            self.user,
            self.settings.training.partitions,
            self._access.sensitive_tags,
        )
        self.tracking = Tracking(self, self._catalog, self.mlflow)
        self._services = FeatureServices(self._catalog, self.get_table, self.user)
        self.models = Models(
            self._catalog, self._training, self._services, self.get_table, self.mlflow, self.events, self.user
        )
        self.lineage = Lineage(
            self._session, self._catalog, self.user, lambda: self.models.live_everywhere(), self.metrics
        )
        self._checkpoints = Checkpointer()
        self._online = OnlineServing(
            self._session,
            self.paths,
            self._catalog,
            self._registry,
            self._versions,
            self._access,
            self._deprecations,
            self.events,
            self.settings.online,
            self.user,
            lambda table: self._writer.lock(f"{table}.online"),
            self.metrics.online_reads.fetched,
        )
        self._streams = StreamIngestion(
            self._session,
            self._catalog,
            partial(self._measured_write, "stream"),
            lambda table, run: self._online.materialize(table, run),
            self.user,
            self.metrics.streams.report,
        )
        self._scoring = Scoring(
            self,
            self._catalog,
            self._training,
            self._versions,
            self.models,
            self._deprecations,
            self.mlflow,
            self.events,
            self.user,
        )
        self.quality = QualityChecks(
            self, self._catalog, self._registry, self._access, self._training, self.settings.quality
        )

    @property
    def spark(self) -> SparkSession:
        """The Spark session: the one given, else the active one, else a local Delta session,
        started when something first needs it."""
        return self._session()

    @property
    def catalog(self) -> Catalog:
        """The catalog's Delta tables, raw: every version's statistics and the audit log. Under
        an access policy only a principal who may administer every table opens it."""
        self._access.require_catalog()
        return self._catalog

    @property
    def root(self) -> str:
        return self.paths.root

    def init(self) -> FeatureStore:
        """Create the catalog tables (also done on first use)."""
        self._catalog.ensure()
        return self

    # --- definitions --------------------------------------------------------------------------

    def plan(self, *tables: FeatureTable) -> list[PlanItem]:
        """What `apply` would do, changing nothing: every change, and for breaking ones the model
        versions and live deployments that read the affected features."""
        items = self._registry.plan(list(tables))
        return [self._with_impact(item, table) for item, table in zip(items, tables, strict=True)]

    def apply(self, *definitions: FeatureTable | FeatureService) -> list[PlanItem | AppliedService]:
        """Create or update definitions; a breaking change needs a new definition_version, and
        is refused (BreakingChangeError, with the models and deployments it would break) otherwise.
        Feature services are applied after the tables, and checked against them."""
        tables = [d for d in definitions if isinstance(d, FeatureTable)]
        services = [d for d in definitions if isinstance(d, FeatureService)]
        self._check_writable("applying definitions")
        done: list[PlanItem | AppliedService] = []
        if tables:
            done += self._registry.apply(tables, impact=self._with_impact)
        if services:
            for service in services:
                # serving features is reading them: a service is defined only over readable ones
                self._access.require(*(Request("read", lk.table_name, lk.feature_names) for lk in service.lookups))
            done += self._services.apply(services)
        return done

    def _with_impact(self, item: PlanItem, table: FeatureTable) -> PlanItem:
        if not any(c.breaking for c in item.changes):
            return item
        features = set(affected_features(self._registry.current(table.name).definition, item.changes))
        sets = {
            m.training_set_id
            for m in self._training.manifests()
            if any(lk.table_name == table.name and features & {f.name for f in lk.features} for lk in m.lookups)
        }
        models = [v for v in self.models.versions() if sets & set(v.training_set_ids)]
        ids = {v.model_version_id for v in models}
        impact = [f"model {v.model_name} v{v.version} ({v.model_version_id})" for v in models]
        impact += [
            f"deployment {d.environment}: {d.model_name} v{d.model_version} (live)"
            for d in self.models.live_everywhere()
            if d.model_version_id in ids
        ]
        return replace(item, impact=impact)

    def create_table(
        self,
        name: str,
        primary_keys: str | Sequence[str],
        timestamp_keys: str | Sequence[str] | None = None,
        *,
        df: DataFrame | Any = None,
        schema: Any = None,
        description: str = "",
        tags: Sequence[str] = (),
        timeseries_columns: str | Sequence[str] | None = None,
    ) -> FeatureTable:
        """Databricks Feature Engineering's spelling: define a table from `df`'s schema (or
        `schema`, a StructType or DDL text), the primary keys its entity's keys and the
        timestamp key (`timeseries_columns` is the newer name) its event time, every other
        column a feature of its own type; then, with `df`, write it as version 1. Units,
        ranges, owners and rules are added later with `apply`."""
        times = timestamp_keys if timestamp_keys is not None else timeseries_columns
        times = [times] if isinstance(times, str) else list(times or ())
        if len(times) != 1:
            raise ValueError(
                f"create_table {name!r}: name one timestamp key (fs_spark feature tables are time series), not {times}"
            )
        if df is not None:
            df = as_spark_frame(self.spark, df, f"the rows of {name}")
        given = schema if schema is not None else (df.schema if df is not None else None)
        if given is None:
            raise ValueError(f"create_table {name!r}: pass df= or schema=")
        struct = given if isinstance(given, T.StructType) else T.StructType.fromDDL(given)
        if not isinstance(struct, T.StructType):
            raise ValueError(f"create_table {name!r}: schema {given!r} is not a list of columns")
        keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        table = table_from_schema(name, struct, keys, times[0], description, tags)
        self.apply(table)
        if df is not None:
            self.write(name, df)
        return self.get_table(name)

    def write_table(self, name: str, df: DataFrame | Any, mode: str = "merge") -> FeatureVersion:
        """Databricks Feature Engineering's spelling of `write`: `mode="merge"` (the only mode)
        adds the rows as a new version, and reads take the latest row per key and time, as a
        merge would. Versions are immutable: there is no overwrite (see `rollback`)."""
        if mode != "merge":
            raise ValueError(
                f"write_table {name!r}: mode {mode!r} is not supported; fs_spark versions are immutable, "
                "so writes merge (mode='merge'); to take rows back use rollback"
            )
        return self.write(name, df)

    def search(self, text: str, *, limit: int = 20) -> list[SearchHit]:
        """Features and tables whose name, description, tags, owner or unit match every word
        of `text`, best first, each with the model versions and live deployments using it.
        Only what the principal may read is listed (see `fs_spark.discovery`)."""
        tables = [self.get_table(name) for name in self.list_tables()]
        if self._access.enabled:  # a table shows only the features the principal may read
            readable = [(t, [f for f in t.features if f.name in self._access.readable(t)]) for t in tables]
            tables = [t.with_(features=features) for t, features in readable if features]
        models: dict[str, list[str]] = {}
        for version in self.models.versions():
            for feature in self.models.features_of(version.model_version_id):
                models.setdefault(feature, []).append(f"{version.model_name} v{version.version}")
        deployments: dict[str, list[str]] = {}
        for live in self.models.live_everywhere():
            for feature in live.features:
                deployments.setdefault(feature, []).append(
                    f"{live.environment}: {live.model_name} v{live.model_version}"
                )
        return search(tables, text, models, deployments, limit)

    def get_table(self, name: str) -> FeatureTable:
        return self._registry.current(name).definition

    def list_tables(self) -> list[str]:
        return self._registry.names()

    # --- writing ------------------------------------------------------------------------------

    def write(
        self,
        table: str,
        df: DataFrame | Any,
        *,
        mode: Mode = "strict",
        write_id: str | None = None,
        source: SourceInfo | None = None,
        run: Run | RunRef | None = None,
        cast: str = "none",
    ) -> FeatureVersion:
        """Validate `df` (a Spark DataFrame, or a pandas DataFrame or Arrow table) and commit it
        as one new feature version.

        Args:
            mode: "strict" refuses the whole batch if any row breaks a rule; "quarantine" writes
                the good rows and sends the bad ones, with the rules they broke, to quarantine.
            write_id: the identity of this write. A retry with the same identity and the same
                data returns the first version; with different data it raises
                WriteConflictError. Default: the batch's content digest (one extra pass).
            source: where the batch came from and the time range it covers.
            run: the experiment and run making the write.
            cast: "safe" also accepts columns of a narrower feature type than theirs (a long for
                an int, a double for a long or float) when every value converts exactly; a value
                that does not breaks rule cast[...]. Default "none": types must convert without loss.
        """
        return self._measured_write(
            "ingest", table, df, mode=mode, write_id=write_id, source=source, run=run, cast=cast
        )

    def _measured_write(self, operation: str, table: str, df: Any, **options: Any) -> FeatureVersion:
        commits: list[Commit | None] = []  # this call's own commit, if it made a version
        with self.metrics.measure(operation, table, as_run_ref(options.get("run"))) as measure:
            version = self._write(table, df, on_commit=commits.append, **options)
            if not commits:  # an earlier write's version, returned again
                measure.retried()
            elif (commit := commits[0]) is not None:  # a write of no rows made no Delta commit
                measure.add(rows=version.row_count, bytes=commit.metrics.get("numOutputBytes", 0))
                measure.tags["quarantined_rows"] = str(version.quarantined_row_count)
                # A stream's next micro-batch does not wait for the checkpoint; a batch write does.
                wait = operation != "stream"
                self._checkpoints.after_commit(self.spark, version.storage_path, commit.version, wait=wait)
        if self.settings.quality.anomalies.after_write and commits:
            try:
                self.quality.check_anomalies(table, version=version.version_id)
            except FsSparkError as error:  # the write is committed; the check's failure is its own
                log.warning("fs_spark: the anomaly check after writing %s failed: %s", table, error)
        return version

    def _write(self, table, df, *, mode="strict", write_id=None, source=None, run=None, cast="none", on_commit=None):
        applied = self._registry.current(table)
        self._access.require(Request("write", table))
        self._check_writable(f"a write of {table}", table)
        df = as_spark_frame(self.spark, df, f"the batch for {table}")
        ref = as_run_ref(run)
        path = self.paths.table(table, applied.definition.definition_version)
        with self.events.job(f"write.{table}", run=ref) as job:
            version = self._writer.write(
                applied.definition,
                applied.revision,
                df,
                mode=mode,
                write_id=write_id,
                source=source,
                run=ref,
                cast=cast,
                on_commit=on_commit,
            )
            job.output(path, version.delta_version, {"fs_spark.version_id": version.version_id})
        return version

    def write_stream(
        self,
        table: str,
        df: DataFrame,
        *,
        name: str | None = None,
        mode: Mode = "strict",
        checkpoint: str | None = None,
        trigger: str = DEFAULT_TRIGGER,
        available_now: bool = False,
        online: bool = False,
        run: Run | RunRef | None = None,
    ) -> FeatureStream:
        """Start a Structured Streaming query that writes `df` (a streaming DataFrame with the
        table's columns) into `table`, each micro-batch one validated feature version, exactly
        once across crashes: restarted on the same checkpoint, a stream never commits a
        micro-batch twice. See `fs_spark.ingest.stream`.

        Args:
            name: the stream's name (its Spark query name); default: the table's name.
            mode: "strict" stops the query at a micro-batch that breaks a rule, committing none
                of it; "quarantine" commits the good rows and quarantines the bad.
            checkpoint: the query's checkpoint; default `<root>/_streams/<name>/checkpoint`.
            trigger: the processing-time interval between micro-batches, e.g. "10 seconds".
            available_now: process what the source holds now, in micro-batches, then stop.
            online: after each micro-batch, bring the online store up to it (`materialize`).

        Example:
            >>> events = spark.readStream.format("kafka").option("subscribe", "activity")...  # doctest: +SKIP
            >>> stream = store.write_stream("customer_activity", parse_json(events, table))  # doctest: +SKIP
        """
        self._registry.current(table)
        self._access.require(Request("write", table))
        self._check_writable(f"a stream into {table}", table)
        if online:
            self._access.require(Request("admin", table))
        stream_name = name or table
        target = StreamTarget(
            name=stream_name,
            table=table,
            mode=mode,
            checkpoint=checkpoint or default_checkpoint(self.paths.root, stream_name),
            online=online,
            run=as_run_ref(run),
            source=describe_source(df),
        )
        return self._streams.start(target, df, trigger=trigger, available_now=available_now)

    def streams(self) -> list[StreamStatus]:
        """Every stream into this store, with its figures: micro-batches committed, rows and rows
        quarantined, restarts, batches run again after one, and from its latest progress
        report the rates and how far (in offsets) it is behind its source."""
        self._streams.flush()
        statuses = stream_statuses(
            self._catalog.rows(STREAMS.name), self._catalog.rows(STREAM_PROGRESS.name), self._catalog.versions()
        )
        # Figures of a table are shown to a principal who may read some feature of it.
        return [s for s in statuses if self._access.readable(self._registry.current(s.table).definition)]

    def backfill(
        self,
        table: str,
        df: DataFrame | Any,
        start: datetime,
        end: datetime,
        *,
        chunk: timedelta = timedelta(days=1),
        name: str | None = None,
        mode: Mode = "strict",
        run: Run | RunRef | None = None,
    ) -> Backfill:
        """Write history for [start, end) as one validated version per `chunk` of event time.
        Run again with the same arguments after a crash, it commits only the chunks still
        missing; a stream writing the same table goes on meanwhile. Rows outside the range are
        refused (BackfillRangeError) before anything is written. Cache `df` if it is costly to
        read: each chunk reads it once.

        Example:
            >>> store.backfill("customer_activity", history, datetime(2023, 1, 1, tzinfo=UTC),
            ...                datetime(2024, 1, 1, tzinfo=UTC), chunk=timedelta(days=30))  # doctest: +SKIP
        """
        definition = self._registry.current(table).definition
        self._access.require(Request("write", table))
        self._check_writable(f"a backfill of {table}", table)
        frame = as_spark_frame(self.spark, df, f"the backfill of {table}")
        return backfill(
            definition,
            frame,
            start,
            end,
            chunk,
            partial(self._measured_write, "ingest", table, mode=mode, run=run),
            name,
        )

    # --- reading ------------------------------------------------------------------------------

    def versions(self, table: str) -> list[FeatureVersion]:
        """Every version of `table`, oldest first; the statistics of features the principal may
        not read are withheld."""
        self._registry.current(table)
        definitions: dict[int, FeatureTable] = {}
        redacted = []
        for version in self._catalog.versions(table):
            number = version.definition_version
            if number not in definitions:
                definitions[number] = self._registry.at_version(table, number).definition
            redacted.append(self._access.redacted(version, definitions[number]))
        return redacted

    def _redacted(self, version: FeatureVersion) -> FeatureVersion:
        definition = self._registry.at_version(version.table_name, version.definition_version).definition
        return self._access.redacted(version, definition)

    def version(
        self, table: str, version: int | str | None = None, as_of: datetime | None = None
    ) -> FeatureVersion | None:
        """Resolve a version number, version ID or point in time to one feature version.

        Numbers count within the current definition version; IDs are global. With neither,
        the latest version (None when nothing was written yet).
        """
        found = self._versions.resolve(table, version, as_of)[0]
        return None if found is None else self._redacted(found)

    def read(
        self,
        table: str,
        *,
        version: int | str | None = None,
        as_of: datetime | None = None,
        features: list[str] | None = None,
        include_version_column: bool = False,
        allow_quarantined: bool = False,
    ) -> DataFrame:
        """The table's rows exactly as of one version: every row committed up to and including it
        (less the writes a rollback took out).

        Args:
            version: a version number (within the current definition version) or a version ID.
            as_of: an aware datetime; the latest version committed at or before it.
            features: the features to return (default: all); keys and event time always come.
            allow_quarantined: read even if the version holds rows of a quarantined version
                (otherwise VersionQuarantinedError).
        """
        return self._read(table, version, as_of, features, include_version_column, allow_quarantined)[0]

    def _read(
        self,
        table: str,
        version,
        as_of,
        features,
        include_version_column: bool = False,
        allow_quarantined: bool = False,
        copy_to: str | None = None,
    ):
        """The rows, the version they are of, and the Delta version and path they were read at."""
        # Spark starts only once the read is resolved and allowed: a refusal answers at once.
        applied, resolved, delta_version, dropped = self._resolve_read(
            table, version, as_of, features, allow_quarantined, copy_to, lambda path: latest_version(self.spark, path)
        )
        frame = read_version(
            self.spark,
            applied.definition,
            resolved,
            delta_version,
            applied.storage_path,
            features,
            include_version_column,
            dropped,
        )
        return frame, resolved, delta_version, applied.storage_path

    def _resolve_read(self, table, version, as_of, features, allow_quarantined, copy_to, latest):
        """What a read of `table` reads, checked allowed: the definition applied, the feature
        version, the Delta version (`latest(path)` gives a table's newest) and the version
        numbers a rollback took out."""
        resolved, following = self._versions.resolve(table, version, as_of)
        if resolved is None:
            applied = self._registry.current(table)
        else:
            applied = self._registry.at_version(table, resolved.definition_version)
        unknown = [name for name in features or () if name not in applied.definition.feature_names]
        if unknown:
            raise FeatureNotFoundError(table, unknown, applied.definition.feature_names)
        self._access.require(Request("read", table, features, definition=applied.definition, copy_to=copy_to))
        every = self._catalog.versions(table)
        if resolved is not None and not allow_quarantined:
            refuse_quarantined(every, resolved, quarantined(self._catalog), "the read")
        delta_version = readable_delta_version(applied.storage_path, resolved, following, latest)
        return applied, resolved, delta_version, excluded(every, resolved)

    # --- reads without Spark ------------------------------------------------------------------

    def read_arrow(
        self,
        table: str,
        *,
        version: int | str | None = None,
        as_of: datetime | None = None,
        features: list[str] | None = None,
        include_version_column: bool = False,
        allow_quarantined: bool = False,
    ) -> TableRows:
        """`read` without Spark or a JVM: the same rows, through delta-rs, as Arrow, pandas,
        polars or batches (`TableRows`). Access policies apply as to `read`."""
        applied, resolved, delta_version, dropped = self._resolve_read(
            table,
            version,
            as_of,
            features,
            allow_quarantined,
            None,
            partial(latest_delta_version, s3=self.settings.s3),
        )
        label = resolved.version_id if resolved else "0 (empty)"
        dataset = version_dataset(
            applied.storage_path,
            delta_version,
            lambda detail: VersionExpiredError(table, label, detail),
            self.settings.s3,
        )
        return table_rows(
            applied.definition, resolved, delta_version, dataset, features, include_version_column, dropped
        )

    def open_training_set(self, training_set_id: str, *, verify: bool = True) -> TrainingSetRows:
        """A stored training set without Spark or a JVM: the exact Delta version its manifest
        records, read through delta-rs and (with `verify`) checked against its digest. Access
        policies apply as to `training_set`."""
        self._require_training_set(training_set_id)
        manifest = self._training.manifest(training_set_id)
        dataset = version_dataset(
            manifest.output_path,
            manifest.output_delta_version,
            lambda detail: TrainingSetInputExpiredError(
                training_set_id, "training set data", manifest.output_delta_version, detail
            ),
            self.settings.s3,
        )
        return TrainingSetRows(manifest, dataset, verify)

    # --- online -------------------------------------------------------------------------------

    def materialize(self, table: str, *, run: Run | RunRef | None = None) -> Materialization:
        """Bring the online store (`online.kind`) up to the latest servable version of `table`:
        the latest row of every key, written from the Spark executors. The first run writes
        every key; later runs read only the writes since the last one (or, after a quarantine
        or rollback, the keys those touched). Recorded in the catalog and the lineage."""
        ref = as_run_ref(run)
        with self.metrics.measure("materialize", table, ref) as measure:
            done = self._online.materialize(table, ref)
            measure.add(rows=done.keys_written + done.keys_removed, bytes=done.bytes_sent)
        return done

    def get_online_features(
        self, features: Sequence[FeatureLookup | str], entity_rows: Sequence[dict[str, Any]]
    ) -> OnlineFeatures:
        """Feast's spelling: each entity row's latest materialized values, as columns (the entity
        rows' own columns, then each feature's output), a dict that also answers Feast's
        `.to_dict()` and `.to_df()`. See `fs_spark.online.reader` for missing
        keys, nulls, defaults, expired rows and withheld versions."""
        started = time.perf_counter()
        try:
            found = self._online.reader().get(features, entity_rows)
        except Exception as error:
            self.metrics.observe_online_read(time.perf_counter() - started, 0, error)
            raise
        self.metrics.observe_online_read(time.perf_counter() - started, len(entity_rows))
        return found

    def feature_service(self, name: str, version: int | None = None) -> FeatureService:
        """An applied feature service (its latest version by default)."""
        return self._services.get(name, version).service

    def online_vector(self, deployment: str | Deployment, entity_rows: Sequence[dict[str, Any]]) -> OnlineFeatures:
        """The online features of the deployment live in an environment (or the one given):
        through the feature service it names, at the version it recorded, else exactly the
        `table:feature`s it records."""
        if isinstance(deployment, str):
            live = self.models.live(deployment)
            if live is None:
                raise ModelNotFoundError(deployment, "nothing is live in that environment")
            deployment = live
        if deployment.feature_service:
            service = self._services.get(deployment.feature_service, deployment.feature_service_version).service
            return self.get_online_features(list(service.lookups), entity_rows)
        return self.get_online_features(list(deployment.features), entity_rows)

    # --- exports ------------------------------------------------------------------------------

    def export(
        self,
        table: str,
        path: str,
        *,
        version: int | str | None = None,
        as_of: datetime | None = None,
        features: list[str] | None = None,
        format: str = "parquet",
        mode: str = "error",
        run: Run | RunRef | None = None,
    ) -> Export:
        """Copy a table's rows as of one version (default: the latest) out of the store.

        The policy must allow reading the features and copying the table's data to the region
        of `path`; the export is recorded in the `exports` catalog table and the lineage.

        Args:
            format: parquet, delta, csv or json.
            mode: "error" (an existing path is refused) or "overwrite".

        Example:
            >>> store.export("customer_activity", "/shared/eu/activity", version=3)   # doctest: +SKIP
        """
        what = f"feature table {table!r}"
        check_request(what, path, format, mode)
        region = self._access.region_of(path)
        frame, resolved, delta_version, storage = self._read(table, version, as_of, features, copy_to=region)
        if resolved is None:
            raise ExportError(what, path, "the table has no versions yet")
        source = {
            "source_kind": "feature_version",
            "source_id": resolved.version_id,
            "table_name": table,
            "delta_version": delta_version,
        }
        return self._export(what, frame, source, storage, path, region, format, mode, as_run_ref(run))

    def export_training_set(
        self,
        training_set_id: str,
        path: str,
        *,
        format: str = "parquet",
        mode: str = "error",
        run: Run | RunRef | None = None,
    ) -> Export:
        """Copy a stored training set's rows out of the store, under the same rules as `export`."""
        what = f"training set {training_set_id}"
        check_request(what, path, format, mode)
        region = self._access.region_of(path)
        self._require_training_set(training_set_id, copy_to=region)
        stored = self._training.open(training_set_id)
        manifest = stored.manifest
        source = {
            "source_kind": "training_set",
            "source_id": training_set_id,
            "table_name": None,
            "delta_version": manifest.output_delta_version,
        }
        return self._export(
            what, stored.load_df(), source, manifest.output_path, path, region, format, mode, as_run_ref(run)
        )

    def _export(
        self,
        what: str,
        frame: DataFrame,
        source: dict,
        read_path: str,
        path: str,
        region: str | None,
        format: str,
        mode: str,
        run: RunRef | None,
    ) -> Export:
        path = absolute(path)
        with self.events.job(
            f"export.{source['table_name'] or 'training_set'}", run=run, inputs=[(read_path, source["delta_version"])]
        ) as job:
            rows = write_export(what, frame, path, format, mode)
            job.output(path, None, {"fs_spark.source": f"{source['source_kind']}:{source['source_id']}"})
        made = Export(
            new_id(),
            f"{source['source_kind']}:{source['source_id']}",
            path,
            format,
            region,
            rows,
            datetime.now(UTC),
        )
        self._catalog.append(
            EXPORTS,
            [
                {
                    **source,
                    "export_id": made.export_id,
                    "features": list(frame.columns),
                    "path": path,
                    "format": format,
                    "region": made.region,
                    "row_count": rows,
                    "run_id": run.run_id if run else None,
                    "user": self.user,
                    "at": made.at,
                }
            ],
        )
        return made

    # --- version status -----------------------------------------------------------------------

    def quarantine_version(self, table: str, version: int | str, reason: str) -> FeatureVersion:
        """Mark a feature version as suspect: training-set builds refuse to read it (or any later
        version, whose rows include it) until it is released."""
        return self._set_status(table, version, "quarantined", reason)

    def release_version(self, table: str, version: int | str, reason: str = "") -> FeatureVersion:
        """Lift a quarantine."""
        return self._set_status(table, version, "released", reason)

    def recall(self, table: str, version: int | str) -> Recall:
        """Everything that used a version's rows: training sets, model versions, deployments (the
        live ones marked), found downstream in the lineage graph."""
        resolved = self._versions.exact(table, version)
        return recall(self.lineage.graph(), resolved, self.models.deployments(), self.models.live_everywhere())

    def rollback(self, table: str, to_version: int | str, *, reason: str) -> FeatureVersion:
        """Make a known-good version's rows current again, as a new version that writes nothing:
        builds and reads that follow the latest version read exactly the rows `to_version` held,
        and later writes add to those. No data is deleted; the versions rolled over stay readable
        by number or ID."""
        self._access.require(Request("admin", table))
        self._check_writable(f"a rollback of {table}", table)
        self._online.check_reachable(table, f"the rollback of {table} to {to_version}")
        record = rollback(
            self._catalog,
            self._versions,
            self._registry.current(table),
            self._writer.lock(table),
            self.user,
            to_version,
            reason,
        )
        self._online.sync(table, f"the rollback of {table} to #{record.restores_version}")
        return record

    def deprecate(
        self,
        table: str,
        feature: str | None = None,
        *,
        announce: datetime,
        end: datetime,
        replacement: str | None = None,
        reason: str,
        withdrawn: bool = False,
    ) -> Deprecation:
        """Schedule the deprecation of a feature (or, without `feature`, of the whole table):
        builds warn from `announce` and refuse from `end`. A later schedule of the same feature
        replaces it; `withdrawn=True` withdraws it."""
        self._online.check_reachable(table, f"the deprecation of {table}" + (f".{feature}" if feature else ""))
        made = self._deprecations.schedule(
            table, feature, announce=announce, end=end, replacement=replacement, reason=reason, withdrawn=withdrawn
        )
        self._online.sync(table, f"the deprecation of {made.subject}")
        return made

    def deprecations(self) -> list[Deprecation]:
        """The deprecation schedules in force."""
        return self._deprecations.in_force()

    def _held_by(self, training_set_ids: list[str]) -> tuple[list[str], list[str]]:
        """Model versions trained on these training sets, and the deployments of those."""
        models = [m for m in self.models.versions() if set(m.training_set_ids) & set(training_set_ids)]
        ids = {m.model_version_id for m in models}
        deployments = [
            f"{d.environment}:{d.deployment_id}" for d in self.models.deployments() if d.model_version_id in ids
        ]
        return [f"{m.model_name} v{m.version}" for m in models], deployments

    def _set_status(self, table: str, version: int | str, status: str, reason: str) -> FeatureVersion:
        self._access.require(Request("admin", table))
        self._check_writable(f"a {status} of {table}", table)
        resolved = self._versions.exact(table, version)
        what = f"the {'release' if status == 'released' else 'quarantine'} of {table} #{resolved.version_number}"
        self._online.check_reachable(table, what)
        record_status(self._catalog, resolved, status, reason, self.user)
        self._online.sync(table, what)
        return resolved

    # --- training sets ------------------------------------------------------------------------

    def create_training_set(
        self,
        df: DataFrame | Any,
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
        allow_quarantined: bool = False,
        accept_deprecated: bool = False,
    ) -> TrainingSet:
        """Join each entity row to its features as of its time, store the result and its manifest.

        Args:
            df: the entity rows: keys, a time per lookup, labels, anything else; a Spark or
                pandas DataFrame or an Arrow table. Every row comes back, in the same order,
                duplicates included.
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
            allow_quarantined: read quarantined versions anyway (refused by default).
            accept_deprecated: build with features whose deprecation has ended (refused by
                default; announced ones only warn).

        Example:
            >>> ts = store.create_training_set(                           # doctest: +SKIP
            ...     entities,
            ...     [FeatureLookup(table_name="customer_activity", feature_names=["spend_7d"],
            ...                    lookup_key="customer_id", timestamp_lookup_key="ts")],
            ...     label="churned")
            >>> ts.load_df().show()                                       # doctest: +SKIP
        """
        with self.metrics.measure("training_set", None, as_run_ref(run)) as measure:
            df = as_spark_frame(self.spark, df, "the entity rows")
            lookups = as_lookups(feature_lookups)
            copy_to = self._access.region_of(path) if path is not None else None
            self._access.require(
                *(Request("read", lk.table_name, lk.feature_names or None, copy_to=copy_to) for lk in lookups),
                *(Request("read", name) for name in self._access.tables_read_by(df)),
            )
            self._deprecations.check_build(lookups, accept_deprecated)
            built = self._training.create(
                df,
                lookups,
                label=label,
                exclude_columns=exclude_columns,
                as_of=as_of,
                timezone_name=timezone,
                name=name,
                path=path,
                run=as_run_ref(run),
                context=context,
                allow_quarantined=allow_quarantined,
            )
            written = commit_metrics(self.spark, built.manifest.output_path, built.manifest.output_delta_version)
            measure.add(rows=built.manifest.row_count, bytes=written.get("numOutputBytes", 0))
            measure.tags["training_set_id"] = built.id
        return built

    def get_historical_features(self, entity_df: DataFrame | Any, features: Sequence[str], **options) -> TrainingSet:
        """Feast's spelling of `create_training_set`: `features` are `"table:feature"` strings."""
        return self.create_training_set(entity_df, list(features), **options)

    def training_set(self, training_set_id: str) -> TrainingSet:
        """A stored training set, read from its Delta table."""
        self._require_training_set(training_set_id)
        return self._training.open(training_set_id)

    def _require_training_set(self, training_set_id: str, copy_to: str | None = None) -> None:
        """A training set's rows hold feature values: opening it is reading them."""
        if self._access.enabled:
            self._access.require(
                *(
                    Request(
                        "read",
                        lk.table_name,
                        [f.name for f in lk.features],
                        definition=self._registry.at_version(lk.table_name, lk.definition_version).definition,
                        copy_to=copy_to,
                    )
                    for lk in self._training.manifest(training_set_id).lookups
                )
            )

    def load_training_set(self, training_set_id: str, *, verify: bool = True) -> TrainingSet:
        """Rebuild a training set from its manifest alone: the entity rows and every feature table
        read at the Delta versions the build read. With `verify` (one extra pass), the rebuilt
        rows' digest must equal the original's, or ReplayMismatchError is raised."""
        self._require_training_set(training_set_id)
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
        accept_deprecated: bool = False,
    ) -> Run:
        """Start a run of `experiment` (created on first use). Use it as a context manager; what
        is done through it carries its IDs.

        Args:
            hypothesis: what the run sets out to show; recorded on the feature versions it writes.
            stage: training, validation or deployment.
            mlflow_run_id: the MLflow run to link (default: the active MLflow run, if any).
            accept_deprecated: the run's training-set builds may read retired features.

        Example:
            >>> with store.start_run(experiment="churn", params={"lr": 0.1}) as run:   # doctest: +SKIP
            ...     ts = run.create_training_set(entities, ["customer_activity:spend_7d"], label="churned")
            ...     run.log_metrics({"val_auc": 0.81})
        """
        return self.tracking.start_run(
            experiment,
            name=name,
            hypothesis=hypothesis,
            stage=stage,
            params=params,
            tags=tags,
            mlflow_run_id=mlflow_run_id,
            accept_deprecated=accept_deprecated,
        )

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
        return self.models.register(
            name,
            training_sets=training_sets,
            run=as_run_ref(run),
            artifact_uri=artifact_uri,
            description=description,
            mlflow_model_id=mlflow_model_id,
        )

    def log_model(
        self,
        model: Any,
        flavor: Any,
        *,
        training_set: TrainingSet | str,
        registered_model_name: str,
        run: Run | RunRef | None = None,
        name: str = "model",
        **flavor_options: Any,
    ) -> ModelVersion:
        """Log `model` with an MLflow flavor (`mlflow.sklearn`, ...) carrying its feature spec
        (the training set, the feature versions it read, the lookups of its input columns), and
        register it in MLflow and here, linked. Databricks Feature Engineering's spelling;
        `flavor_options` go to the flavor's `log_model` (a signature is inferred from the
        training set when none is given)."""
        return self._scoring.log_model(
            model,
            flavor,
            training_set=training_set,
            registered_model_name=registered_model_name,
            run=as_run_ref(run),
            name=name,
            **flavor_options,
        )

    def score_batch(
        self,
        model: str | tuple[str, int],
        df: DataFrame | Any,
        *,
        result_type: str | None = None,
        prediction_column: str = "prediction",
        path: str | None = None,
        on_stale: str = "error",
        run: Run | RunRef | None = None,
    ) -> DataFrame:
        """Score rows that hold only keys (and, for point-in-time scoring, the lookups' time
        column): the model's features are looked up as its training set's were, features the
        rows have override lookups, and the model runs on the executors
        (`mlflow.pyfunc.spark_udf`). `model` is a model version ID, (name, version) or an
        MLflow model URI. `result_type` is the prediction's Spark type (default: the model
        signature's output type, else double). Returns the rows with their features and
        `prediction`; with `path`, also writes them there as a Delta table. See
        `fs_spark.scoring.scoring`."""
        return self._scoring.score_batch(
            model,
            as_spark_frame(self.spark, df, "the rows to score"),
            result_type=result_type,
            prediction_column=prediction_column,
            path=path,
            on_stale=on_stale,
            run=as_run_ref(run),
        )

    def deploy(
        self,
        model_version: str | tuple[str, int],
        environment: str,
        *,
        feature_service: str | None = None,
        run: Run | RunRef | None = None,
    ) -> Deployment:
        """Record that a model version (ID, or (name, version)) is live in `environment`, with its
        active feature set and a snapshot of its lineage. A `feature_service` (its latest
        version) must serve exactly the features the model was trained on; `online_vector`
        then serves the deployment through it."""
        return self.models.deploy(model_version, environment, feature_service=feature_service, run=as_run_ref(run))

    # --- retention ----------------------------------------------------------------------------

    def vacuum(
        self,
        table: str,
        *,
        retention_hours: float | None = None,
        force: bool = False,
        keep_held: bool = False,
        reason: str = "",
    ) -> VacuumResult:
        """Delta VACUUM of a feature table (every definition version), refused with
        RetentionGuardError when it would delete files a recorded training set still reads.

        Args:
            retention_hours: Delta's retention period (default: the table's, 7 days).
            force: VACUUM even so; rebuilding those training sets then fails with
                TrainingSetInputExpiredError.
            keep_held: delete everything else and keep those files; the result names what
                holds them (the scheduled pass does this).
            reason: why, kept in the `maintenance_events` record of the removal.
        """
        paths = [r["storage_path"] for r in self._catalog.definition_rows(table)]
        if not paths:
            self._registry.current(table)  # raises TableNotFoundError
        self._access.require(Request("admin", table))
        storage = sorted(set(paths))
        result = vacuum(
            self.spark, table, storage, self._training.manifests(), retention_hours, force, self._held_by, keep_held
        )
        self._catalog.append(
            MAINTENANCE_EVENTS,
            [
                {
                    "event_id": new_id(),
                    "action": "vacuum",
                    "table_name": table,
                    "storage_paths": storage,
                    "forced": force,
                    "deleted_files": result.deleted_files,
                    "affected_training_sets": list(result.expired),
                    "reason": reason,
                    "user": self.user,
                    "at": datetime.now(UTC),
                }
            ],
        )
        return result

    def optimize(self, table: str, *, reason: str = "") -> list[OptimizeResult]:
        """Lay a feature table's files out by key and event time, off the write path: Delta's
        OPTIMIZE, Z-ordered per time partition on the partitioned layout, liquid clustering on
        an unpartitioned table, each only where files were added since its last run. Its commit
        changes no data (`dataChange=false`): it is no feature version, and every version,
        `as_of` and stored training set reads the same rows after it. One result per Delta
        table of the table (one per definition version). Needs `admin`; refused in a replica.
        See `fs_spark.storage.optimize`."""
        definitions = {r["storage_path"]: r["definition_version"] for r in self._catalog.definition_rows(table)}
        if not definitions:
            self._registry.current(table)  # raises TableNotFoundError
        self._check_writable(f"an optimize of {table}", table)
        self._access.require(Request("admin", table))
        sizes = self.settings.optimize
        results = []
        with self.metrics.measure("optimize", table) as measure:
            for path, definition_version in sorted(definitions.items(), key=lambda item: item[1]):
                if latest_version(self.spark, path) is None:
                    continue  # applied, never written
                definition = self._registry.at_version(table, definition_version).definition
                results.append(
                    optimize(
                        self.spark,
                        definition,
                        path,
                        file_bytes=sizes.target_file_mb * 2**20,
                        cube_bytes=sizes.cube_mb * 2**20,
                    )
                )
            measure.add(bytes=sum(r.bytes_rewritten for r in results))
        done = [r for r in results if r.delta_version is not None]
        if done:
            self._catalog.append(
                MAINTENANCE_EVENTS,
                [
                    {
                        "event_id": new_id(),
                        "action": "optimize",
                        "table_name": table,
                        "storage_paths": [r.storage_path for r in done],
                        "forced": False,
                        "deleted_files": sum(r.files_removed for r in done),
                        "affected_training_sets": [],
                        "reason": reason,
                        "user": self.user,
                        "at": datetime.now(UTC),
                    }
                ],
            )
        return results

    def run_retention(
        self, tables: Sequence[str] | None = None, *, reason: str = "scheduled retention"
    ) -> list[VacuumResult]:
        """The scheduled retention pass: VACUUM every table (or `tables`) with its retention from
        settings (`retention.hours`, `retention.tables`), keeping the files recorded training
        sets need and naming what holds them. Run it from cron or a scheduler:
        `fs-spark vacuum --all` or `spark-submit jobs/retention.py`."""
        settings = self.settings.retention
        names = list(tables or self.list_tables())
        results = []
        for done, name in enumerate(names):
            step(f"vacuum of {name}", done, len(names))
            results.append(self.vacuum(name, retention_hours=settings.hours_for(name), keep_held=True, reason=reason))
        return results

    # --- regions --------------------------------------------------------------------------------

    def _check_writable(self, what: str, table: str | None = None) -> None:
        if self._regions is not None:
            self._regions.check_writable(what, table)

    def replicate(self, to: str | Sequence[str] | None = None) -> list[ReplicationResult]:
        """Copy this store, in its home region, to the other regions of `store.regions_file`
        (or to `to`): feature tables, training sets and the catalog, data before the catalog
        rows that name it, each table in commit order. Tables the residency policy keeps in
        another region are left behind, and each decision is audited.

        Example: ``store.replicate(to="eu")``, or ``fs-spark replicate --to eu`` from cron.
        """
        with self.metrics.measure("replicate") as measure:
            self._access.require_catalog()  # it copies every table and the whole catalog
            results = self._require_regions().replicate(to if to is None or isinstance(to, str) else list(to))
            for result in results:
                measure.add(rows=result.catalog_rows, bytes=sum(copy.bytes for copy in result.tables))
            measure.tags["regions"] = ",".join(result.region for result in results)
        return results

    def replication_status(self) -> dict[str, list[TableLag]]:
        """Each other region's lag behind this one, table by table, in versions and seconds."""
        return self._require_regions().status()

    def promote(self, region: str, *, force: bool = False) -> Role:
        """Make `region` the home region: the old home becomes a replica first (with `force`,
        even when it cannot be reached; stop its writers first), so two regions never write."""
        self._access.require_catalog()
        return self._require_regions().roles.promote(region, force=force)

    def rejoin(self) -> RejoinResult:
        """Make this store's region a replica of the current home after a forced promotion left
        it behind (its writes are refused until then): what it wrote alone is moved under
        `_diverged/`, then the home's next `replicate` brings it level."""
        self._access.require_catalog()  # it moves data and catalog rows aside
        return self._require_regions().rejoin()

    def _require_regions(self) -> StoreRegions:
        if self._regions is None:
            raise ConfigError("settings", "store.regions_file is not set: there are no regions to replicate to")
        return self._regions
