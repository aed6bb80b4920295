"""One exception hierarchy for fs_spark.

Every failure has its own class. Each class takes the domain values (table, feature, rule,
version) and writes a message that says what was expected, what was found and how to fix it,
so callers can catch by class and people can act on the text.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def first_line(error: BaseException | str, limit: int = 300) -> str:
    """The first line of an error's message (or of a kept message), cut to `limit` characters ("" when it has none)."""
    return next(iter(str(error).strip().splitlines()), "").strip()[:limit]


class FsSparkError(Exception):
    """Root of every error fs_spark raises on purpose."""

    def without_values(self) -> str:
        """The message with no feature value in it, for what leaves the process (lineage events)."""
        return str(self)


def without_values(error: BaseException) -> str:
    """An error's message with no feature value in it where fs_spark can tell (its own errors),
    for what is kept or leaves the process: run records, lineage events."""
    return error.without_values() if isinstance(error, FsSparkError) else str(error)


class CatalogRowError(FsSparkError):
    """fs_spark built a catalog row that does not fit its table: a bug in fs_spark, caught
    before anything is written."""

    def __init__(self, table: str, unknown: Sequence[str], missing: Sequence[str]):
        self.table = table
        super().__init__(
            f"catalog row for {table!r} has unknown column(s) {list(unknown)} and lacks "
            f"column(s) {list(missing)}; nothing was written"
        )


# --- write locks --------------------------------------------------------------------------


class LockTimeoutError(FsSparkError):
    """Another writer held a write lock for longer than the lock timeout."""

    def __init__(self, name: str, seconds: float):
        self.name = name
        super().__init__(f"could not take the write lock {name!r} within {seconds:.0f}s; another writer holds it")


class LockLostError(FsSparkError):
    """A lease lock on an object store was taken over by another writer while this one held it
    (this writer stalled for longer than the lease)."""

    def __init__(self, name: str, location: str, outcome: str = ""):
        self.name = name
        super().__init__(
            f"the write lock {name!r} ({location}) was taken over by another writer while held: this writer "
            "stalled past its lease (store.s3.lock_lease_seconds)"
            + (f"; {outcome}" if outcome else "; check the table's versions with `fs-spark reconcile`")
        )


# --- regions and replication ----------------------------------------------------------------


class ReplicationError(FsSparkError):
    """A replica cannot take a table's next commit as it is; nothing past the watermark was
    made visible there."""

    def __init__(self, table: str, problem: str):
        self.table = table
        self.problem = problem
        super().__init__(f"cannot replicate {table}: {problem}; the replica keeps its last whole commit")


class UnknownRegionError(FsSparkError):
    """A region (or a root) the regions file does not declare."""

    def __init__(self, region: str, known: list[str]):
        self.region = region
        super().__init__(f"no region {region!r}; the regions file declares {known}")


class PromotionError(FsSparkError):
    """A promotion that would leave two home regions, or none."""

    def __init__(self, region: str, problem: str):
        self.region = region
        super().__init__(f"cannot promote {region!r}: {problem}")


class ReplicaWriteError(FsSparkError):
    """A write in a region that is not the home of what it writes: refused, so that two regions
    never write one table (no split brain)."""

    def __init__(self, region: str, home: str, what: str):
        self.region = region
        self.home = home
        super().__init__(
            f"{what} refused: region {region!r} is a replica and {home!r} is the home region; write there, "
            f"or promote {region!r} with `fs-spark promote {region}`"
        )


class StaleHomeError(FsSparkError):
    """A write in a region whose role still says home, while another region records a newer
    epoch: it was promoted by force while this one could not be reached."""

    def __init__(self, region: str, home: str, epoch: int, what: str):
        self.region = region
        self.home = home
        self.epoch = epoch
        super().__init__(
            f"{what} refused: region {home!r} was promoted to epoch {epoch} while {region!r} could not be "
            f"reached, so {region!r} is no longer the home region; make it a replica with `fs-spark rejoin {region}` "
            f"(what it wrote alone is kept under _diverged/), then write in {home!r}"
        )


class RejoinError(FsSparkError):
    """A rejoin asked of a region that is not a home left behind by a forced promotion."""

    def __init__(self, region: str, problem: str):
        self.region = region
        super().__init__(f"cannot rejoin {region!r}: {problem}")


# --- set-up -------------------------------------------------------------------------------


class ConfigError(FsSparkError):
    """A configuration file or override is malformed."""

    def __init__(self, source: str, problem: str):
        self.source = source
        self.problem = problem
        super().__init__(f"invalid fs_spark configuration in {source}: {problem}")


class DeltaJarsMissingError(FsSparkError):
    """Spark cannot load Delta Lake, so nothing fs_spark stores could be read or written."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(
            f"Delta Lake is not available to Spark: {detail}. "
            "Run `make setup` to fetch the Delta jars that match the pinned pyspark "
            "(or set FS_SPARK_SPARK__JARS_DIR to a folder that holds them)."
        )


class JvmJarMissingError(FsSparkError):
    """Spark cannot load fs_spark's own JVM classes, which run the point-in-time join's merge."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(
            f"fs_spark's jar is not available to Spark: {detail}. "
            "Run `make setup` to build fs_spark-jvm.jar, and give it to the session with the Delta jars "
            "(`fs-spark submit-args` prints the spark-submit flags; on a cluster, install it as a library)."
        )


# --- names and definitions ------------------------------------------------------------------


class InvalidNameError(FsSparkError):
    """A table, feature or entity name is not a safe identifier."""

    def __init__(self, kind: str, name: object, pattern: str):
        self.kind = kind
        self.name = name
        super().__init__(
            f"invalid {kind} name {name!r}: names must match {pattern} "
            "(lower-case letter first, then lower-case letters, digits or '_', at most 64 characters)"
        )


class DefinitionError(FsSparkError):
    """A definition is inconsistent in itself (for example a rule naming an unknown feature)."""

    def __init__(self, table: str, problem: str, kind: str = "feature table"):
        self.table = table
        self.problem = problem
        super().__init__(f"invalid definition of {kind} {table!r}: {problem}")


class StoreRootError(FsSparkError):
    """A store root that paths below it would not round-trip through (Hadoop's URIs, delta-rs's URLs)."""

    def __init__(self, root: str, problem: str):
        self.root = root
        super().__init__(
            f"store root {root!r} cannot be used: {problem}, which Hadoop or delta-rs would read as another "
            "path; choose a root of letters, digits and - _ . / only"
        )


class StoreNotFoundError(FsSparkError):
    """A command that reads a store was pointed at a root that holds none."""

    def __init__(self, root: str):
        self.root = root
        super().__init__(
            f"no fs_spark store at {root} (it has no _catalog folder): check --root or FS_SPARK_STORE__ROOT, "
            "or start a store there with `fs-spark init`, `apply` or `ingest`"
        )


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


class InputNotFoundError(FsSparkError, FileNotFoundError):
    """A file or folder given as input does not exist."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(f"no input at {path}: check the path (a file, or a folder of Parquet, CSV, JSON or Delta)")

    __str__ = Exception.__str__


class InputFormatError(FsSparkError):
    """An input whose format cannot be told from its name."""

    def __init__(self, path: str, problem: str):
        self.path = path
        super().__init__(f"cannot tell the format of {path}: {problem}; pass --format parquet, csv, json or delta")


class TimestampPrecisionError(FsSparkError):
    """A nanosecond timestamp column holds digits below the microsecond, which Spark cannot keep."""

    def __init__(self, column: str, example: str, source: str):
        self.column = column
        super().__init__(
            f"timestamp column {column!r} of {source} has nanoseconds that a microsecond timestamp would "
            f"drop (for example {example} ns since the epoch); round it to microseconds first, for example "
            f"df[{column!r}] = df[{column!r}].dt.floor('us') in pandas"
        )


class TableNotFoundError(FsSparkError):
    def __init__(self, table: str, known: Sequence[str] = ()):
        self.table = table
        hint = f" Known tables: {', '.join(sorted(known))}." if known else " No tables are defined yet."
        hint = _did_you_mean(table, known) + hint
        super().__init__(
            f"feature table {table!r} is not defined in this store.{hint} "
            "Define it with FeatureStore.apply(...) or `fs-spark apply`."
        )


class FeatureNotFoundError(FsSparkError, KeyError):
    """A feature asked for by name is not a feature of the table (a KeyError too, as a lookup
    by name that fails is)."""

    def __init__(self, table: str, features: Sequence[str], known: Sequence[str]):
        self.table = table
        self.features = list(features)
        hint = _did_you_mean(self.features[0], known) if len(self.features) == 1 else ""
        super().__init__(
            f"feature table {table!r} has no feature(s) {self.features}.{hint} Its features are {list(known)}."
        )

    __str__ = Exception.__str__  # KeyError's own quotes the message


class BreakingChangeError(FsSparkError):
    """A definition change would break readers of the current definition version."""

    def __init__(self, table: str, current_version: int, changes: Sequence[str], impact: Sequence[str] = ()):
        self.table = table
        self.current_version = current_version
        self.changes = list(changes)
        self.impact = list(impact)
        listed = "; ".join(self.changes)
        readers = f" It would break {'; '.join(self.impact)}." if self.impact else ""
        super().__init__(
            f"the change to feature table {table!r} breaks its readers ({listed}).{readers} "
            f"Publish it as a new definition version: set definition_version={current_version + 1}."
        )


# --- ingestion -----------------------------------------------------------------------------


class SchemaMismatchError(FsSparkError):
    """The DataFrame's columns or types do not fit the table's definition; nothing was written."""

    def __init__(self, table: str, problems: Sequence[str]):
        self.table = table
        self.problems = list(problems)
        super().__init__(f"cannot write to feature table {table!r}, nothing was written: " + "; ".join(self.problems))


class Violation:
    """One broken rule in a batch: which feature, which rule, how many rows, one example value."""

    __slots__ = ("feature", "rule", "count", "example")

    def __init__(self, feature: str, rule: str, count: int, example: str | None):
        self.feature = feature
        self.rule = rule
        self.count = count
        self.example = example

    def __repr__(self) -> str:
        return f"Violation({self.feature!r}, {self.rule!r}, count={self.count}, example={self.example!r})"

    def describe(self, example: bool = True) -> str:
        shown = f", e.g. {self.example}" if example else ""
        return f"{self.feature}: rule {self.rule} broken by {self.count} row(s){shown}"


class DuplicateBatchWarning(UserWarning):
    """A write with no write_id carried exactly the rows of an earlier version: nothing was written."""


class DuplicateBatchError(FsSparkError):
    """A write with no write_id carried exactly the rows of an earlier version (store.duplicate_batches: refuse)."""

    def __init__(self, table: str, version_number: int, version_id: str, write_id: str):
        self.table = table
        self.version_id = version_id
        super().__init__(
            f"batch refused for feature table {table!r}: it has exactly the rows of version #{version_number} "
            f"({version_id}, write_id {write_id!r}); nothing was written. Pass that write_id to retry it, "
            "or change the batch"
        )


class ValidationError(FsSparkError):
    """A batch broke validation rules in strict mode; nothing was written."""

    def __init__(self, table: str, violations: Sequence[Violation]):
        self.table = table
        self.violations = list(violations)
        super().__init__(self._message(example=True))

    def _message(self, example: bool) -> str:
        lines = "\n  ".join(v.describe(example) for v in self.violations)
        return (
            f"batch refused for feature table {self.table!r}, nothing was written; "
            f"{len(self.violations)} rule(s) broken:\n  {lines}\n"
            "Fix the data, or write with mode='quarantine' to keep the good rows."
        )

    def without_values(self) -> str:
        return self._message(example=False)

    def rules(self) -> set[tuple[str, str]]:
        return {(v.feature, v.rule) for v in self.violations}


class WriteConflictError(FsSparkError):
    """A write reused the identity of an earlier write but carries different data."""

    def __init__(self, table: str, write_id: str, version_id: str):
        self.table = table
        self.write_id = write_id
        self.version_id = version_id
        super().__init__(
            f"write_id {write_id!r} on feature table {table!r} was already committed as version "
            f"{version_id} with different data. A retry must send the same batch; "
            "new data needs a new write_id."
        )


# --- reading -------------------------------------------------------------------------------


class VersionNotFoundError(FsSparkError):
    def __init__(self, table: str, version: object, available: str):
        self.table = table
        self.version = version
        super().__init__(
            f"feature table {table!r} has no version {version!r}; {available}. "
            "List versions with FeatureStore.versions(...) or `fs-spark versions`."
        )


class VersionExpiredError(FsSparkError):
    def __init__(self, table: str, version: object, detail: str):
        self.table = table
        self.version = version
        super().__init__(
            f"version {version!r} of feature table {table!r} can no longer be read: {detail}. "
            "Its files were removed by VACUUM or log clean-up; read a later version."
        )


# --- training sets -------------------------------------------------------------------------


class EntityColumnError(FsSparkError):
    """The entity DataFrame lacks a column a lookup needs, or has one of the wrong type."""

    def __init__(self, column: str, problem: str, available: Sequence[str] = ()):
        self.column = column
        known = f"; the entity DataFrame has {sorted(available)}" if available else ""
        super().__init__(f"entity column {column!r}: {problem}{known}")


class NaiveEntityTimeError(FsSparkError):
    """Entity times without a zone: their instant depends on a guess."""

    def __init__(self, column: str, spark_type: str):
        self.column = column
        super().__init__(
            f"entity time column {column!r} is {spark_type}, which has no time zone; cast it to a "
            'timestamp (an instant) or pass timezone="<zone>" (for example "Europe/Paris") to say '
            "where its wall-clock times were taken"
        )


class FeatureLookupError(FsSparkError):
    """A feature lookup names something that does not exist or clashes."""

    def __init__(self, table: str, problem: str):
        self.table = table
        super().__init__(f"lookup on feature table {table!r}: {problem}")


class VersionQuarantinedError(FsSparkError):
    def __init__(self, table: str, version_ids: Sequence[str], reasons: Sequence[str], what: str = "the lookup"):
        self.table = table
        self.version_ids = list(version_ids)
        listed = "; ".join(f"{v} ({r})" for v, r in zip(version_ids, reasons, strict=True))
        super().__init__(
            f"feature table {table!r}: {what} would read quarantined version(s) {listed}. "
            "Pin a version written before them, roll back past them, or release them with "
            "FeatureStore.release_version(...) (`fs-spark release`)."
        )


class TrainingSetNotFoundError(FsSparkError):
    def __init__(self, training_set_id: str):
        self.training_set_id = training_set_id
        super().__init__(
            f"no training set {training_set_id!r} in this store; list them with "
            "FeatureStore.training_sets() or `fs-spark training-sets`"
        )


class ReplayMismatchError(FsSparkError):
    def __init__(
        self,
        training_set_id: str,
        expected: str,
        found: str,
        how: str = "rebuilt from its manifest",
        cause: str = "an input changed outside fs_spark",
    ):
        self.training_set_id = training_set_id
        super().__init__(
            f"training set {training_set_id!r} {how} has digest {found}, but was built with {expected}: {cause}"
        )


class TrainingSetInputExpiredError(FsSparkError):
    def __init__(self, training_set_id: str, table: str, version: object, detail: str):
        self.training_set_id = training_set_id
        self.table = table
        super().__init__(
            f"training set {training_set_id!r} cannot be rebuilt: its input {table!r} at version "
            f"{version!r} is gone ({detail})"
        )


class RetentionGuardError(FsSparkError):
    """VACUUM would delete files that recorded training sets (and the models and deployments
    built on them) still read."""

    def __init__(
        self,
        table: str,
        holders: Sequence[str],
        files: int,
        models: Sequence[str] = (),
        deployments: Sequence[str] = (),
    ):
        self.table = table
        self.holders = list(holders)
        self.models = list(models)
        self.deployments = list(deployments)
        held_by = ""
        if models or deployments:
            held_by = f" They are held by model version(s) {', '.join(models) or '-'} and deployment(s) {', '.join(deployments) or '-'}."
        super().__init__(
            f"VACUUM of feature table {table!r} refused: it would delete {files} file(s) that "
            f"{len(holders)} training set(s) still need to be rebuilt: {', '.join(holders)}.{held_by} "
            "Keep the files, or pass force=True to expire those training sets' inputs."
        )


class RetentionPeriodError(FsSparkError):
    """A VACUUM retention period that is negative, or shorter than Delta allows."""

    def __init__(self, table: str, hours: float, detail: str):
        self.table = table
        self.hours = hours
        super().__init__(
            f"VACUUM of feature table {table!r} with retention_hours={hours:g} refused: {detail}. "
            "Delta keeps removed files for 168 hours (7 days) by default so that running readers and "
            "writers do not lose them; pass retention_hours=168 or more, or, when nothing reads or "
            "writes the table, run in a session with spark.databricks.delta.retentionDurationCheck.enabled=false."
        )


# --- tracking and lineage -----------------------------------------------------------------


class RunNotFoundError(FsSparkError):
    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"no run {run_id!r} in this store; list runs with FeatureStore.tracking.runs()")


class RunStateError(FsSparkError):
    """An operation on a run that has already ended."""

    def __init__(self, run_id: str, status: str, action: str):
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id} is {status}; cannot {action}. Start a new run with FeatureStore.start_run")


class ModelNotFoundError(FsSparkError):
    def __init__(self, what: str, detail: str):
        self.what = what
        super().__init__(f"no model version {what!r}: {detail}")


class LineageNodeNotFoundError(FsSparkError):
    def __init__(self, node_id: str):
        self.node_id = node_id
        super().__init__(
            f"{node_id!r} is not in the lineage graph: pass the ID of a feature version, training set, run, "
            "experiment, model, model version or deployment, a kind:id such as feature_table:customer_activity, "
            "or a label `fs-spark lineage` lists, such as 'churn v1', when only one node has it"
        )


# --- quality --------------------------------------------------------------------------------


class DriftBaselineError(FsSparkError):
    """A drift check has nothing to compare with."""

    def __init__(self, table: str, detail: str):
        self.table = table
        super().__init__(f"cannot check drift of {table!r}: {detail}")


class RollbackError(FsSparkError):
    def __init__(self, table: str, version: object, detail: str):
        self.table = table
        super().__init__(f"cannot roll {table!r} back to version {version!r}: {detail}")


# --- governance -----------------------------------------------------------------------------


class AccessDeniedError(FsSparkError):
    """The access policy does not let this principal do this to this feature."""

    def __init__(self, principal: str, action: str, table: str, feature: str, rule: str):
        self.principal = principal
        self.action = action
        self.table = table
        self.feature = feature
        self.rule = rule
        super().__init__(
            f"principal {principal!r} may not {action} feature {table}.{feature}: denied by {rule!r}. "
            "Nothing was read or written; ask an administrator of the policy file to open it."
        )


class DeprecatedFeatureError(FsSparkError):
    """A build reads a feature whose deprecation has ended."""

    def __init__(self, subject: str, end: object, replacement: str | None, reason: str):
        self.subject = subject
        instead = f"use {replacement} instead, or " if replacement else ""
        super().__init__(
            f"{subject} was retired on {getattr(end, 'isoformat', lambda: end)()} ({reason}): {instead}"
            "pass accept_deprecated=True (or start the run with accept_deprecated=True) to build with it anyway"
        )


class StaleModelFeaturesError(FsSparkError):
    """A model's features differ now from those it was trained on (quarantine, rollback, retirement)."""

    def __init__(self, model: str, problems: list[str]):
        self.model = model
        self.problems = problems
        listed = "; ".join(problems)
        super().__init__(
            f"model {model} cannot be scored as trained: {listed}. Retrain it, or pass on_stale='warn' to score anyway"
        )


class ExportError(FsSparkError):
    """An export cannot be written where or how it was asked for; nothing was written."""

    def __init__(self, what: str, path: str, problem: str):
        self.what = what
        self.path = path
        self.problem = problem
        super().__init__(f"export of {what} to {path!r} refused: {problem}")


class NotMaterializedError(FsSparkError):
    """An online read of a table that was never materialized to this online store."""

    def __init__(self, table: str, store: str):
        self.table = table
        super().__init__(
            f"feature table {table!r} has not been materialized to the online store {store}: "
            f"run `fs-spark materialize {table}` (or store.materialize({table!r})) first"
        )


class OnlineRequestError(FsSparkError):
    """An online request that cannot be answered as asked: empty, too large, or pinned to a version."""


class RetiredFeatureError(FsSparkError):
    """An online read of a feature whose deprecation has ended."""

    def __init__(self, subject: str, end: str, replacement: str | None, reason: str):
        self.subject = subject
        instead = f": use {replacement} instead" if replacement else ""
        super().__init__(f"{subject} was retired on {end} ({reason}) and is no longer served online{instead}")


class FeatureServiceNotFoundError(FsSparkError, KeyError):
    def __init__(self, name: str, version: int | None, known: Sequence[str]):
        self.name = name
        which = f"{name!r} v{version}" if version is not None else repr(name)
        hint = _did_you_mean(name, known)
        super().__init__(f"feature service {which} is not applied in this store.{hint} Known services: {list(known)}")

    __str__ = Exception.__str__


class FeatureServiceMismatchError(FsSparkError):
    """A deployment names a feature service that does not serve exactly its model's features."""

    def __init__(self, name: str, version: int, missing: Sequence[str], extra: Sequence[str]):
        self.name = name
        parts = [f"lacks {list(missing)}"] if missing else []
        parts += [f"also serves {list(extra)}"] if extra else []
        super().__init__(
            f"feature service {name!r} v{version} does not serve exactly the model's features: it "
            + " and ".join(parts)
            + "; apply a service whose lookups are the training set's"
        )
