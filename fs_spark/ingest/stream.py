"""Streaming ingestion: a Structured Streaming query whose every micro-batch is one validated
write, exactly once across crashes and restarts.

Each micro-batch goes through the batch write path (`fs_spark.ingest.writer`) in `foreachBatch`,
so it is validated in the same one pass, in strict mode (a bad micro-batch stops the query with
the batch path's ValidationError, nothing of it committed) or quarantine mode.

Exactly once. Spark logs a micro-batch's source offsets in the checkpoint before it runs, and
after a crash runs the same batch ID over the same offsets again. The micro-batch's write
identity is `stream:<name>:<batch id>`: the re-run finds it, under the table's lock, in the
catalog, or (when the crash fell between the Delta commit and the catalog row) in the commit's
own metadata, which the writer records first (`_recover`), checks the re-read batch equal to
what was committed, and commits nothing a second time. This is the guarantee Delta's
idempotent-write options (`txnAppId`/`txnVersion`) give `foreachBatch`, kept by the write path
that batch retries already use; those options are not set, because Delta's check of them added
0.4 s to each micro-batch's 0.6 s write (20k rows, measured) for nothing the lock does not do.

Versions: one feature version per micro-batch, so every version is still one Delta commit with
its own statistics, quarantine and rollback work on stream data as on batches, and a training
set records exactly what it read. The trigger interval sets how many versions a stream makes:
the default, one micro-batch a minute, is 1,440 versions a day per table; a shorter trigger
buys freshness for more versions. The catalog parses only the version rows appended since it
last looked, not every row at every write.

Online write-through (`online=True`): a thread of the stream's own materializes each commit
(incrementally: the new versions only), so the next micro-batch never waits for the online
write, and commits made meanwhile are served together.

Provenance: each version's `source_description` is JSON naming the stream, its query ID, the
batch ID and the source offsets the batch covered (from the checkpoint's offset log), and the
run it belongs to is recorded as for any write. Progress (rows, rates, offsets behind the
source's latest) comes from Spark's own `StreamingQueryProgress`, through a listener, into the
`stream_progress` catalog table.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import STREAM_PROGRESS, STREAMS
from fs_spark.errors import FsSparkError, first_line
from fs_spark.ids import new_id
from fs_spark.ingest.writer import MODES, Mode
from fs_spark.names import check_name
from fs_spark.provenance import RunRef, SourceInfo
from fs_spark.session import jvm
from fs_spark.storage.delta_log import read_text

DEFAULT_TRIGGER = "1 minute"
WRITE_ID_PREFIX = "stream:"
_FLUSH_SECONDS = 5.0  # progress rows wait at most this long before their catalog commit


class StreamNotStreamingError(FsSparkError):
    def __init__(self, table: str):
        super().__init__(
            f"write_stream into {table!r} needs a streaming DataFrame (spark.readStream...); "
            "for a batch DataFrame use write()"
        )


def write_id(stream: str, batch_id: int) -> str:
    """The write identity of one micro-batch of a stream."""
    return f"{WRITE_ID_PREFIX}{stream}:{batch_id}"


def batch_of(version: FeatureVersion) -> tuple[str, int] | None:
    """(stream name, batch ID) of a version a stream wrote, else None."""
    if not version.write_id.startswith(WRITE_ID_PREFIX):
        return None
    name, _, batch = version.write_id[len(WRITE_ID_PREFIX) :].rpartition(":")
    return (name, int(batch)) if batch.isdigit() else None


def logged_offsets(spark: SparkSession, checkpoint: str, batch_id: int) -> list[Any]:
    """The source offsets of one micro-batch, from the checkpoint's offset log (written by Spark
    before the batch runs): one entry per source, as Spark wrote it (JSON where it is JSON)."""
    text = read_text(spark, f"{checkpoint.rstrip('/')}/offsets/{batch_id}")
    if text is None:
        return []
    offsets: list[Any] = []
    for line in text.splitlines()[2:]:  # a format line, the batch's metadata, then one line per source
        try:
            offsets.append(json.loads(line))
        except ValueError:
            offsets.append(line)
    return offsets


def query_id(spark: SparkSession, checkpoint: str) -> str:
    """The query's ID, which Spark keeps in the checkpoint and which survives restarts."""
    text = read_text(spark, f"{checkpoint.rstrip('/')}/metadata")
    if text is None:
        raise FsSparkError(f"the checkpoint {checkpoint} has no metadata file; Spark has not started the query")
    return str(json.loads(text.splitlines()[0])["id"])


@dataclass(frozen=True)
class StreamTarget:
    """What one stream writes: its name, table, mode and where it keeps its checkpoint."""

    name: str
    table: str
    mode: Mode
    checkpoint: str
    online: bool
    run: RunRef | None
    source: str


WriteBatch = Callable[..., FeatureVersion]


class FeatureStream:
    """A running stream into a feature table: the Spark query, and the versions it committed in
    this process. `await_termination` raises the error that stopped it as fs_spark raised it
    (a ValidationError naming the feature, column and rule), not Spark's wrapper of it."""

    def __init__(self, target: StreamTarget, recorder: ProgressRecorder):
        self.target = target
        self._recorder = recorder
        self.query: StreamingQuery | None = None
        self.versions: list[FeatureVersion] = []
        self.failure: BaseException | None = None
        self.online: OnlineFollower | None = None

    def fail(self, error: BaseException) -> None:
        """Stop the query because of `error` (the online write-through's), which its waiters raise."""
        self.failure = error
        if self.query is not None:
            self.query.stop()

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def id(self) -> str:
        return str(self._query().id)

    def _query(self) -> StreamingQuery:
        if self.query is None:
            raise FsSparkError(f"the stream {self.name!r} has not started")
        return self.query

    @property
    def is_active(self) -> bool:
        return self._query().isActive

    def process_all_available(self) -> None:
        """Block until every row available now is committed (and, with online write-through,
        servable): for tests and notebooks."""
        try:
            self._query().processAllAvailable()
        except Exception as exc:
            self._raise(exc)
        if self.online is not None:
            self.online.wait()
        if self.failure is not None:
            raise self.failure

    def await_termination(self, timeout: int | None = None) -> bool:
        """Wait for the query to end (True) or `timeout` seconds to pass (False); when it ended,
        its last progress reports are in the catalog before this returns."""
        query = self._query()
        try:
            if timeout is None:
                query.awaitTermination()
                ended = True
            else:
                ended = bool(query.awaitTermination(timeout))
        except Exception as exc:
            self._finish()
            self._raise(exc)
        if ended:
            self._finish()
            if self.failure is not None:
                raise self.failure
        return ended

    def stop(self) -> None:
        self._query().stop()
        self._finish()

    def _finish(self) -> None:
        """After the query ended: the online store brought up to its last commit, its last
        progress reports in the catalog."""
        if self.online is not None:
            self.online.close()
        self._recorder.drain(self.id)

    def _raise(self, exc: Exception) -> NoReturn:
        if self.failure is not None:
            raise self.failure from None
        raise exc


class StreamIngestion:
    """Starts streams into feature tables and records their progress."""

    def __init__(
        self,
        spark: Callable[[], SparkSession],
        catalog: Catalog,
        write_batch: WriteBatch,
        materialize: Callable[[str, RunRef | None], Any],
        user: str,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ):
        self._spark = spark
        self._on_progress = on_progress
        self._catalog = catalog
        self._write_batch = write_batch
        self._materialize = materialize
        self._user = user
        self._listener: ProgressRecorder | None = None
        self._listener_lock = threading.Lock()

    def start(self, target: StreamTarget, frame: DataFrame, *, trigger: str, available_now: bool) -> FeatureStream:
        if not frame.isStreaming:
            raise StreamNotStreamingError(target.table)
        if target.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {target.mode!r}")
        check_name(target.name, "stream")
        check_kafka_sources(self._spark(), frame)
        recorder = self._recorder()
        stream = FeatureStream(target, recorder)
        if target.online:
            stream.online = OnlineFollower(
                target.name, lambda: self._materialize(target.table, target.run), stream.fail
            )
        writer = frame.writeStream.queryName(target.name).option("checkpointLocation", target.checkpoint)
        writer = writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=trigger)
        started = datetime.now(UTC)  # before the first micro-batch can commit
        stream.query = writer.foreachBatch(self._micro_batch(stream)).start()
        recorder.watch(str(stream.query.id), target.name)
        self._catalog.append(STREAMS, [self._start_row(stream, trigger, available_now, started)])
        return stream

    def _start_row(
        self, stream: FeatureStream, trigger: str | None, available_now: bool, started: datetime
    ) -> dict[str, Any]:
        target, query = stream.target, stream._query()
        return {
            "stream_event_id": new_id(),
            "stream_name": target.name,
            "table_name": target.table,
            "query_id": str(query.id),
            "spark_run_id": str(query.runId),
            "checkpoint": target.checkpoint,
            "source_description": target.source,
            "mode": target.mode,
            "trigger": "availableNow" if available_now else trigger,
            "online": target.online,
            "run_id": target.run.run_id if target.run else None,
            "user": self._user,
            "started_at": started,
        }

    def _micro_batch(self, stream: FeatureStream) -> Callable[[DataFrame, int], None]:
        target = stream.target

        def write(batch: DataFrame, batch_id: int) -> None:
            # The write reads its batch more than once (the range partitioner's sample, then the
            # write); held in memory, the source is read once, and Spark's row counts are right.
            batch.persist()
            try:
                spark = batch.sparkSession
                query = query_id(spark, target.checkpoint)
                source = SourceInfo(
                    description=json.dumps(
                        {
                            "stream": target.name,
                            "query_id": query,
                            "batch_id": batch_id,
                            "offsets": logged_offsets(spark, target.checkpoint, batch_id),
                            "source": target.source,
                        },
                        sort_keys=True,
                    )
                )
                version = self._write_batch(
                    target.table,
                    batch,
                    mode=target.mode,
                    write_id=write_id(target.name, batch_id),
                    source=source,
                    run=target.run,
                )
                stream.versions.append(version)
                if stream.online is not None:
                    stream.online.signal()
            except BaseException as exc:
                stream.failure = exc
                raise
            finally:
                batch.unpersist()

        return write

    def _recorder(self) -> ProgressRecorder:
        with self._listener_lock:
            if self._listener is None:
                self._listener = ProgressRecorder(self._catalog, self._on_progress)
                self._spark().streams.addListener(self._listener)
            return self._listener

    def flush(self) -> None:
        """Commit the progress rows not yet in the catalog (done every few seconds and when a
        query ends)."""
        if self._listener is not None:
            self._listener.flush()


class OnlineFollower:
    """Brings the online store up to a stream's commits in a thread of its own, so a micro-batch
    never waits for the online write: each commit asks for a materialization (incremental: the
    new versions only), and commits made while one runs are served together by the next. An
    error stops the stream (`on_error`) with that error."""

    def __init__(self, name: str, materialize: Callable[[], Any], on_error: Callable[[BaseException], None]):
        self._materialize = materialize
        self._on_error = on_error
        self._changed = threading.Condition()
        self._asked = self._served = 0
        self._closing = self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"fs_spark online {name}", daemon=True)
        self._thread.start()

    def signal(self) -> None:
        with self._changed:
            self._asked += 1
            self._changed.notify_all()

    def wait(self, timeout: float = 300.0) -> None:
        """Block until every commit signalled so far is servable (or the follower stopped)."""
        with self._changed:
            wanted = self._asked
            self._changed.wait_for(lambda: self._served >= wanted or self._stopped, timeout)

    def close(self, timeout: float = 300.0) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._asked > self._served or self._closing)
                    if self._asked == self._served:  # closing, nothing left to serve
                        return
                    asked = self._asked
                self._materialize()
                with self._changed:
                    self._served = asked
                    self._changed.notify_all()
        except BaseException as error:
            self._on_error(error)
        finally:
            with self._changed:
                self._stopped = True
                self._changed.notify_all()


class ProgressRecorder(StreamingQueryListener):
    """Spark's progress reports of fs_spark's streams, into the `stream_progress` catalog table,
    a few seconds' worth per commit, and each to `on_progress` (the store's metrics)."""

    def __init__(self, catalog: Catalog, on_progress: Callable[[dict[str, Any]], None] | None = None):
        self._catalog = catalog
        self._on_progress = on_progress
        self._names: dict[str, str] = {}
        self._rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._ended = threading.Condition(self._lock)
        self._terminated: set[str] = set()
        self._last_flush = time.monotonic()

    def watch(self, query: str, name: str) -> None:
        with self._lock:
            self._names[query] = name

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 (Spark's names)
        pass

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        progress = event.progress
        name = self._names.get(str(progress.id))
        if name is None:
            return
        row = progress_row(name, progress)
        if self._on_progress is not None:
            self._on_progress(row)
        with self._lock:
            self._rows.append(row)
            due = time.monotonic() - self._last_flush >= _FLUSH_SECONDS
        if due:
            self.flush()

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        with self._lock:
            if str(event.id) not in self._names:
                return
            self._terminated.add(str(event.id))
            self._ended.notify_all()
        self.flush()

    def drain(self, query: str, timeout: float = 10.0) -> None:
        """Wait for Spark's termination event of `query` (Spark posts it after the query's last
        progress report), then commit what is buffered."""
        with self._lock:
            self._ended.wait_for(lambda: query in self._terminated, timeout)
        self.flush()

    def flush(self) -> None:
        """Commit the buffered rows; a flush that finds another under way waits for it, so
        after any flush returns every row buffered before it is in the catalog."""
        with self._flushing:
            with self._lock:
                rows, self._rows = self._rows, []
                self._last_flush = time.monotonic()
            self._catalog.append(STREAM_PROGRESS, rows)


def progress_row(name: str, progress: Any) -> dict[str, Any]:
    """One `stream_progress` row from a StreamingQueryProgress."""
    behind = []
    for source in progress.sources:
        metrics = source.metrics or {}
        if "maxOffsetsBehindLatest" in metrics:
            behind.append(int(float(metrics["maxOffsetsBehindLatest"])))
    return {
        "stream_name": name,
        "query_id": str(progress.id),
        "spark_run_id": str(progress.runId),
        "batch_id": int(progress.batchId),
        "at": datetime.fromisoformat(progress.timestamp.replace("Z", "+00:00")),
        "input_rows": int(progress.numInputRows),
        "input_rows_per_second": float(progress.inputRowsPerSecond or 0.0),
        "processed_rows_per_second": float(progress.processedRowsPerSecond or 0.0),
        "duration_ms": int((progress.durationMs or {}).get("triggerExecution", 0)),
        "offsets_behind_latest": max(behind) if behind else None,
        "end_offsets_json": json.dumps([source.endOffset for source in progress.sources]),
    }


def default_checkpoint(root: str, name: str) -> str:
    return f"{root}/_streams/{check_name(name, 'stream')}/checkpoint"


_SOURCE_OPTIONS = ("subscribe", "subscribePattern", "assign", "kafka.bootstrap.servers", "path")


def _sources(frame: DataFrame) -> list[tuple[str, dict[str, str]]]:
    """Each streaming source of `frame`'s plan: its format and options, as Spark prints them."""
    try:
        leaves = frame._jdf.queryExecution().analyzed().collectLeaves().iterator()
        plans = []
        while leaves.hasNext():
            plans.append(str(leaves.next().simpleString(1000)))
    except Exception:  # a plan Spark cannot print: nothing to tell
        return []
    found = []
    for plan in plans:
        match = _RELATION.search(plan)
        if match is not None:
            fmt = match.group("v2") or match.group("v1")
            found.append((fmt, dict(_OPTION.findall(match.group("o2") or match.group("o1") or ""))))
    return found


def describe_source(frame: DataFrame) -> str:
    """What a streaming DataFrame reads: each source's format and where it reads from (topics,
    servers, paths), from Spark's plan. Other options (credentials among them) are left out."""
    return "; ".join(
        f"{fmt}[{', '.join(f'{k}={options[k]}' for k in _SOURCE_OPTIONS if k in options)}]"
        for fmt, options in _sources(frame)
    )


KAFKA_CHECK_SECONDS = 10.0


def check_kafka_sources(spark: SparkSession, frame: DataFrame, seconds: float = KAFKA_CHECK_SECONDS) -> None:
    """Before a stream starts: every Kafka source's brokers answer within `seconds` and its
    subscribed topics exist. Spark would otherwise fail later with errors that name neither
    (a missing topic after about 11 s, brokers that cannot be reached after minutes)."""
    for fmt, options in _sources(frame):
        servers = options.get("kafka.bootstrap.servers")
        if fmt != "kafka" or not servers or any("redacted" in v for v in options.values()):
            continue  # not Kafka, or options Spark does not show whole (credentials): Spark checks
        topics = [t.strip() for t in options.get("subscribe", "").split(",") if t.strip()]
        existing = _kafka_topics(spark, servers, options, seconds)
        missing = [t for t in topics if t not in existing]
        if missing:
            raise StreamSourceError(
                f"Kafka at {servers} has no topic {', '.join(map(repr, missing))}; it has {sorted(existing)[:20]}"
            )


def _kafka_topics(spark: SparkSession, servers: str, options: dict[str, str], seconds: float) -> set[str]:
    """The topics of the Kafka cluster at `servers`, asked with Kafka's own admin client (the
    connector's jar, in the JVM) and the source's `kafka.*` options."""
    view = jvm(spark)
    millis = str(int(seconds * 1000))
    props = view.java.util.Properties()
    for key, value in options.items():
        if key.startswith("kafka."):
            props.put(key.removeprefix("kafka."), value)
    props.put("bootstrap.servers", servers)
    for key in ("request.timeout.ms", "default.api.timeout.ms", "socket.connection.setup.timeout.max.ms"):
        props.put(key, millis)
    admin = view.org.apache.kafka.clients.admin.AdminClient.create(props)
    try:
        names = admin.listTopics().names().get(int(millis), view.java.util.concurrent.TimeUnit.MILLISECONDS)
        return {str(name) for name in names}
    except Exception as exc:
        if "Timeout" in str(exc):
            raise StreamSourceError(
                f"Kafka at {servers} did not answer within {seconds:.0f} s: check the servers"
            ) from None
        raise StreamSourceError(f"Kafka at {servers} refused to list its topics: {first_line(exc)}") from None
    finally:
        admin.close(view.java.time.Duration.ofMillis(500))


class StreamSourceError(FsSparkError):
    """A stream's source that cannot be read: its servers or its topic."""


# Spark prints a streaming source as `StreamingRelationV2 <provider>, kafka, <table>, [k=v, ...]`
# or `StreamingRelation DataSource(<session>,json,...,Map(path -> /x),None)`.
_RELATION = re.compile(
    r"StreamingRelationV2 [^,]+, (?P<v2>\w+), [^\[]*\[(?P<o2>[^\]]*)\]"
    r"|StreamingRelation DataSource\([^,]+,(?P<v1>\w+),.*?Map\((?P<o1>[^)]*)\)"
)
_OPTION = re.compile(r"([\w.]+)(?:=| -> )([^,\]\)]+)")
