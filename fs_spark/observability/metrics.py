"""The figures of every data path: latency, rows, bytes, errors by class and retries.

Each store owns one `StoreMetrics` (a Prometheus registry of its own, not the process-global one):
`fs-spark serve` exposes it at `/metrics`, a batch job can push it to a Pushgateway after each
operation, and each operation is also one row of the catalog's `metrics` table, so the history is
queryable with Spark SQL. Online reads are counted in the registry only: a row per lookup would
cost more than the lookup.

The Spark side comes from Spark: the jobs an operation started (those of its thread's job group
that were not there before it) and, per stage, Spark's own task counts, failed task attempts and
stage attempts from the status tracker; a stream's rates, batch times and offsets behind from its
query progress reports. Bytes written to Delta come from its commit (`numOutputBytes`); bytes
read are what the operation's stages read, from their input metrics (a drift check counts these
as its bytes); bytes to and from the online store are the encoded keys and values sent, and the
values fetched.
Recording never fails the operation it measures: a figure that cannot be kept is logged.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, push_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from fs_spark.config import ObservabilitySettings
from fs_spark.ids import new_id
from fs_spark.provenance import RunRef

log = logging.getLogger("fs_spark.metrics")

OPERATIONS = (
    "ingest",
    "stream",
    "training_set",
    "materialize",
    "optimize",
    "replicate",
    "drift",
    "anomalies",
    "reconcile",
)
_BUS_WAIT_MS = 2000
_SECONDS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


@dataclass
class Measure:
    """What one operation reports while it runs: the rows and bytes it moved, its retries."""

    operation: str
    table: str | None
    run: RunRef | None = None
    rows: int = 0
    bytes: int = 0
    retries: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    bytes_are_read: bool = False  # its bytes are what its Spark stages read, not what it wrote

    def add(self, rows: int = 0, bytes: int = 0) -> None:
        self.rows += rows
        self.bytes += bytes

    def retried(self, times: int = 1) -> None:
        self.retries += times


@dataclass(frozen=True)
class SparkFigures:
    """Spark's own counts for the jobs one operation started."""

    jobs: int = 0
    stages: int = 0
    tasks: int = 0
    failed_tasks: int = 0
    stage_retries: int = 0
    input_bytes: int = 0


class StoreMetrics:
    """The store's registry and the recorder of each measured operation.

    Args:
        settings: the `observability` section (the catalog table, the Pushgateway).
        spark_context: the running SparkContext or None; never starts Spark.
        keep: appends one operation's row to the catalog's `metrics` table.
        user: the principal recorded with each row.
    """

    def __init__(
        self,
        settings: ObservabilitySettings,
        spark_context: Callable[[], Any],
        keep: Callable[[dict[str, Any]], None],
        user: str,
    ):
        self.settings = settings
        self.registry = CollectorRegistry()
        self._context = spark_context
        self._keep = keep
        self._user = user
        self._instance = f"{socket.gethostname()}:{os.getpid()}"
        self._push_lock = threading.Lock()
        labels = ["operation"]
        self.seconds = Histogram(
            "fs_spark_operation_seconds", "Latency of each operation", labels, buckets=_SECONDS, registry=self.registry
        )
        self.rows = Counter("fs_spark_operation_rows", "Rows moved", labels, registry=self.registry)
        self.bytes = Counter(
            "fs_spark_operation_bytes", "Bytes written (bytes read, for a drift check)", labels, registry=self.registry
        )
        self.spark_input_bytes = Counter(
            "fs_spark_operation_spark_input_bytes",
            "Bytes the operation's Spark stages read",
            labels,
            registry=self.registry,
        )
        self.errors = Counter(
            "fs_spark_operation_errors", "Failed operations by error class", [*labels, "error"], registry=self.registry
        )
        self.retries = Counter(
            "fs_spark_operation_retries",
            "Retries: Spark task attempts and stage attempts that failed, and retried writes",
            labels,
            registry=self.registry,
        )
        self.spark_tasks = Counter(
            "fs_spark_operation_spark_tasks", "Spark tasks the operation ran", labels, registry=self.registry
        )
        for operation in OPERATIONS:  # every series exists from the start, at zero
            for metric in (self.seconds, self.rows, self.bytes, self.retries, self.spark_tasks, self.spark_input_bytes):
                metric.labels(operation)
        self.online_reads = OnlineReads()
        self.registry.register(self.online_reads)
        self.streams = StreamProgress()
        self.registry.register(self.streams)
        self.recording_seconds = 0.0  # time spent recording figures, for the overhead benchmark

    @contextmanager
    def measure(self, operation: str, table: str | None = None, run: RunRef | None = None) -> Iterator[Measure]:
        """Time the block and record its figures, also when it fails (then its error class).

        Example:
            >>> with store.metrics.measure("ingest", "customer_activity") as m:  # doctest: +SKIP
            ...     m.add(rows=1000, bytes=52_000)
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown operation {operation!r}; there are {OPERATIONS}")
        measure = Measure(operation, table, run)
        context = self._context()
        before = _group_jobs(context) if context is not None else set()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            yield measure
        except BaseException as failure:
            error = failure
            raise
        finally:
            seconds = time.perf_counter() - started
            try:
                self._record(measure, seconds, error, before)
            except Exception as failure:  # the figures of an operation never fail it
                log.warning("fs_spark could not record the figures of %s: %s", operation, failure)
            self.recording_seconds += time.perf_counter() - started - seconds

    def observe_online_read(self, seconds: float, rows: int, error: BaseException | None = None) -> None:
        """One online lookup, into the registry only (a catalog row per lookup would cost more)."""
        self.online_reads.observe(seconds, rows, error)

    def _record(self, measure: Measure, seconds: float, error: BaseException | None, before: set[int]) -> None:
        context = self._context()
        spark = _spark_figures(context, before) if context is not None else SparkFigures()
        operation = measure.operation
        retries = measure.retries + spark.failed_tasks + spark.stage_retries
        moved = measure.bytes + (spark.input_bytes if measure.bytes_are_read else 0)
        self.seconds.labels(operation).observe(seconds)
        self.rows.labels(operation).inc(measure.rows)
        self.bytes.labels(operation).inc(moved)
        self.spark_input_bytes.labels(operation).inc(spark.input_bytes)
        self.retries.labels(operation).inc(retries)
        self.spark_tasks.labels(operation).inc(spark.tasks)
        if error is not None:
            self.errors.labels(operation, type(error).__name__).inc()
        if self.settings.metrics_table:
            self._keep(
                {
                    "operation_id": new_id(),
                    "operation": operation,
                    "table_name": measure.table,
                    "started_at": measure.started_at,
                    "seconds": seconds,
                    "rows": measure.rows,
                    "bytes": moved,
                    "retries": retries,
                    "error_class": type(error).__name__ if error is not None else None,
                    "error": str(error)[:2000] if error is not None else None,
                    "spark_jobs": spark.jobs,
                    "spark_stages": spark.stages,
                    "spark_tasks": spark.tasks,
                    "spark_failed_tasks": spark.failed_tasks,
                    "spark_input_bytes": spark.input_bytes,
                    "run_id": measure.run.run_id if measure.run else None,
                    "experiment_id": measure.run.experiment_id if measure.run else None,
                    "user": self._user,
                    "instance": self._instance,
                    "tags_json": _json(measure.tags),
                }
            )
        if self.settings.pushgateway:
            self.push()

    def push(self) -> None:
        """Push the whole registry to the Pushgateway, grouped by job name and this process."""
        if not self.settings.pushgateway:
            raise ValueError("observability.pushgateway is not set")
        with self._push_lock:
            push_to_gateway(
                self.settings.pushgateway,
                job=self.settings.push_job,
                registry=self.registry,
                grouping_key={"instance": self._instance},
                timeout=self.settings.push_timeout_seconds,
            )


class OnlineReads(Collector):
    """The online reads' latency histogram, rows and errors: plain counts under one lock, made
    into Prometheus series when scraped. A read takes tens of microseconds; the client library's
    own histogram, a lock per bucket, cost 3% of it (`bench/observability.py`)."""

    BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = [0] * (len(self.BUCKETS) + 1)
        self._sum = 0.0
        self._rows = 0
        self._bytes = 0
        self._errors: dict[str, int] = {}

    def observe(self, seconds: float, rows: int, error: BaseException | None = None) -> None:
        slot = bisect.bisect_left(self.BUCKETS, seconds)
        with self._lock:
            self._counts[slot] += 1
            self._sum += seconds
            self._rows += rows
            if error is not None:
                name = type(error).__name__
                self._errors[name] = self._errors.get(name, 0) + 1

    def fetched(self, size: int) -> None:
        """Bytes of vectors one read fetched from the online store (the cache's misses)."""
        with self._lock:
            self._bytes += size

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total, rows, errors = list(self._counts), self._sum, self._rows, dict(self._errors)
            size = self._bytes
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, self.BUCKETS), "+Inf"), counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "fs_spark_online_read_seconds", "Latency of each online read", buckets=buckets, sum_value=total
        )
        yield CounterMetricFamily("fs_spark_online_read_rows", "Entity rows read online", value=rows)
        yield CounterMetricFamily(
            "fs_spark_online_read_bytes", "Bytes of vectors fetched from the online store (cache misses)", value=size
        )
        failed = CounterMetricFamily("fs_spark_online_read_errors", "Failed online reads by class", labels=["error"])
        for name, count in sorted(errors.items()):
            failed.add_metric([name], count)
        yield failed


class StreamProgress(Collector):
    """Spark's own progress reports of the store's streams (StreamingQueryProgress, as
    `stream_progress` rows), by stream name: the input rows so far, the latest report's rates and
    offsets behind the source's latest, and the last micro-batch that read rows, its ID and time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Any]] = {}
        self._rows: dict[str, int] = {}

    def report(self, row: dict[str, Any]) -> None:
        name = row["stream_name"]
        with self._lock:
            previous = self._latest.get(name)
            if previous is not None and not row["input_rows"]:  # an idle report: no batch ran
                row = {**row, "duration_ms": previous["duration_ms"], "batch_id": previous["batch_id"]}
            self._latest[name] = row
            self._rows[name] = self._rows.get(name, 0) + row["input_rows"]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            latest, rows = dict(self._latest), dict(self._rows)
        total = CounterMetricFamily("fs_spark_stream_input_rows", "Rows read by the stream", labels=["stream"])
        for name, count in sorted(rows.items()):
            total.add_metric([name], count)
        yield total
        gauges = (
            ("input_rows_per_second", "input_rows_per_second", "Rows a second arriving, last report"),
            ("processed_rows_per_second", "processed_rows_per_second", "Rows a second processed, last report"),
            ("batch_seconds", "duration_ms", "The last micro-batch's trigger execution time"),
            ("batch_id", "batch_id", "The last reported micro-batch"),
            ("offsets_behind_latest", "offsets_behind_latest", "Offsets behind the source's latest (Kafka)"),
        )
        for suffix, field_name, text in gauges:
            gauge = GaugeMetricFamily(f"fs_spark_stream_{suffix}", text, labels=["stream"])
            for name, row in sorted(latest.items()):
                value = row.get(field_name)
                if value is not None:
                    gauge.add_metric([name], value / 1000 if field_name == "duration_ms" else value)
            yield gauge


def _json(tags: dict[str, str]) -> str | None:
    return json.dumps(tags, sort_keys=True) if tags else None


def _group_jobs(context: Any) -> set[int]:
    """The IDs of the jobs Spark keeps for this thread's job group (or for no group)."""
    group = context.getLocalProperty("spark.jobGroup.id")
    return set(context.statusTracker().getJobIdsForGroup(group))


def _spark_figures(context: Any, before: set[int]) -> SparkFigures:
    """Spark's counts for the jobs of this thread's group that started since `before`. Spark's
    status store is fed by its listener bus, asynchronously: the bus is drained first (at most
    `_BUS_WAIT_MS`), so the last tasks' figures are in."""
    jvm_context = context._jsc.sc()
    try:
        jvm_context.listenerBus().waitUntilEmpty(_BUS_WAIT_MS)
    except Exception as failure:  # a figure may then miss the last tasks; the operation goes on
        log.warning("Spark's listener bus did not drain in %d ms: %s", _BUS_WAIT_MS, failure)
    status = jvm_context.statusStore()
    tracker = context.statusTracker()
    stages: set[int] = set()
    jobs = _group_jobs(context) - before
    for job in jobs:
        info = tracker.getJobInfo(job)
        if info is not None:
            stages.update(info.stageIds)
    tasks = failed = retried = run = read = 0
    for stage in stages:
        info = tracker.getStageInfo(stage)
        if info is None or info.numCompletedTasks + info.numFailedTasks == 0:  # skipped: its output was reused
            continue
        run += 1
        tasks += info.numCompletedTasks
        failed += info.numFailedTasks
        retried += info.currentAttemptId
        read += _input_bytes(status, stage)
    return SparkFigures(len(jobs), run, tasks, failed, retried, read)


def _input_bytes(status: Any, stage: int) -> int:
    """What the stage's last attempt read (0 once Spark no longer keeps the stage)."""
    try:
        return int(status.lastStageAttempt(stage).inputBytes())
    except Exception:
        return 0
