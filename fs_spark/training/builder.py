"""Building, storing and rebuilding training sets.

A build (1) resolves every lookup to the exact feature version and Delta version it reads,
(2) writes the entity rows, numbered, as a Delta table, (3) runs the point-in-time join over
them and writes the result as a Delta table, observing its content digest on the way, and
(4) appends the manifest to the catalog. Rebuilding reads the same Delta versions of every
input and checks the digest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark import digest as D
from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import TRAINING_SETS
from fs_spark.definitions.registry import Registry
from fs_spark.definitions.types import FeatureType, parse_duration
from fs_spark.errors import (
    EntityColumnError,
    FeatureLookupError,
    ReplayMismatchError,
    TrainingSetInputExpiredError,
    TrainingSetNotFoundError,
    VersionExpiredError,
)
from fs_spark.ids import new_id
from fs_spark.integrations.mlflow import MlflowBridge
from fs_spark.lineage.openlineage import LineageEvents
from fs_spark.progress import step
from fs_spark.provenance import RunRef, require_utc
from fs_spark.session import SessionSource
from fs_spark.spark_jobs import describe, described
from fs_spark.storage.delta_log import latest_version
from fs_spark.storage.layout import VERSION_COLUMN, kept_stats_columns, write_new_table
from fs_spark.storage.paths import StorePaths
from fs_spark.storage.reader import load_delta_version, readable_delta_version, rows_up_to
from fs_spark.training.entities import check_columns, check_zone, instants, numbered
from fs_spark.training.lookups import FeatureLookup, as_lookups, check_outputs
from fs_spark.training.manifest import LookupFeature, ResolvedLookup, TrainingSetManifest
from fs_spark.training.pit_join import ROW_COLUMN, JoinSide, point_in_time_join
from fs_spark.training.training_set import TrainingSet
from fs_spark.version import __version__
from fs_spark.versions.resolver import VersionResolver
from fs_spark.versions.series import excluded, refuse_quarantined
from fs_spark.versions.status import quarantined as quarantined_versions

_MICROS = timedelta(microseconds=1)
CONTEXTS = ("training", "validation", "scoring")  # scoring: the features looked up for score_batch


class _Clock:
    """Seconds spent in each phase of a build, so the cost of the records is known, not guessed."""

    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def _default_ok(dtype: FeatureType, value: Any) -> bool:
    if dtype.is_numeric:
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (dtype.is_floating or isinstance(value, int))
        )
    return {
        FeatureType.BOOL: lambda v: isinstance(v, bool),
        FeatureType.STRING: lambda v: isinstance(v, str),
        FeatureType.DATE: lambda v: isinstance(v, date) and not isinstance(v, datetime),
        FeatureType.TIMESTAMP: lambda v: isinstance(v, datetime) and v.tzinfo is not None,
    }[dtype](value)


def _picked(index: int) -> str:
    """The column carrying the `_fs_version` of the row lookup `index` picked (never stored)."""
    return f"__fs_picked{index}"


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


class TrainingSets:
    """The training-set part of a store: build, open, list and rebuild."""

    def __init__(
        self,
        session: SessionSource,
        paths: StorePaths,
        catalog: Catalog,
        registry: Registry,
        versions: VersionResolver,
        mlflow: MlflowBridge,
        events: LineageEvents,
        user: str,
        partitions: int | None,
        sensitive_tags: frozenset[str] = frozenset(),
    ):
        self._session = session
        self._sensitive_tags = sensitive_tags
        self._paths = paths
        self._catalog = catalog
        self._registry = registry
        self._versions = versions
        self._mlflow = mlflow
        self._events = events
        self._user = user
        self.partitions = partitions

    @property
    def spark(self) -> SparkSession:
        return self._session()

    # --- resolving lookups --------------------------------------------------------------------

    def _pick_version(self, lookup: FeatureLookup, as_of: datetime | None):
        versions, table = self._versions, lookup.table_name
        if lookup.delta_version is not None:
            return versions.at_delta_version(table, lookup.delta_version)
        if lookup.version is not None:
            return versions.resolve(table, lookup.version)
        return versions.resolve(table, None, as_of)

    def resolve(
        self, lookup: FeatureLookup, entity: DataFrame, as_of: datetime | None, quarantined: dict[str, str]
    ) -> ResolvedLookup:
        name = lookup.table_name
        version, following = self._pick_version(lookup, as_of)
        applied = (
            self._registry.at_version(name, version.definition_version) if version else self._registry.current(name)
        )
        table = applied.definition
        every = self._catalog.versions(name)
        if version is not None:
            refuse_quarantined(every, version, quarantined)
        wanted = list(lookup.feature_names or table.feature_names)
        unknown = [f for f in wanted if f not in table.feature_names]
        if unknown:
            raise FeatureLookupError(name, f"no feature(s) {unknown}; it has {list(table.feature_names)}")
        for feature, value in lookup.default_values.items():
            if feature not in wanted:
                raise FeatureLookupError(name, f"default_values names {feature!r}, which the lookup does not take")
            dtype = table.feature(feature).dtype
            if value is not None and not _default_ok(dtype, value):
                raise FeatureLookupError(name, f"default for {feature!r} must be a {dtype.value} value, not {value!r}")
        for feature in lookup.rename_outputs:
            if feature not in wanted:
                raise FeatureLookupError(name, f"rename_outputs names {feature!r}, which the lookup does not take")
        entity_keys = tuple(lookup.lookup_key or table.keys)
        if len(entity_keys) != len(table.keys):
            raise FeatureLookupError(
                name, f"lookup_key {list(entity_keys)} must name one entity column per key {list(table.keys)}"
            )
        key_types = table.entity.keys
        for column, key in zip(entity_keys, table.keys, strict=True):
            if column not in entity.columns:
                raise EntityColumnError(column, f"is the lookup key for {name}.{key} but is missing", entity.columns)
            found = entity.schema[column].dataType
            integral = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
            want_string = key_types[key] == FeatureType.STRING
            if (want_string and not isinstance(found, T.StringType)) or (
                not want_string and not isinstance(found, integral)
            ):
                raise EntityColumnError(
                    column, f"is {found.simpleString()} but key {name}.{key} is {key_types[key].value}"
                )
        lookback = lookup.lookback or (parse_duration(table.ttl) if table.ttl else None)
        delta_version = None
        if version is not None:
            delta_version = readable_delta_version(
                applied.storage_path, version, following, partial(latest_version, self.spark)
            )
        return ResolvedLookup(
            table_name=name,
            definition_version=table.definition_version,
            storage_path=applied.storage_path,
            version_id=version.version_id if version else None,
            version_number=version.version_number if version else None,
            delta_version=delta_version,
            keys=tuple(table.keys),
            event_time=table.event_time,
            key_types=tuple(key_types[k].spark_type.simpleString() for k in table.keys),
            entity_keys=entity_keys,
            entity_time=lookup.timestamp_lookup_key or table.event_time,
            features=tuple(
                LookupFeature(
                    name=f,
                    output=lookup.output_name(f),
                    spark_type=table.feature(f).dtype.spark_type.simpleString(),
                    default=_json_value(lookup.default_values.get(f)),
                )
                for f in wanted
            ),
            lookback_micros=lookback // _MICROS if lookback else None,
            excluded_versions=excluded(every, version),
        )

    # --- reading inputs -----------------------------------------------------------------------

    def _feature_rows(self, lookup: ResolvedLookup, training_set_id: str | None = None) -> DataFrame:
        """The lookup's feature rows at its Delta version (no rows when nothing was written)."""
        columns = [*lookup.keys, lookup.event_time, VERSION_COLUMN, *[f.name for f in lookup.features]]
        types = [*lookup.key_types, "timestamp", "long", *[f.spark_type for f in lookup.features]]
        if lookup.delta_version is None:
            schema = T.StructType(
                [T.StructField(c, T._parse_datatype_string(t)) for c, t in zip(columns, types, strict=True)]
            )
            return self.spark.createDataFrame([], schema)
        frame = self._read_delta(
            lookup.storage_path, lookup.delta_version, lookup.table_name, lookup.version_id, training_set_id
        )
        frame = rows_up_to(frame, lookup.version_number, lookup.excluded_versions)
        present = set(frame.columns)
        return frame.select(
            [(F.col(c) if c in present else F.lit(None)).cast(t).alias(c) for c, t in zip(columns, types, strict=True)]
        )

    def _read_delta(
        self, path: str, delta_version: int, what: str, version: Any, training_set_id: str | None
    ) -> DataFrame:
        def expired(detail: str) -> Exception:
            if training_set_id:
                return TrainingSetInputExpiredError(training_set_id, what, version, detail)
            return VersionExpiredError(what, version, detail)

        return load_delta_version(self.spark, path, delta_version, expired)

    def _join(
        self,
        entities: DataFrame,
        lookups: list[ResolvedLookup],
        label: list[str],
        exclude: list[str],
        training_set_id: str | None = None,
        picked: bool = False,
    ) -> DataFrame:
        sides = [
            JoinSide(
                entity_keys=lk.entity_keys,
                entity_time=lk.entity_time,
                table_keys=lk.keys,
                table_time=lk.event_time,
                version_column=VERSION_COLUMN,
                features=self._feature_rows(lk, training_set_id),
                outputs=tuple((f.name, f.output) for f in lk.features),
                lookback_micros=lk.lookback_micros,
                defaults=tuple((f.output, f.default) for f in lk.features if f.default is not None),
            )
            for lk in lookups
        ]
        if picked:  # each lookup also carries the `_fs_version` of the row it picked
            sides = [replace(s, outputs=(*s.outputs, (VERSION_COLUMN, _picked(i)))) for i, s in enumerate(sides)]
        joined = point_in_time_join(entities, sides, self.partitions)
        kept = [c for c in entities.columns if c not in exclude and c not in label and c != ROW_COLUMN]
        outputs = [f.output for lk in lookups for f in lk.features]
        extra = [_picked(i) for i in range(len(lookups))] if picked else []
        return joined.select(ROW_COLUMN, *kept, *outputs, *label, *extra)

    # --- building -----------------------------------------------------------------------------

    def create(
        self,
        df: DataFrame,
        feature_lookups: Sequence[FeatureLookup | str],
        *,
        label: str | Sequence[str] | None = None,
        exclude_columns: Sequence[str] = (),
        as_of: datetime | None = None,
        timezone_name: str | None = None,
        name: str | None = None,
        path: str | None = None,
        run: RunRef | None = None,
        context: str = "training",
        allow_quarantined: bool = False,
    ) -> TrainingSet:
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, not {context!r}")
        with self._events.job("training_set", run=run) as job:
            built = self._create(
                df,
                feature_lookups,
                label,
                exclude_columns,
                as_of,
                timezone_name,
                name,
                path,
                run,
                context,
                allow_quarantined,
            )
            for lookup in built.lookups:
                if lookup.delta_version is not None:
                    job.input(lookup.storage_path, lookup.delta_version)
            job.input(built.manifest.entity_path, built.manifest.entity_delta_version)
            job.output(
                built.manifest.output_path, built.manifest.output_delta_version, {"fs_spark.training_set_id": built.id}
            )
        built.timings["openlineage"] = job.emit_seconds
        return built

    def _create(
        self,
        df,
        feature_lookups,
        label,
        exclude_columns,
        as_of,
        timezone_name,
        name,
        path,
        run,
        context,
        allow_quarantined,
    ) -> TrainingSet:
        clock = _Clock()
        lookups = as_lookups(feature_lookups)
        if not lookups:
            raise ValueError("a training set needs at least one feature lookup")
        labels = [label] if isinstance(label, str) else list(label or [])
        exclude = list(exclude_columns)
        as_of = require_utc(as_of, "as_of")
        zone = check_zone(timezone_name)
        check_columns(df, [*labels, *exclude])
        quarantined = {} if allow_quarantined else quarantined_versions(self._catalog)
        resolved = [self.resolve(lookup, df, as_of, quarantined) for lookup in lookups]
        self._check_outputs(resolved, df.columns, labels, exclude)
        clock.lap("resolve")

        training_set_id = new_id()
        entity_path = self._paths.training_set(training_set_id, "entities")
        output_path = path or self._paths.training_set(training_set_id, "data")
        mlflow_run_id = (run.mlflow_run_id if run else None) or self._mlflow.active_run_id()
        commit_metadata = json.dumps(
            {
                "fs_spark": {
                    "training_set_id": training_set_id,
                    "run_id": run.run_id if run else None,
                    "experiment_id": run.experiment_id if run else None,
                    "mlflow_run_id": mlflow_run_id,
                }
            },
            sort_keys=True,
        )
        with described(self.spark, describe(f"fs_spark training set {training_set_id}", run)):
            entities = numbered(instants(df, [r.entity_time for r in resolved], zone))
            step("storing the entity rows")
            entity_metrics = self._write(entities, entity_path, commit_metadata)
            stored = self.spark.read.format("delta").option("versionAsOf", 0).load(entity_path)
            result = self._join(stored, resolved, labels, exclude, picked=True)
            step("joining and writing", rows=int(entity_metrics["rows"]))
            picks = [_picked(i) for i in range(len(resolved))]
            metrics = self._write(result, output_path, commit_metadata, picks, self.withheld(resolved))
            result = result.drop(*picks)
            resolved = [
                r.model_copy(update={"supplied_by": self._suppliers(r, metrics[_picked(i)])})
                for i, r in enumerate(resolved)
            ]
        clock.lap("join_and_write")
        manifest = TrainingSetManifest(
            training_set_id=training_set_id,
            name=name,
            created_at=datetime.now(UTC),
            user=self._user,
            entity_path=entity_path,
            entity_delta_version=0,
            entity_digest=D.digest_of(entity_metrics),
            entity_row_count=int(entity_metrics["rows"]),
            label=labels,
            exclude_columns=exclude,
            as_of=as_of,
            timezone=zone,
            lookups_json=json.dumps([r.model_dump(mode="json") for r in resolved], sort_keys=True),
            feature_version_ids=[r.version_id for r in resolved if r.version_id],
            supplying_version_ids=sorted({v for r in resolved for v in r.supplied_by or ()}),
            output_path=output_path,
            output_delta_version=0,
            output_schema_json=result.schema.json(),
            content_digest=D.digest_of(metrics),
            row_count=int(metrics["rows"]),
            fs_spark_version=__version__,
            spark_version=self.spark.version,
            experiment_id=run.experiment_id if run else None,
            run_id=run.run_id if run else None,
            context=context if run or mlflow_run_id else None,
            mlflow_run_id=mlflow_run_id,
        )
        if mlflow_run_id:
            self._mlflow.log_training_set(mlflow_run_id, manifest, context)
        clock.lap("mlflow")
        self._catalog.append(TRAINING_SETS, [manifest.to_row()])
        clock.lap("catalog")
        built = TrainingSet(
            self.spark, manifest, self.spark.read.format("delta").option("versionAsOf", 0).load(output_path)
        )
        built.timings.update(clock.laps)
        return built

    @staticmethod
    def _check_outputs(
        resolved: list[ResolvedLookup], columns: list[str], labels: list[str], exclude: list[str]
    ) -> None:
        check_outputs(
            ((lookup.table_name, feature.name, feature.output) for lookup in resolved for feature in lookup.features),
            columns,
        )
        for column in labels:
            if column in exclude:
                raise EntityColumnError(column, "is both a label and excluded")

    def withheld(self, resolved: Sequence[ResolvedLookup]) -> set[str]:
        """The output columns of features tagged sensitive (now): a training set's Delta log (or
        its predictions') keeps no statistics of them, as their feature table's does not."""
        out: set[str] = set()
        for lookup in resolved:
            tagged = set(self._registry.current(lookup.table_name).definition.tagged(self._sensitive_tags))
            out.update(f.output for f in lookup.features if f.name in tagged)
        return out

    def _write(
        self,
        frame: DataFrame,
        path: str,
        commit_metadata: str,
        picks: Sequence[str] = (),
        withheld: set[str] | None = None,
    ) -> dict[str, Any]:
        """Write `frame` as a new Delta table, with no statistics of the `withheld` columns; return
        its digest metrics, observed on the way, and for each column of `picks` (left out of the
        table) its distinct values, as text."""
        observation = Observation("fs_spark_digest")
        columns = [c for c in frame.columns if c not in picks]
        observed = frame.observe(
            observation,
            *D.digest_aggregates(columns),
            *[F.concat_ws(",", F.collect_set(F.col(p).cast("string"))).alias(p) for p in picks],
        ).select(columns)
        kept = kept_stats_columns(observed.schema, withheld or set())
        write_new_table(observed, path, kept, userMetadata=commit_metadata)
        return observation.get

    def _suppliers(self, lookup: ResolvedLookup, picked: str) -> tuple[str, ...]:
        """The version IDs of the `_fs_version` numbers the join picked for `lookup`."""
        numbers = {int(n) for n in picked.split(",") if n}
        ids = {
            v.version_number: v.version_id
            for v in self._catalog.versions(lookup.table_name)
            if v.definition_version == lookup.definition_version
        }
        return tuple(ids[n] for n in sorted(numbers) if n in ids)

    # --- opening and rebuilding ---------------------------------------------------------------

    def manifests(self) -> list[TrainingSetManifest]:
        rows = sorted(self._catalog.rows(TRAINING_SETS.name), key=lambda r: r["training_set_id"])
        return [TrainingSetManifest.from_row(r) for r in rows]

    def manifest(self, training_set_id: str) -> TrainingSetManifest:
        for row in self._catalog.rows(TRAINING_SETS.name):
            if row["training_set_id"] == training_set_id:
                return TrainingSetManifest.from_row(row)
        raise TrainingSetNotFoundError(training_set_id)

    def open(self, training_set_id: str) -> TrainingSet:
        manifest = self.manifest(training_set_id)
        frame = self._read_delta(
            manifest.output_path,
            manifest.output_delta_version,
            "training set data",
            manifest.output_delta_version,
            training_set_id,
        )
        return TrainingSet(self.spark, manifest, frame)

    def rebuild(self, training_set_id: str, verify: bool = True) -> TrainingSet:
        manifest = self.manifest(training_set_id)
        entities = self._read_delta(
            manifest.entity_path,
            manifest.entity_delta_version,
            "entity rows",
            manifest.entity_delta_version,
            training_set_id,
        )
        with described(self.spark, f"fs_spark rebuild of training set {training_set_id}"):
            frame = self._join(entities, manifest.lookups, manifest.label, manifest.exclude_columns, training_set_id)
            schema = T.StructType.fromJson(json.loads(manifest.output_schema_json))
            frame = frame.select([F.col(f.name).cast(f.dataType) for f in schema.fields])
            if verify:
                found = D.frame_digest(frame)
                if found != manifest.content_digest:
                    raise ReplayMismatchError(training_set_id, manifest.content_digest, found)
        return TrainingSet(self.spark, manifest, frame)
