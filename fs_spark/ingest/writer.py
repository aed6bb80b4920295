"""The write path: one validated batch becomes one immutable feature version.

Strict mode is one pass: the batch is laid out, checked and written by a single Spark job (plus
the sampling job of its range partitioner); a row that breaks a rule makes the job raise, so
Delta commits nothing, and only then a second job gathers every broken rule for the error.
Quarantine mode writes the good rows in that pass and, when the pass counted bad rows, writes
them to the quarantine table in a second job. Row counts and per-feature statistics come from
the statistics Delta writes into the commit (`metrics`), not from jobs of their own. The content
digest that tells a retry from a conflicting write is computed before the write only when the
caller gives no write_id (it is then the identity); with a write_id it is computed only if that
identity comes back, from the new batch and from the rows the first write stored.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from fs_spark import digest as D
from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import FEATURE_VERSIONS, QUARANTINE_EVENTS
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import (
    DuplicateBatchError,
    DuplicateBatchWarning,
    FsSparkError,
    LockLostError,
    ValidationError,
    Violation,
    WriteConflictError,
)
from fs_spark.ids import new_id
from fs_spark.ingest import metrics as M
from fs_spark.ingest.conform import conform, source_values
from fs_spark.ingest.rules import (
    DUPLICATE_COUNT,
    RowRule,
    any_broken,
    broken_labels,
    duplicate_rule,
    latest_plausible,
    parse_rules,
    row_rules,
    source_rules,
    with_duplicate_count,
)
from fs_spark.progress import step
from fs_spark.provenance import RunRef, SourceInfo, from_spark
from fs_spark.session import SessionSource
from fs_spark.spark_jobs import describe, described
from fs_spark.storage.delta_log import Commit, added_file_stats, latest_commit, latest_version
from fs_spark.storage.fence import only_commit, was_fenced
from fs_spark.storage.layout import VERSION_COLUMN, create_quarantine, data_columns, is_small, layout
from fs_spark.storage.orphans import remove_uncommitted
from fs_spark.storage.paths import StorePaths
from fs_spark.store_part import StorePart
from fs_spark.versions.numbering import write_state

Mode = Literal["strict", "quarantine"]
MODES = ("strict", "quarantine")
_MARKER = "FS_SPARK_RULE_BROKEN"
_RULES_COLUMN = "_fs_rules"
_BAD_COLUMN = "_fs_broken"
METADATA_KEY = "fs_spark"


class FeatureWriter(StorePart):
    def __init__(
        self,
        session: SessionSource,
        paths: StorePaths,
        catalog: Catalog,
        user: str,
        sensitive_tags: frozenset[str],
        duplicates: str = "skip",
    ):
        super().__init__(session, paths, catalog, user)
        self._sensitive_tags = sensitive_tags
        self._duplicates = duplicates  # a batch equal to an earlier version's: "skip" (warn) or "refuse"
        self._checks: dict[tuple[str, datetime], _Checks] = {}
        self._checks_lock = threading.Lock()

    def _checks_for(self, table: FeatureTable, now: datetime) -> _Checks:
        """The rules of a definition as Spark Columns, built once per definition and hour (the
        plausibility bound is the only part that moves): building them is some thousands of
        py4j calls, about 0.8 s a write for 20 features."""
        key = (table.definition_hash(), latest_plausible(table, now))
        with self._checks_lock:
            found = self._checks.get(key)
        if found is None:
            rules = row_rules(table, now)
            found = _Checks(rules, duplicate_rule(table), any_broken(rules), broken_labels(rules))
            with self._checks_lock:
                if len(self._checks) > 64:
                    self._checks.clear()
                self._checks[key] = found
        return found

    def write(
        self,
        table: FeatureTable,
        revision: int,
        df: DataFrame,
        *,
        mode: Mode = "strict",
        write_id: str | None = None,
        source: SourceInfo | None = None,
        run: RunRef | None = None,
        cast: str = "none",
        on_commit: Callable[[Commit | None], None] | None = None,
    ) -> FeatureVersion:
        """Validate and commit one batch as a new feature version, or return the version an
        earlier write of it made. `on_commit` hears of this call's own commit only (None when
        the batch added no rows), so a caller can tell a new version from a returned one."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        batch = conform(df, table, cast)
        digest = None
        if write_id is None:  # identity from content: one extra aggregation pass
            step("reading the batch's content digest")
            digest = M.content_digest(batch, table)
            write_id = f"content:{digest}"
        path = self.paths.table(table.name, table.definition_version)
        with self.lock(table.name):
            state = write_state(self.catalog, table.name, table.definition_version, write_id, digest)
            if self._recover(table, path, state.last_delta_version):
                state = write_state(self.catalog, table.name, table.definition_version, write_id, digest)
            if state.version_id_for_write is not None:
                return self._retried(table, batch, write_id, state.version_id_for_write, digest)
            if state.version_id_for_content is not None:
                return self._duplicate(table, state.version_id_for_content)
            number = state.last_version_number + 1
            version_id = new_id()
            context = _Context(
                table, revision, version_id, number, write_id, mode, source or SourceInfo(), run or RunRef(), self.user
            )
            text = f"fs_spark write {table.name} v{table.definition_version} #{number} ({version_id})"
            with described(self.spark, describe(text, run)):
                return self._commit(context, batch, path, digest, on_commit)

    # --- the passes ---------------------------------------------------------------------------

    def _commit(self, ctx: _Context, batch: DataFrame, path: str, digest: str | None, on_commit) -> FeatureVersion:
        """The write job: the rules, the metrics and the content digest in the pass that writes,
        the rows unclustered (`optimize` lays them out later). The duplicate (key, event time)
        check is `_with_duplicate_count`'s; in strict mode a batch with duplicates is refused
        before anything is written."""
        table = ctx.table
        checks = self._checks_for(table, datetime.now(UTC))
        # of this batch's source types and parsing, not cached
        conversions = [*source_rules(batch, source_values(batch)), *parse_rules(batch, table)]
        rules, duplicates = [*checks.rules, *conversions], checks.duplicates
        columns = [name for name, _ in data_columns(table)]
        number = F.lit(ctx.number).cast("long")
        before = latest_version(self.spark, path)
        ctx.next_delta_version = before + 1 if before is not None else 0
        counted, repeated = _with_duplicate_count(batch, table)
        if ctx.mode == "strict":
            if repeated:
                withheld = set(table.tagged(self._sensitive_tags))
                raise ValidationError(table.name, diagnose(batch, table, [*rules, duplicates], withheld))
            checked = counted.withColumn(
                _BAD_COLUMN, checks.any_broken | any_broken(conversions) if conversions else checks.any_broken
            )
            checked, content = _observe_content(checked, table, digest)
            # The details come from `diagnose` afterwards; a constant keeps the hot path small.
            failure = F.raise_error(F.lit(f"{_MARKER} in {table.name}")).cast("long")
            bad = F.col(_BAD_COLUMN) | duplicates.broken
            out = checked.withColumn(VERSION_COLUMN, F.when(bad, failure).otherwise(number)).select(columns)
            step("validating and writing")
            try:
                self._append(out, path, ctx, digest)
            except Exception as exc:
                if _MARKER in str(exc):
                    step("listing the broken rules")
                    withheld = set(table.tagged(self._sensitive_tags))
                    raise ValidationError(table.name, diagnose(batch, table, [*rules, duplicates], withheld)) from None
                raise
            batch_rows, counts = None, {}
        else:
            whole = Observation("fs_spark_batch")
            labels = F.concat(checks.labels, broken_labels(conversions)) if conversions else checks.labels
            checked = counted.withColumn(_RULES_COLUMN, labels)
            labels = F.when(duplicates.broken, F.concat(F.col(_RULES_COLUMN), F.array(F.lit(duplicates.label))))
            checked = checked.withColumn(_RULES_COLUMN, labels.otherwise(F.col(_RULES_COLUMN)))
            checked, content = _observe_content(checked, table, digest)
            checked = checked.observe(
                whole,
                F.count(F.lit(1)).alias("rows"),
                *M.label_counts(_RULES_COLUMN, [r.label for r in [*rules, duplicates]]),
            )
            out = checked.where(F.size(_RULES_COLUMN) == 0).withColumn(VERSION_COLUMN, number).select(columns)
            step("validating and writing")
            self._append(out, path, ctx, digest)
            batch_rows = int(whole.get["rows"])
            counts = M.rule_counts(whole.get)
        commit = self._own_commit(path, ctx.version_id, before)
        file_stats = added_file_stats(self.spark, path, commit.version) if commit else M.NO_FILES
        bad_rows = 0 if batch_rows is None else batch_rows - file_stats["rows"]
        if content is not None:  # every version records its batch's digest, whatever its write_id
            digest = D.digest_of(content.get)
        version = self._version_record(ctx, path, commit, before, out.schema, digest, file_stats, bad_rows)
        step("committing", rows=file_stats["rows"])
        events = []
        if bad_rows:
            step("quarantining", rows=bad_rows)
            events.append(self._quarantine(ctx, checked, bad_rows, counts))
        self.catalog.append(FEATURE_VERSIONS, [version.to_row()])
        self.catalog.append(QUARANTINE_EVENTS, events)
        if on_commit is not None:
            on_commit(commit)
        return version

    def _append(self, out: DataFrame, path: str, ctx: _Context, digest: str | None) -> None:
        """One Delta append; if it fails (a refused batch fails it on purpose), the files its
        finished tasks left in the table folder are removed, so nothing of it remains.

        No Delta `txnAppId`: a retry is recognised by its write_id under the table's lock, from
        the catalog or, when a writer died after its commit, from the commit's userMetadata
        (`_recover`). Delta's own check rebuilt the table's state in three Spark jobs a write;
        measured again for streams' micro-batches (20k rows), it still added 0.4 s to a 0.6 s
        write, for a guarantee the write identity already gives."""
        began = int(time.time() * 1000) - 2000  # file times may be coarse
        try:
            with only_commit(self.spark, path, ctx.next_delta_version):
                (
                    out.write.format("delta")
                    .mode("append")
                    .option("userMetadata", json.dumps({METADATA_KEY: ctx.metadata(digest)}, sort_keys=True))
                    .save(path)
                )
        except Exception as error:
            if was_fenced(error):  # the lock is another writer's now: its files may be in flight
                raise LockLostError(
                    ctx.table.name,
                    path,
                    f"nothing was committed: #{ctx.number} was not written (another writer has committed since); "
                    "write the batch again",
                ) from None
            remove_uncommitted(self.spark, path, began)
            raise

    def _quarantine(self, ctx: _Context, flagged: DataFrame, bad_rows: int, counts: dict[str, int]) -> dict[str, Any]:
        table = ctx.table
        path = self.paths.quarantine(table.name, table.definition_version)
        bad = flagged.where(F.size(_RULES_COLUMN) > 0).select(
            *[c for c, _ in data_columns(table) if c != VERSION_COLUMN],
            _RULES_COLUMN,
            F.lit(ctx.version_id).alias("_fs_version_id"),
            F.lit(ctx.write_id).alias("_fs_write_id"),
            F.current_timestamp().alias("_fs_quarantined_at"),
        )
        withheld = set(table.tagged(self._sensitive_tags))
        if withheld and not DeltaTable.isDeltaTable(self.spark, path):
            create_quarantine(self.spark, path, bad.schema, withheld)
        bad.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
        return {
            "event_id": new_id(),
            "table_name": table.name,
            "definition_version": table.definition_version,
            "version_id": ctx.version_id,
            "write_id": ctx.write_id,
            "quarantine_path": path,
            "quarantine_delta_version": latest_version(self.spark, path),
            "row_count": bad_rows,
            "rule_counts_json": json.dumps(counts, sort_keys=True),
            "user": self.user,
            "at": datetime.now(UTC),
        }

    # --- commit bookkeeping -------------------------------------------------------------------

    def _own_commit(self, path: str, version_id: str, before: int | None) -> Commit | None:
        """This write's Delta commit; None when the write added no rows (an empty batch, or one
        whose every row was quarantined), for which Delta records no commit."""
        commit = latest_commit(self.spark, path)
        if commit.version == before:
            return None
        meta = json.loads(commit.user_metadata or "{}").get(METADATA_KEY, {})
        if meta.get("version_id") != version_id:
            raise FsSparkError(
                f"the latest commit of {path} is not this write ({version_id}); "
                "something wrote to the table without fs_spark's lock"
            )
        return commit

    def _version_record(self, ctx, path, commit, before, schema, digest, file_stats, bad_rows) -> FeatureVersion:
        """`before`: the table's Delta version before this write, the version of a write that committed nothing."""
        stats, ts_min, ts_max = M.version_stats(ctx.table, file_stats, set(ctx.table.tagged(self._sensitive_tags)))
        return FeatureVersion(
            **ctx.provenance(),
            delta_version=commit.version if commit else (before or 0),
            committed_at=commit.timestamp if commit else datetime.now(UTC),
            storage_path=path,
            content_digest=digest,
            row_count=file_stats["rows"],
            quarantined_row_count=bad_rows,
            schema_hash="sha256:" + hashlib.sha256(schema.json().encode()).hexdigest(),
            stats_json=stats,
            event_time_min=ts_min,
            event_time_max=ts_max,
        )

    def _duplicate(self, table: FeatureTable, version_id: str) -> FeatureVersion:
        """A batch with no write_id whose rows equal a version's, written under another identity."""
        existing = self.catalog.version(version_id)
        if existing is None:
            raise FsSparkError(f"feature version {version_id} of {table.name} is not in the catalog")
        if self._duplicates == "refuse":
            raise DuplicateBatchError(table.name, existing.version_number, version_id, existing.write_id)
        warnings.warn(
            f"batch for {table.name!r} has exactly the rows of version #{existing.version_number} ({version_id}, "
            f"write_id {existing.write_id!r}); nothing was written, that version is returned",
            DuplicateBatchWarning,
            stacklevel=4,
        )
        return existing

    def _retried(self, table, batch, write_id, version_id, digest) -> FeatureVersion:
        existing = self.catalog.version(version_id)
        if existing is None:
            raise FsSparkError(f"feature version {version_id} of {table.name} is not in the catalog")
        stored = existing.content_digest or M.content_digest(self._stored_batch(table, existing), table)
        if (digest or M.content_digest(batch, table)) != stored:
            raise WriteConflictError(table.name, write_id, version_id)
        return existing

    def _stored_batch(self, table: FeatureTable, version: FeatureVersion) -> DataFrame:
        """The batch a version was written from: its committed rows plus its quarantined rows."""
        types = {name: dtype for name, dtype in data_columns(table) if name != VERSION_COLUMN}

        def columns(frame: DataFrame) -> list:
            return [F.col(c) if c in frame.columns else F.lit(None).cast(t).alias(c) for c, t in types.items()]

        reader = self.spark.read.format("delta").option("versionAsOf", version.delta_version)
        committed = reader.load(version.storage_path).where(F.col(VERSION_COLUMN) == version.version_number)
        batch = conform(committed.select(columns(committed)), table)
        if version.quarantined_row_count:
            path = self.paths.quarantine(table.name, table.definition_version)
            bad = self.spark.read.format("delta").load(path).where(F.col("_fs_version_id") == version.version_id)
            batch = batch.unionByName(conform(bad.select(columns(bad)), table))
        return batch

    def _recover(self, table: FeatureTable, path: str, last_recorded: int | None) -> bool:
        """Record commits that reached Delta but not the catalog (a writer died in between)."""
        latest = latest_version(self.spark, path)
        if latest is None or latest <= (last_recorded if last_recorded is not None else 0):
            return False
        history = (
            DeltaTable.forPath(self.spark, path)
            .history()
            .where(F.col("version") > (last_recorded if last_recorded is not None else -1))
        )
        missing = []
        for commit in history.where(F.col("userMetadata").isNotNull()).orderBy("version").collect():
            meta = json.loads(commit.userMetadata).get(METADATA_KEY)
            if not meta:
                continue
            rows = int((commit.operationMetrics or {}).get("numOutputRows", 0))
            missing.append(
                FeatureVersion(
                    **{k: meta.get(k) for k in _Context.PROVENANCE_FIELDS},
                    parents=meta.get("parents") or [],
                    source_start=_parse(meta.get("source_start")),
                    source_end=_parse(meta.get("source_end")),
                    delta_version=commit.version,
                    committed_at=from_spark(commit.timestamp),
                    storage_path=path,
                    content_digest=meta.get("content_digest"),
                    row_count=rows,
                    schema_hash="unknown:recovered",
                    recovered=True,
                ).to_row()
            )
        self.catalog.append(FEATURE_VERSIONS, missing)
        return bool(missing)


def diagnose(batch: DataFrame, table: FeatureTable, rules, withheld: set[str]) -> list[Violation]:
    """Every broken rule of a batch with its count and one example value, in one job. The example
    of a rule that would show a `withheld` feature's value (one tagged sensitive) is not read:
    the error travels on, into the `metrics` table, logs and lineage events, where such a value
    must not go."""
    aggregates = []
    for i, rule in enumerate(rules):
        aggregates.append(F.sum(rule.broken.cast("long")).alias(f"n{i}"))
        hidden = sorted(withheld.intersection(rule.shows))
        shown = F.lit(f"withheld ({', '.join(hidden)}: tagged sensitive)") if hidden else _shortened(rule.example())
        aggregates.append(F.first(F.when(rule.broken, shown), ignorenulls=True).alias(f"e{i}"))
    row = with_duplicate_count(batch, table).agg(*aggregates).collect()[0]
    return [
        Violation(rule.subject, rule.rule, int(row[f"n{i}"]), row[f"e{i}"])
        for i, rule in enumerate(rules)
        if row[f"n{i}"]
    ]


EXAMPLE_LIMIT = 80


# Past this many repeated (key, event time) pairs, they are joined back by a shuffle, not sent
# to every task.
_BROADCAST_PAIRS = 1_000_000


def _with_duplicate_count(batch: DataFrame, table: FeatureTable) -> tuple[DataFrame, int | None]:
    """`batch` with DUPLICATE_COUNT (the rows sharing each row's key and event time), and how
    many pairs repeat (None: not counted apart, the write's own pass finds them). A small batch
    is one sorted partition (`layout`), counted by a window with no shuffle, in the write's
    pass. A large one is not reordered: the repeated pairs are found first by an aggregation
    over the key and event-time columns alone (one narrow job), and joined back only when there
    are any, NULL keys matching NULL keys as in a window."""
    if is_small(batch):
        return with_duplicate_count(layout(batch, table), table), None
    columns = [*table.keys, table.event_time]
    renamed = [f"_fs_pair{i}" for i in range(len(columns))]
    pairs = (
        batch.groupBy(*columns)
        .count()
        .where(F.col("count") > 1)
        .select(
            *[F.col(c).alias(r) for c, r in zip(columns, renamed, strict=True)], F.col("count").alias(DUPLICATE_COUNT)
        )
    )
    repeated = pairs.count()
    if not repeated:
        return batch.withColumn(DUPLICATE_COUNT, F.lit(1).cast("long")), 0
    joined = F.broadcast(pairs) if repeated <= _BROADCAST_PAIRS else pairs
    on = [batch[c].eqNullSafe(joined[r]) for c, r in zip(columns, renamed, strict=True)]
    counted = batch.join(joined, on, "left").drop(*renamed)
    return counted.withColumn(DUPLICATE_COUNT, F.coalesce(F.col(DUPLICATE_COUNT), F.lit(1).cast("long"))), repeated


def _observe_content(
    checked: DataFrame, table: FeatureTable, digest: str | None
) -> tuple[DataFrame, Observation | None]:
    """`checked` observing its batch's content digest in the write's own pass, unless it is
    known already (computed first, when it is the write's identity)."""
    if digest is not None:
        return checked, None
    content = Observation("fs_spark_content")
    return checked.observe(content, *D.digest_aggregates(M.content_columns(table))), content


def _shortened(example: Column) -> Column:
    """An example cut to a readable length in the job, so a huge value never reaches the driver
    or the message whole."""
    length = F.length(example)
    cut = F.concat(F.substring(example, 1, EXAMPLE_LIMIT), F.lit("... ("), length.cast("string"), F.lit(" characters)"))
    return F.when(length > EXAMPLE_LIMIT, cut).otherwise(example)


@dataclass(frozen=True)
class _Checks:
    rules: list[RowRule]
    duplicates: RowRule
    any_broken: Column  # strict mode: does the row break any rule
    labels: Column  # quarantine mode: the labels of the rules it breaks


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class _Context:
    """Everything one write records about itself."""

    PROVENANCE_FIELDS = (
        "version_id",
        "table_name",
        "definition_version",
        "definition_revision",
        "version_number",
        "write_id",
        "mode",
        "user",
        "source_description",
        "transformation_fingerprint",
        "transformation_json",
        "experiment_id",
        "run_id",
        "hypothesis",
    )

    def __init__(self, table, revision, version_id, number, write_id, mode, source: SourceInfo, run: RunRef, user):
        self.table = table
        self.revision = revision
        self.version_id = version_id
        self.number = number
        self.write_id = write_id
        self.mode = mode
        self.source = source
        self.run = run
        self.user = user
        self.next_delta_version = 0  # the one Delta version the commit may take (`storage.fence`)

    def provenance(self) -> dict[str, Any]:
        t = self.table.transformation
        return {
            "version_id": self.version_id,
            "table_name": self.table.name,
            "definition_version": self.table.definition_version,
            "definition_revision": self.revision,
            "version_number": self.number,
            "write_id": self.write_id,
            "mode": self.mode,
            "user": self.user,
            "source_description": self.source.description
            or (self.table.source.description if self.table.source else None),
            "source_start": self.source.start,
            "source_end": self.source.end,
            "transformation_fingerprint": t.fingerprint if t else None,
            "transformation_json": json.dumps(t.model_dump(mode="json"), sort_keys=True) if t else None,
            "parents": list(self.table.parents),
            "experiment_id": self.run.experiment_id,
            "run_id": self.run.run_id,
            "hypothesis": self.run.hypothesis,
        }

    def metadata(self, digest: str | None) -> dict[str, Any]:
        """What the Delta commit carries (its userMetadata), enough to rebuild the catalog row."""
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.provenance().items()}
        out["content_digest"] = digest
        return out
