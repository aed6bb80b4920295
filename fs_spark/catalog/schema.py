"""The catalog's tables and columns: the documented, queryable record of the store.

Each catalog table is an append-only Delta table at `<root>/_catalog/<name>`: a change is a new
row, so the table's history is its audit trail. Query them with plain Spark SQL, for example
``SELECT * FROM delta.`<root>/_catalog/feature_versions` ``, or `FeatureStore.catalog.table(name)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import types as T


@dataclass(frozen=True)
class CatalogTable:
    name: str
    doc: str
    columns: tuple[tuple[str, T.DataType, str], ...]

    @property
    def schema(self) -> T.StructType:
        return T.StructType([T.StructField(n, t, True, {"comment": d}) for n, t, d in self.columns])


S, L, INT, TS, B = T.StringType(), T.LongType(), T.IntegerType(), T.TimestampType(), T.BooleanType()
D = T.DoubleType()
ARR = T.ArrayType(T.StringType())

FEATURE_TABLES = CatalogTable(
    "feature_tables",
    "One row per applied definition of a feature table (create, compatible update, or new version).",
    (
        ("event_id", S, "Global ID of this definition event (UUIDv7)"),
        ("table_name", S, "Feature table name"),
        ("definition_version", INT, "Major definition version; a breaking change starts a new one"),
        ("revision", INT, "Compatible revision within the definition version, from 1"),
        ("change_kind", S, "create, update or new_version"),
        ("changes", ARR, "What changed against the previous revision"),
        ("definition_json", S, "The full definition as canonical JSON"),
        ("definition_hash", S, "sha256 of definition_json"),
        ("storage_path", S, "Delta table that holds this definition version's data"),
        ("applied_by", S, "Principal who applied it"),
        ("applied_at", TS, "When it was applied (UTC)"),
    ),
)

FEATURE_VERSIONS = CatalogTable(
    "feature_versions",
    "One row per committed write: an immutable feature version mapped to its Delta commit.",
    (
        ("version_id", S, "Global ID of the feature version (UUIDv7)"),
        ("table_name", S, "Feature table name"),
        ("definition_version", INT, "Definition version the data was written under"),
        ("definition_revision", INT, "Definition revision the data was validated against"),
        ("version_number", L, "1, 2, 3... per table and definition version; the _fs_version column"),
        ("delta_version", L, "Delta commit version of the feature table"),
        ("committed_at", TS, "Delta commit timestamp (UTC)"),
        ("storage_path", S, "Delta table path"),
        ("write_id", S, "Write identity; a retry with the same identity creates no new version"),
        (
            "content_digest",
            S,
            "Order-independent digest of the batch (before quarantine); null when the write had an explicit write_id",
        ),
        ("mode", S, "strict, quarantine, or rollback (a version that wrote no rows)"),
        ("row_count", L, "Rows committed"),
        ("quarantined_row_count", L, "Rows sent to quarantine"),
        ("schema_hash", S, "sha256 of the written Spark schema"),
        ("stats_json", S, "Per-feature min, max and null count of the committed rows"),
        ("event_time_min", TS, "Earliest event time committed"),
        ("event_time_max", TS, "Latest event time committed"),
        ("user", S, "Principal who wrote it"),
        ("source_description", S, "Where the data came from"),
        ("source_start", TS, "Start of the source time range"),
        ("source_end", TS, "End of the source time range"),
        ("transformation_fingerprint", S, "Fingerprint of the deriving code"),
        ("transformation_json", S, "Transformation name, parameters and windows as JSON"),
        ("parents", ARR, "Parent features as table:feature"),
        ("experiment_id", S, "Experiment the write was made for, if any"),
        ("run_id", S, "Run that made the write, if any"),
        ("hypothesis", S, "Hypothesis the version was created for, if any"),
        ("recovered", B, "True when the row was rebuilt from the Delta log after an interrupted write"),
        ("restores_version", L, "For a rollback (mode rollback): the version number whose rows it makes current again"),
    ),
)

QUARANTINE_EVENTS = CatalogTable(
    "quarantine_events",
    "One row per batch whose bad rows went to a quarantine table.",
    (
        ("event_id", S, "Global ID of the event (UUIDv7)"),
        ("table_name", S, "Feature table name"),
        ("definition_version", INT, "Definition version of the write"),
        ("version_id", S, "Feature version that received the batch's good rows"),
        ("write_id", S, "Write identity of the batch"),
        ("quarantine_path", S, "Delta table holding the bad rows"),
        ("quarantine_delta_version", L, "Delta commit of the quarantine table"),
        ("row_count", L, "Rows quarantined"),
        ("rule_counts_json", S, "Rows per broken rule, as JSON {feature:rule: count}"),
        ("user", S, "Principal who wrote the batch"),
        ("at", TS, "When (UTC)"),
    ),
)

VERSION_STATUS = CatalogTable(
    "version_status",
    "One row per change of a feature version's status: quarantined (builds refuse it) or released.",
    (
        ("event_id", S, "Global ID of the event (UUIDv7)"),
        ("version_id", S, "Feature version"),
        ("table_name", S, "Feature table name"),
        ("status", S, "quarantined or released"),
        ("reason", S, "Why"),
        ("user", S, "Principal who changed it"),
        ("at", TS, "When (UTC)"),
    ),
)

TRAINING_SETS = CatalogTable(
    "training_sets",
    "One row per training set built: its manifest, enough to rebuild it exactly.",
    (
        ("training_set_id", S, "Global ID of the training set (UUIDv7)"),
        ("name", S, "Optional name given by the user"),
        ("created_at", TS, "When it was built (UTC)"),
        ("user", S, "Principal who built it"),
        ("entity_path", S, "Delta table holding the entity rows as given, with _fs_row"),
        ("entity_delta_version", L, "Delta version of the entity rows"),
        ("entity_digest", S, "Content digest of the entity rows"),
        ("entity_row_count", L, "Entity rows"),
        ("label", ARR, "Label columns"),
        ("exclude_columns", ARR, "Entity columns left out of the result"),
        ("as_of", TS, "Only feature rows committed at or before this time were visible, if set"),
        ("timezone", S, "Zone of zone-less entity times, if given"),
        ("lookups_json", S, "The resolved lookups: table, versions read, features, keys, lookback, defaults"),
        ("feature_version_ids", ARR, "The feature version read by each lookup"),
        (
            "supplying_version_ids",
            ARR,
            "Feature versions whose rows the join picked for at least one entity row (the winning row's "
            "_fs_version), over all lookups; null for training sets built before it was recorded",
        ),
        ("output_path", S, "Delta table holding the training set"),
        ("output_delta_version", L, "Delta version of the training set table"),
        ("output_schema_json", S, "Spark schema of the training set"),
        ("content_digest", S, "Content digest of the training set rows, _fs_row included"),
        ("row_count", L, "Rows"),
        ("fs_spark_version", S, "fs_spark version that built it"),
        ("spark_version", S, "Spark version that built it"),
        ("experiment_id", S, "Experiment of the run that built it, if any"),
        ("run_id", S, "Run that built it, if any"),
        ("context", S, "What it is for: training, validation, or scoring (the features looked up by score_batch)"),
        ("mlflow_run_id", S, "MLflow run it was logged to as a dataset input, if any"),
    ),
)

EXPERIMENTS = CatalogTable(
    "experiments",
    "One row per experiment: a named question that runs try to answer.",
    (
        ("experiment_id", S, "Global ID of the experiment (UUIDv7)"),
        ("name", S, "Experiment name, unique in the store"),
        ("description", S, "What the experiment is for"),
        ("user", S, "Principal who created it"),
        ("created_at", TS, "When (UTC)"),
    ),
)

RUNS = CatalogTable(
    "runs",
    "One row per change of a run's state: started, then finished or failed. A run's current state is its latest row.",
    (
        ("event_id", S, "Global ID of this event (UUIDv7)"),
        ("run_id", S, "Global ID of the run (UUIDv7)"),
        ("experiment_id", S, "Experiment the run belongs to"),
        ("name", S, "Optional run name"),
        ("hypothesis", S, "What the run sets out to show, if given"),
        ("stage", S, "training, validation or deployment"),
        ("status", S, "running, finished or failed"),
        ("params_json", S, "Parameters as JSON {name: value}"),
        ("tags_json", S, "Tags as JSON {name: value}"),
        ("error", S, "Why the run failed, if it did"),
        ("user", S, "Principal who ran it"),
        ("started_at", TS, "Start (UTC)"),
        ("ended_at", TS, "End (UTC), once ended"),
        ("mlflow_run_id", S, "The MLflow run linked to this run, if any"),
        ("at", TS, "When this event was recorded (UTC)"),
    ),
)

RUN_METRICS = CatalogTable(
    "run_metrics",
    "One row per logged metric value of a run.",
    (
        ("run_id", S, "Run that logged it"),
        ("key", S, "Metric name, for example val_auc"),
        ("value", T.DoubleType(), "Metric value"),
        ("step", L, "Step (0 unless given)"),
        ("at", TS, "When it was logged (UTC)"),
    ),
)

RUN_INPUTS = CatalogTable(
    "run_inputs",
    "One row per feature version a run read directly (training sets record their own inputs).",
    (
        ("run_id", S, "Run that read it"),
        ("version_id", S, "Feature version read"),
        ("table_name", S, "Feature table name"),
        ("delta_version", L, "Delta version read"),
        ("at", TS, "When (UTC)"),
    ),
)

MODELS = CatalogTable(
    "models",
    "One row per registered model name.",
    (
        ("model_id", S, "Global ID of the model (UUIDv7)"),
        ("name", S, "Model name, unique in the store"),
        ("description", S, "What the model predicts"),
        ("user", S, "Principal who registered it"),
        ("created_at", TS, "When (UTC)"),
    ),
)

MODEL_VERSIONS = CatalogTable(
    "model_versions",
    "One row per model version: a trained model, tied to the run and training sets it came from.",
    (
        ("model_version_id", S, "Global ID of the model version (UUIDv7)"),
        ("model_id", S, "Model it is a version of"),
        ("model_name", S, "Model name"),
        ("version", L, "1, 2, 3... per model"),
        ("run_id", S, "Run that trained it"),
        ("experiment_id", S, "Experiment of that run"),
        ("training_set_ids", ARR, "Training sets it learned from"),
        ("feature_version_ids", ARR, "Feature versions those training sets read"),
        ("artifact_uri", S, "Where the model's files are, if known"),
        ("mlflow_model_id", S, "MLflow logged model ID, if linked"),
        ("mlflow_registered_version", S, "MLflow registered model version, if linked"),
        ("user", S, "Principal who registered it"),
        ("created_at", TS, "When (UTC)"),
    ),
)

DEPLOYMENTS = CatalogTable(
    "deployments",
    "One row per deployment event of a model version to an environment; the latest per environment is live.",
    (
        ("deployment_id", S, "Global ID of the deployment (UUIDv7)"),
        ("model_version_id", S, "Model version deployed"),
        ("model_name", S, "Model name"),
        ("model_version", L, "Model version number"),
        ("environment", S, "Where it runs, for example prod"),
        ("status", S, "active or retired"),
        ("feature_version_ids", ARR, "The active feature set: feature versions the model learned from"),
        ("features", ARR, "The features it needs, as table:feature"),
        ("feature_service", S, "Feature service that serves its online vectors, if named at deployment"),
        ("feature_service_version", INT, "Version of that feature service"),
        ("lineage_json", S, "Snapshot of the model version's upstream lineage graph at deployment"),
        ("run_id", S, "Run that made the deployment, if any"),
        ("user", S, "Principal who deployed it"),
        ("at", TS, "When (UTC)"),
    ),
)

LINEAGE_EDGES = CatalogTable(
    "lineage_edges",
    "Edges recorded by hand (`FeatureStore.lineage.link`); the lineage graph adds the edges every other record implies.",
    (
        ("src_kind", S, "Kind of the upstream node"),
        ("src_id", S, "ID of the upstream node"),
        ("dst_kind", S, "Kind of the downstream node"),
        ("dst_id", S, "ID of the downstream node"),
        ("relation", S, "How they relate"),
        ("run_id", S, "Run that recorded it, if any"),
        ("user", S, "Principal who recorded it"),
        ("at", TS, "When (UTC)"),
    ),
)

MAINTENANCE_EVENTS = CatalogTable(
    "maintenance_events",
    "One row per maintenance of a table's files: VACUUM (the authorised record of a removal) or OPTIMIZE "
    "(files rewritten in a new layout, none deleted).",
    (
        ("event_id", S, "Global ID of the event (UUIDv7)"),
        ("action", S, "vacuum or optimize"),
        ("table_name", S, "Feature table"),
        ("storage_paths", ARR, "Delta tables it touched"),
        ("forced", B, "True when it removed files that recorded training sets still read"),
        ("deleted_files", L, "Files deleted (VACUUM); files replaced in the table's state (OPTIMIZE)"),
        ("affected_training_sets", ARR, "Training sets whose inputs it removed"),
        ("reason", S, "Why"),
        ("user", S, "Principal who ran it"),
        ("at", TS, "When (UTC)"),
    ),
)

D = T.DoubleType()

DRIFT_CHECKS = CatalogTable(
    "drift_checks",
    "One row per drift check of a feature version against a baseline.",
    (
        ("check_id", S, "Global ID of the check (UUIDv7)"),
        ("table_name", S, "Feature table"),
        ("version_id", S, "Feature version checked"),
        ("version_number", L, "Its number"),
        ("baseline", S, "version:<id> (the previous version) or training_set:<id>"),
        ("baseline_rows", L, "Rows of the baseline"),
        ("rows", L, "Rows the version wrote"),
        ("schema_changes", ARR, "Columns added, removed or retyped against the baseline"),
        ("key_coverage", D, "Against a training set: its distinct keys / the population's (approximate)"),
        ("time_coverage", D, "Against a training set: share of the population's time range its rows span"),
        ("time_ks", D, "Against a training set: KS distance of its times from the population's"),
        ("breaches", L, "Thresholds breached (each one an alert)"),
        ("user", S, "Principal who ran it"),
        ("at", TS, "When (UTC)"),
    ),
)

DRIFT_SCORES = CatalogTable(
    "drift_scores",
    "One row per feature per drift check: its distances and rates.",
    (
        ("check_id", S, "Drift check"),
        ("table_name", S, "Feature table"),
        ("version_id", S, "Feature version checked"),
        ("feature", S, "Feature"),
        ("kind", S, "numeric or categorical"),
        ("psi", D, "Population stability index"),
        ("ks", D, "Kolmogorov-Smirnov distance (numbers)"),
        ("wasserstein", D, "Wasserstein-1 distance in baseline interquartile ranges (numbers)"),
        ("null_rate_baseline", D, "Share of nulls in the baseline"),
        ("null_rate", D, "Share of nulls in the version"),
        ("nan_rate_baseline", D, "Share of NaNs in the baseline"),
        ("nan_rate", D, "Share of NaNs in the version"),
        ("new_categories", ARR, "Values the baseline never had"),
        ("missing_categories", ARR, "Baseline values the version lacks"),
        ("breaches", ARR, "Metrics over their threshold"),
        ("at", TS, "When (UTC)"),
    ),
)

ALERTS = CatalogTable(
    "alerts",
    "One row per threshold breached by a quality check; also sent to the configured sink.",
    (
        ("alert_id", S, "Global ID of the alert (UUIDv7)"),
        ("check_id", S, "Check that raised it"),
        ("table_name", S, "Feature table"),
        ("version_id", S, "Feature version"),
        ("feature", S, "Feature (empty for table-level checks: schema, sampling)"),
        (
            "metric",
            S,
            "What breached: psi, ks, wasserstein, null_rate, nan_rate, new_categories, schema, key_coverage, ...",
        ),
        ("value", D, "Measured value"),
        ("threshold", D, "Its threshold"),
        ("baseline", S, "What it was compared with"),
        ("sink", S, "Where it was sent: log, file or webhook"),
        ("at", TS, "When (UTC)"),
    ),
)

AUDIT_LOG = CatalogTable(
    "audit_log",
    "One row per access decision: every feature of every request, allowed or denied.",
    (
        ("event_id", S, "Global ID of the decision (UUIDv7)"),
        ("request_id", S, "The request it belongs to (one operation)"),
        ("principal", S, "Who asked"),
        ("action", S, "read, write, deprecate or admin"),
        ("object", S, "table:feature"),
        ("decision", S, "allow or deny"),
        ("rule", S, "The policy rule that decided, or 'default deny', or the region restriction"),
        ("at", TS, "When (UTC)"),
    ),
)

DEPRECATIONS = CatalogTable(
    "deprecations",
    "One row per deprecation schedule event; the latest per (table, feature) is in force.",
    (
        ("event_id", S, "Global ID of the event (UUIDv7)"),
        ("table_name", S, "Feature table"),
        ("feature", S, "Feature; null for the whole table"),
        ("announce_at", TS, "From then, builds that read it warn"),
        ("end_at", TS, "From then, builds refuse it unless they accept deprecated features"),
        ("replacement", S, "What to use instead, as table:feature"),
        ("reason", S, "Why"),
        ("withdrawn", B, "True when this event withdraws the schedule"),
        ("user", S, "Principal who scheduled it"),
        ("at", TS, "When (UTC)"),
    ),
)

EXPORTS = CatalogTable(
    "exports",
    "One row per export: feature data copied out of the store, what was read and where it went.",
    (
        ("export_id", S, "Global ID of the export (UUIDv7)"),
        ("source_kind", S, "feature_version or training_set"),
        ("source_id", S, "The feature version or training set read"),
        ("table_name", S, "Feature table, for a feature version"),
        ("delta_version", L, "Delta version read"),
        ("features", ARR, "Columns exported"),
        ("path", S, "Destination"),
        ("format", S, "parquet, delta, csv or json"),
        ("region", S, "Region of the destination (governance.locations), when known"),
        ("row_count", L, "Rows written"),
        ("run_id", S, "fs_spark run, when one was active"),
        ("user", S, "Principal who exported"),
        ("at", TS, "When (UTC)"),
    ),
)

FEATURE_SERVICES = CatalogTable(
    "feature_services",
    "One row per applied version of a feature service: a named set of lookups served in one online call.",
    (
        ("event_id", S, "Global ID of this definition event (UUIDv7)"),
        ("name", S, "Feature service name"),
        ("version", INT, "Its version: 1, then one more at every apply that changes its lookups"),
        ("lookups_json", S, "The lookups, as JSON"),
        ("description", S, "What it is for"),
        ("owner", S, "Who answers for it"),
        ("tags", ARR, "Free-form tags"),
        ("user", S, "Principal who applied it"),
        ("at", TS, "When (UTC)"),
    ),
)

MATERIALIZATIONS = CatalogTable(
    "materializations",
    "One row per materialization: feature versions copied to an online store, and what it then serves.",
    (
        ("materialization_id", S, "Global ID of the materialization (UUIDv7)"),
        ("table_name", S, "Feature table"),
        ("definition_version", INT, "Definition version materialized"),
        ("version_id", S, "Feature version the online store serves after it (null: none servable)"),
        ("version_number", L, "Its number"),
        ("supplying_version_ids", ARR, "Feature versions whose rows were read"),
        ("withheld_versions", ARR, "Version numbers whose values are not served (quarantined, rolled over)"),
        ("online_store", S, "The online store, e.g. redis://host:6379/0 or embedded:<path>"),
        ("kind", S, "full, incremental (the new writes only), refresh (keys a quarantine or rollback touched) or none"),
        ("keys_written", L, "Vectors written"),
        ("keys_removed", L, "Vectors removed (no served row has the key any more)"),
        ("run_id", S, "fs_spark run, when one was active"),
        ("user", S, "Principal who materialized"),
        ("started_at", TS, "When it started (UTC)"),
        ("at", TS, "When the online store reflected it (UTC)"),
    ),
)

SCORINGS = CatalogTable(
    "scorings",
    "One row per batch scoring (`score_batch`): the model, the features looked up for it, and where the predictions went.",
    (
        ("scoring_id", S, "Global ID of the scoring (UUIDv7)"),
        ("model_version_id", S, "fs_spark model version scored with (null: a model fs_spark did not register)"),
        ("model_uri", S, "MLflow URI of the model"),
        ("scoring_set_id", S, "The training set (context scoring) holding the rows and features scored"),
        ("feature_version_ids", ARR, "Feature versions read"),
        ("output_path", S, "Delta table the predictions were written to (null: returned only)"),
        ("output_delta_version", L, "Its Delta version"),
        ("row_count", L, "Rows scored"),
        ("run_id", S, "fs_spark run, when one was active"),
        ("user", S, "Principal who scored"),
        ("at", TS, "When (UTC)"),
    ),
)

STREAMS = CatalogTable(
    "streams",
    "One row per start (or restart) of a stream into a feature table (`write_stream`).",
    (
        ("stream_event_id", S, "Global ID of this start (UUIDv7)"),
        (
            "stream_name",
            S,
            "The stream's name (its Spark query name); its micro-batches write as stream:<name>:<batch>",
        ),
        ("table_name", S, "Feature table written"),
        ("query_id", S, "Spark's query ID, kept in the checkpoint across restarts"),
        ("spark_run_id", S, "Spark's run ID of this start"),
        ("checkpoint", S, "The query's checkpoint location"),
        ("source_description", S, "What the stream reads, as Spark's plan names it"),
        ("mode", S, "strict or quarantine"),
        ("trigger", S, "The trigger: a processing-time interval, or availableNow"),
        ("online", B, "True when each micro-batch also updates the online store"),
        ("run_id", S, "fs_spark run, when one was given"),
        ("user", S, "Principal who started it"),
        ("started_at", TS, "When it started (UTC)"),
    ),
)

STREAM_PROGRESS = CatalogTable(
    "stream_progress",
    "One row per micro-batch progress report of a stream, from Spark's StreamingQueryProgress.",
    (
        ("stream_name", S, "The stream"),
        ("query_id", S, "Spark's query ID"),
        ("spark_run_id", S, "Spark's run ID (a new one after each restart)"),
        ("batch_id", L, "Micro-batch ID; one reported under two run IDs was run again after a restart"),
        ("at", TS, "When the micro-batch started (UTC)"),
        ("input_rows", L, "Rows read from the source"),
        ("input_rows_per_second", D, "Rate at which rows arrived"),
        ("processed_rows_per_second", D, "Rate at which rows were processed"),
        ("duration_ms", L, "Time the micro-batch took, end to end (triggerExecution)"),
        (
            "offsets_behind_latest",
            L,
            "Kafka: the most offsets any partition was behind the latest (null for other sources)",
        ),
        ("end_offsets_json", S, "Source offsets at the end of the micro-batch, one entry per source"),
    ),
)

VERSION_PROFILES = CatalogTable(
    "version_profiles",
    "Per feature version, the figures anomaly checks judge: one row for the table (feature null) "
    "and one per feature. Sensitive features get null rates only.",
    (
        ("version_id", S, "Feature version"),
        ("table_name", S, "Feature table"),
        ("definition_version", L, "Definition version it was written under"),
        ("version_number", L, "Its number within the table"),
        ("feature", S, "Feature; null for the table's own row"),
        ("rows", L, "Rows the version wrote"),
        ("null_rate", D, "Share of the rows where the feature is null"),
        ("mean", D, "Mean of the feature's values (NaN left out)"),
        ("p05", D, "5th percentile (approximate, 1/10,000 relative error)"),
        ("p50", D, "Median"),
        ("p95", D, "95th percentile"),
        ("at", TS, "When it was profiled (UTC)"),
    ),
)

METRICS = CatalogTable(
    "metrics",
    "One row per operation on a data path (ingest, stream micro-batch, training set, materialization, "
    "replication, drift check), with its figures; online reads are counted in Prometheus only. "
    "Each region keeps its own: this table is not replicated.",
    (
        ("operation_id", S, "Global ID of the operation (UUIDv7)"),
        ("operation", S, "ingest, stream, training_set, materialize, replicate, drift, anomalies or reconcile"),
        ("table_name", S, "Feature table, when the operation has one"),
        ("started_at", TS, "When it started (UTC)"),
        ("seconds", D, "How long it took"),
        ("rows", L, "Rows it moved (written, built, materialized, copied or checked)"),
        ("bytes", L, "Bytes it wrote, as Delta's commit or the copy counts them; for a drift check, bytes read"),
        ("retries", L, "Failed Spark task and stage attempts, and retried writes"),
        ("error_class", S, "The error's class when it failed, else null"),
        ("error", S, "The error's message when it failed (its first 2,000 characters)"),
        ("spark_jobs", L, "Spark jobs it started (Spark's status tracker)"),
        ("spark_stages", L, "Stages that ran"),
        ("spark_tasks", L, "Tasks that completed"),
        ("spark_failed_tasks", L, "Task attempts that failed"),
        ("spark_input_bytes", L, "Bytes its stages read (Spark's input metrics)"),
        ("run_id", S, "fs_spark run, when one was given"),
        ("experiment_id", S, "Its experiment"),
        ("user", S, "Principal"),
        ("instance", S, "host:pid of the process"),
        ("tags_json", S, "Other figures of the operation, as JSON"),
    ),
)

ALL_TABLES = (
    FEATURE_TABLES,
    FEATURE_VERSIONS,
    QUARANTINE_EVENTS,
    VERSION_STATUS,
    TRAINING_SETS,
    EXPERIMENTS,
    RUNS,
    RUN_METRICS,
    RUN_INPUTS,
    MODELS,
    MODEL_VERSIONS,
    DEPLOYMENTS,
    LINEAGE_EDGES,
    MAINTENANCE_EVENTS,
    DRIFT_CHECKS,
    DRIFT_SCORES,
    ALERTS,
    AUDIT_LOG,
    DEPRECATIONS,
    EXPORTS,
    FEATURE_SERVICES,
    MATERIALIZATIONS,
    SCORINGS,
    STREAMS,
    STREAM_PROGRESS,
    VERSION_PROFILES,
    METRICS,
)


def describe_catalog() -> str:
    """Markdown text documenting every catalog table and column."""
    parts = []
    for table in ALL_TABLES:
        parts.append(f"### `{table.name}`\n{table.doc}\n\n| column | type | meaning |\n|---|---|---|")
        parts += [f"| `{n}` | {t.simpleString()} | {d} |" for n, t, d in table.columns]
        parts.append("")
    return "\n".join(parts)
