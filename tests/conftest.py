"""One shared Delta-enabled SparkSession for the whole run; a fresh store root per test."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import S3Settings, Settings, SparkSettings, StoreSettings
from fs_spark.session import build_local_session, hadoop_conf, s3a_conf
from fs_spark.storage.s3 import client as s3_client
from servers import s3_server

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)

# Credentials for the S3 server the tests start (moto takes any), set before the session's JVM
# starts so that S3A, boto3, delta-rs and pyarrow find them in the AWS default chain.
for _name, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                      ("AWS_EC2_METADATA_DISABLED", "true")):
    os.environ.setdefault(_name, _value)

# The JVMs the tests start in subprocesses (spark-submit jobs, drivers killed and restarted, a
# second host) live for seconds on a few rows: the C1 compiler alone and the serial collector start
# them faster and with a third less CPU (measured on the ingest job: 22 s -> 19 s, 34 -> 20 s of
# CPU). The shared session below keeps the JVM's defaults: it is built without these options.
SUBPROCESS_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
os.environ.setdefault("SPARK_SUBMIT_OPTS", SUBPROCESS_JVM_OPTIONS)


# On the tests' few rows, planning costs more than running: whole-stage code generation (a Janino
# compile per new plan) and adaptive re-planning took a fifth of the in-process tests' time
# (measured on four modules: 242 s -> 187 s). The shared session plans without them; the modules
# that check results against independent oracles run as production does (`production_plans`).
TEST_PLANS = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false"}


@pytest.fixture(scope="session")
def spark():
    options = os.environ.pop("SPARK_SUBMIT_OPTS", None)  # for subprocesses only
    try:
        session = build_local_session(SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="2g",
                                                    conf=TEST_PLANS))
    finally:
        if options is not None:
            os.environ["SPARK_SUBMIT_OPTS"] = options
    session.sparkContext.setLogLevel("OFF")  # tests provoke failing jobs on purpose
    yield session
    session.stop()


@pytest.fixture
def production_plans(spark):
    """Spark's own defaults for planning (code generation, adaptive execution), for one test."""
    for key in TEST_PLANS:
        spark.conf.set(key, "true")
    yield
    for key, value in TEST_PLANS.items():
        spark.conf.set(key, value)


def make_store(spark, root, s3: S3Settings | None = None) -> FeatureStore:
    settings = Settings(store=StoreSettings(root=str(root), user="tester"), s3=s3 or S3Settings())
    return FeatureStore(spark=spark, settings=settings)


def mlflow_store(folder, *experiments: str) -> str:
    """A sqlite MLflow tracking store in `folder`, with `experiments` made beforehand so their
    artifacts stay in `folder` too: a store of a sqlite URI keeps them under ./mlruns."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    for name in experiments:
        client.create_experiment(name, artifact_location=(folder / "artifacts" / name).as_uri())
    return uri


@pytest.fixture(scope="session")
def s3(spark, tmp_path_factory) -> S3Settings:
    """An S3 server (moto) for the run, and the shared session's S3A pointed at it."""
    with s3_server(tmp_path_factory.mktemp("s3")) as url:
        settings = S3Settings(endpoint=url, region="us-east-1", path_style_access=True)
        conf = hadoop_conf(spark)
        for key, value in s3a_conf(settings).items():
            conf.set(key, value)
        yield settings


def new_bucket(s3: S3Settings) -> str:
    bucket = f"fs-{uuid.uuid4().hex[:16]}"
    s3_client(s3).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_store(spark, s3) -> FeatureStore:
    """A store whose root is `s3a://<a new bucket>/store`."""
    return make_store(spark, f"s3a://{new_bucket(s3)}/store", s3)


@pytest.fixture
def store(spark, tmp_path) -> FeatureStore:
    return make_store(spark, tmp_path / "store")


def activity_table(**changes) -> FeatureTable:
    """A small table with one feature of each kind of rule."""
    table = FeatureTable(
        name="customer_activity",
        entity=Entity(name="customer", keys={"customer_id": "long"}),
        event_time="event_ts",
        features=[
            Feature(name="spend_7d", dtype="double", min_value=0, unit="eur", owner="growth"),
            Feature(name="min_7d", dtype="double", allow_nan=True),
            Feature(name="max_7d", dtype="double", allow_nan=True),
            Feature(name="visits", dtype="int", nullable=False, min_value=0, max_value=1000),
            Feature(name="segment", dtype="string", allowed_values=("new", "loyal", "lapsed")),
        ],
        rules=[{"name": "min_le_max", "expression": "min_7d <= max_7d"}],
        owner="growth",
        tags=("demo",),
    )
    return table.with_(**changes) if changes else table


ACTIVITY_SCHEMA = (
    "customer_id long, event_ts timestamp, spend_7d double, min_7d double, max_7d double, visits int, segment string"
)


def activity_rows(n: int, start: int = 0, day_offset: int = 0) -> list[tuple]:
    return [
        (i, T0 + timedelta(days=day_offset + i % 60, hours=i % 24), float(i), 1.0, 2.0 + i, i % 100, "new")
        for i in range(start, start + n)
    ]


def batch_maker(spark):
    def batch(rows):
        return spark.createDataFrame(rows, ACTIVITY_SCHEMA)

    return batch


@pytest.fixture
def activity(store, spark):
    """The store with `customer_activity` applied, and a helper making batches of it."""
    store.apply(activity_table())
    return batch_maker(spark)


@pytest.fixture(scope="module")
def refusing_store(spark, tmp_path_factory):
    """A store with `customer_activity` applied, shared by tests whose writes all fail."""
    store = make_store(spark, tmp_path_factory.mktemp("refusing") / "store")
    store.apply(activity_table())
    return store


@pytest.fixture(scope="session")
def experiment(spark, tmp_path_factory):
    """One experiment run end to end (tests/experiment_scenario.py), built once; tests only read it."""
    from experiment_scenario import build
    from fs_spark.config import LineageSettings

    folder = tmp_path_factory.mktemp("experiment")
    events = folder / "openlineage.jsonl"
    lineage = LineageSettings(openlineage={"transport": {"type": "file", "log_file_path": str(events), "append": True}})
    settings = Settings(store=StoreSettings(root=str(folder / "store"), user="tester"), lineage=lineage)
    scenario = build(FeatureStore(spark=spark, settings=settings), spark)
    scenario.openlineage_file = events
    return scenario


@contextmanager
def short_retention(spark):
    """Let VACUUM take a retention shorter than Delta's 7-day safety check, for a test's VACUUM."""
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        yield
    finally:
        spark.conf.unset("spark.databricks.delta.retentionDurationCheck.enabled")


@contextmanager
def json_endpoint(status: int = 204):
    """A local HTTP endpoint standing in for a webhook or Marquez: yields its base URL and the
    list of (path, JSON body) it received; stopped and closed on exit."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the handler's API)
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """One real Redis for the run, on a free loopback port."""
    from servers import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.slow)])
def online_store(request, spark, tmp_path):
    """A store whose online side is the embedded SQLite file or a real Redis (emptied first)."""
    from fs_spark.config import OnlineSettings

    online = OnlineSettings()
    if request.param == "redis":
        import redis

        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushall()
        online = OnlineSettings(kind="redis", redis_url=url)
    settings = Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"), online=online)
    return FeatureStore(spark=spark, settings=settings)


def delta_min_values(path) -> dict:
    """Every column's smallest minimum in the statistics of the Delta log's add actions: the
    columns the log keeps statistics of, read off the JSON commits, not through Delta."""
    import json
    import os

    log = os.path.join(str(path).removeprefix("file:"), "_delta_log")
    found: dict = {}
    for name in sorted(n for n in os.listdir(log) if n.endswith(".json")):
        for line in open(os.path.join(log, name)):
            add = json.loads(line).get("add")
            if add and add.get("stats"):
                for column, value in json.loads(add["stats"]).get("minValues", {}).items():
                    found[column] = min(found.get(column, value), value)
    return found
