"""The HTTP feature server over real HTTP (uvicorn on a free loopback port): Feast's request and
response shape, statuses, feature services, tokens and policies, health, metrics, and a
Redis that is down."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
import uvicorn

from fs_spark import Entity, Feature, FeatureService, FeatureStore, FeatureTable
from fs_spark.config import GovernanceSettings, OnlineSettings, ServerSettings, Settings, StoreSettings
from fs_spark.online.server import create_app
from servers import free_port

NOW = datetime.now(timezone.utc)
PROFILE = FeatureTable(name="profile", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts", ttl="7d",
                       features=[Feature(name="age", dtype="int"), Feature(name="email", dtype="string", tags=("pii",)),
                                 Feature(name="seen", dtype="timestamp")])
ROWS = [(1, NOW - timedelta(hours=1), 30, "a@x.org", NOW - timedelta(days=1)),
        (2, NOW - timedelta(hours=2), None, None, None),
        (3, NOW - timedelta(days=30), 50, "old@x.org", None)]
POLICY = """
principals:
  alice: {roles: [analyst]}
rules:
  - {name: analysts_read, roles: [analyst], actions: [read], tables: ["profile"]}
  - {name: no_pii_for_analysts, roles: [analyst], actions: [read], tags: [pii], effect: deny}
"""


@contextmanager
def serving(store):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def call(url, path, body=None, token=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


@pytest.fixture(scope="module")
def profile_store(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    (folder / "policies.yaml").write_text(POLICY)
    store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(folder / "store"), user="tester")))
    store.apply(PROFILE, FeatureService(name="basics", lookups=["profile:age", "profile:seen"]))
    store.write("profile", spark.createDataFrame(ROWS, "customer_id long, ts timestamp, age int, email string, seen timestamp"))
    store.materialize("profile")
    return store, folder


def test_answers_in_feasts_shape_with_statuses_and_times(profile_store):
    store, _ = profile_store
    with serving(store) as url:
        status, body = call(url, "/get-online-features",
                            {"features": ["profile:age", "profile:seen"], "entities": {"customer_id": [1, 2, 3, 4]}})
        assert status == 200, body
        assert body["metadata"]["feature_names"] == ["customer_id", "age", "seen"]
        ids, age, seen = body["results"]
        assert ids["values"] == [1, 2, 3, 4] and ids["statuses"] == ["PRESENT"] * 4
        assert age["values"] == [30, None, None, None]
        assert age["statuses"] == ["PRESENT", "NULL_VALUE", "OUTSIDE_MAX_AGE", "NOT_FOUND"]
        assert seen["values"][0] == (NOW - timedelta(days=1)).isoformat().replace("+00:00", "Z")
        assert age["event_timestamps"][0] == ROWS[0][1].isoformat().replace("+00:00", "Z")
        assert age["event_timestamps"][3] == "1970-01-01T00:00:00Z"
        # a feature service, and Feast's full feature names
        status, named = call(url, "/get-online-features",
                             {"feature_service": "basics", "entities": {"customer_id": [1]}, "full_feature_names": True})
        assert status == 200 and named["metadata"]["feature_names"] == ["customer_id", "profile__age", "profile__seen"]
        assert named["results"][1]["values"] == [30]


@pytest.mark.parametrize("body, status, error", [
    ({"features": ["profile:agee"], "entities": {"customer_id": [1]}}, 404, "FeatureNotFoundError"),
    ({"features": ["nope:age"], "entities": {"customer_id": [1]}}, 404, "TableNotFoundError"),
    ({"features": ["profile:age"], "entities": {"customer_id": ["1"]}}, 400, "EntityColumnError"),
    ({"features": ["profile:age"], "entities": {"id": [1]}}, 400, "EntityColumnError"),
    ({"features": ["profile:age"], "entities": {}}, 400, "OnlineRequestError"),
    ({"features": ["profile:age"], "entities": {"customer_id": list(range(1001))}}, 400, "OnlineRequestError"),
    ({"features": ["profile:age"], "entities": {"customer_id": [1], "x": [1, 2]}}, 400, "OnlineRequestError"),
    ({"features": ["profile:age"], "feature_service": "basics", "entities": {"customer_id": [1]}}, 400, "OnlineRequestError"),
    ({"feature_service": "basix", "entities": {"customer_id": [1]}}, 404, "FeatureServiceNotFoundError"),
    ({"features": ["profile:age"], "entities": {"customer_id": [1]}, "colour": 1}, 400, "ValidationError"),
    (b"{not json", 400, "ValidationError"),
])
def test_bad_requests_get_one_clear_json_error(profile_store, body, status, error):
    store, _ = profile_store
    with serving(store) as url:
        got, answer = call(url, "/get-online-features", body)
    assert (got, answer["error"]) == (status, error), answer
    assert "\n" not in answer["detail"]


def test_callers_need_a_token_and_the_policy_applies_to_them(profile_store, spark):
    store, folder = profile_store
    governance = GovernanceSettings(policy_file=str(folder / "policies.yaml"))
    root = str(folder / "store")
    with pytest.raises(Exception, match="no anonymous access"):
        create_app(FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=root), governance=governance)))
    settings = Settings(store=StoreSettings(root=root, user="server"), governance=governance,
                        online=OnlineSettings(server=ServerSettings(tokens={"t-alice": "alice"})))
    governed = FeatureStore(spark=spark, settings=settings)
    ask = {"features": ["profile:age"], "entities": {"customer_id": [1]}}
    with serving(governed) as url:
        assert call(url, "/get-online-features", ask)[0] == 401
        assert call(url, "/get-online-features", ask, token="wrong")[0] == 401
        status, body = call(url, "/get-online-features", ask, token="t-alice")
        assert status == 200 and body["results"][1]["values"] == [30]
        status, body = call(url, "/get-online-features", {**ask, "features": ["profile:email"]}, token="t-alice")
        assert (status, body["error"]) == (403, "AccessDeniedError") and "no_pii_for_analysts" in body["detail"]
    audit = [(r["principal"], r["object"], r["decision"]) for r in store.catalog.rows("audit_log")]
    assert ("alice", "profile:email", "deny") in audit and ("alice", "profile:age", "allow") in audit


def _gauge(page: str, name: str) -> float:
    (line,) = [line for line in page.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


def _warmed(url: str) -> float:
    """Wait for the server's first health check, made at start in a thread; its seconds."""
    deadline = time.monotonic() + 30
    while (seconds := _gauge(call(url, "/metrics")[1], "fs_spark_health_warm_up_seconds")) == 0:
        assert time.monotonic() < deadline, "the server's first health check did not finish"
        time.sleep(0.05)
    return seconds


def test_health_and_metrics_report_figures(profile_store):
    store, _ = profile_store
    with serving(store) as url:
        for _ in range(3):
            call(url, "/get-online-features", {"features": ["profile:age"], "entities": {"customer_id": [1]}})
        call(url, "/get-online-features", {"features": ["profile:x"], "entities": {"customer_id": [1]}})
        warm_up = _warmed(url)
        status, health = call(url, "/health")
        status_metrics, metrics = call(url, "/metrics")
    assert 0 < warm_up < 30
    assert status == 200 and health["status"] == "ok", health
    online = health["checks"]["online_store"]
    assert online["status"] == "ok" and online["figure"] == 0  # it serves the latest version
    table = online["detail"]["tables"]["profile"]
    assert table["serves_version"] == table["latest_servable"] == 1 and table["staleness_seconds"] == 0
    cache = health["checks"]["cache"]
    assert cache["detail"]["hits"] >= 2 and 0 < cache["figure"] <= 1
    assert 0 <= cache["detail"]["oldest_entry_served_seconds"] < 60
    assert status_metrics == 200
    assert 'fs_spark_online_requests_total{endpoint="get-online-features",status="200"} 3.0' in metrics
    assert 'fs_spark_online_errors_total{error="FeatureNotFoundError"} 1.0' in metrics
    assert "fs_spark_online_request_seconds_bucket" in metrics


def test_health_answers_at_once_while_the_first_check_warms_up(profile_store, monkeypatch):
    """Until the server's first health check (its catalog read) is done, `/health` says so
    instead of making the same read in the request: the warm-up is held here until released."""
    import fs_spark.online.server as server

    release, real = threading.Event(), server.check_health

    def held_while_warming(*args, **kwargs):
        if threading.current_thread().name == "fs_spark-health-warm-up":
            release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(server, "check_health", held_while_warming)
    store, _ = profile_store
    with serving(store) as url:
        status, warming = call(url, "/health")
        assert _gauge(call(url, "/metrics")[1], "fs_spark_health_warm_up_seconds") == 0
        release.set()
        _warmed(url)
        status_after, health = call(url, "/health")
    assert status == 200 and warming["status"] == "degraded" and list(warming["checks"]) == ["warm_up"]
    assert "reading the catalog" in warming["checks"]["warm_up"]["detail"]["note"]
    assert status_after == 200 and health["status"] == "ok" and "warm_up" not in health["checks"]
    assert health["checks"]["online_store"]["status"] == "ok"


def test_a_redis_that_is_down_gives_503_fast_not_a_hang(profile_store, spark):
    store, folder = profile_store
    settings = Settings(store=StoreSettings(root=str(folder / "store")),
                        online=OnlineSettings(kind="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0",
                                              timeout_seconds=0.3))
    down = FeatureStore(spark=spark, settings=settings)
    with serving(down) as url:
        started = time.monotonic()
        status, body = call(url, "/get-online-features", {"features": ["profile:age"], "entities": {"customer_id": [1]}})
        assert (status, body["error"]) == (503, "OnlineStoreError") and "redis://127.0.0.1" in body["detail"]
        _warmed(url)
        status, health = call(url, "/health")
        assert status == 503 and health["status"] == "down"
        assert health["checks"]["online_store"]["status"] == "down" and "redis" in health["checks"]["online_store"]["detail"]["error"]
        assert time.monotonic() - started < 10
