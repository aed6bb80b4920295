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
    # a key beyond a 64-bit long: a JSON 400 naming the key, not a plain-text 500
    ({"features": ["profile:age"], "entities": {"customer_id": [18446744073709551616]}}, 400, "EntityColumnError"),
    # two features with one output name: refused, as a training set refuses them
    ({"features": ["profile:age", "profile:age"], "entities": {"customer_id": [1]}, "full_feature_names": True},
     400, "FeatureLookupError"),
])
def test_bad_requests_get_one_clear_json_error(profile_store, body, status, error):
    store, _ = profile_store
    with serving(store) as url:
        got, answer = call(url, "/get-online-features", body)
    assert (got, answer["error"]) == (status, error), answer
    assert "\n" not in answer["detail"]


def test_a_key_beyond_64_bits_and_a_body_over_the_limit_are_refused_and_counted(profile_store, spark):
    store, folder = profile_store
    small = FeatureStore(spark=spark, settings=Settings(
        store=StoreSettings(root=str(folder / "store")), online=OnlineSettings(server=ServerSettings(max_body_bytes=4096))))
    with serving(small) as url:
        status, answer = call(url, "/get-online-features",
                              {"features": ["profile:age"], "entities": {"customer_id": [1, 2**64]}})
        assert (status, answer["error"]) == (400, "EntityColumnError")
        assert "customer_id" in answer["detail"] and "18446744073709551616" in answer["detail"]
        # refused by its declared length, before a byte of the body is read (the client sends none)
        status, answer = _declared_only(url, 21_000_000)
        assert (status, answer["error"]) == (413, "RequestTooLargeError") and "4096 bytes" in answer["detail"]
        chunked = {"features": ["profile:age"], "entities": {"customer_id": list(range(2_000))}}  # ~12 kB, no length
        status, answer = _chunked(url, json.dumps(chunked).encode())
        assert (status, answer["error"]) == (413, "RequestTooLargeError")
        metrics = call(url, "/metrics")[1]
    assert 'fs_spark_online_errors_total{error="EntityColumnError"} 1.0' in metrics
    assert 'fs_spark_online_errors_total{error="RequestTooLargeError"} 2.0' in metrics
    assert 'fs_spark_online_requests_total{endpoint="get-online-features",status="413"} 2.0' in metrics


def _declared_only(url: str, length: int):
    """A request that declares a body of `length` bytes and sends none: the answer to the headers."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/get-online-features")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


def _chunked(url: str, body: bytes):
    """A request whose body comes in chunks, with no declared length."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/get-online-features", body=iter([body[i:i + 1024] for i in range(0, len(body), 1024)]),
                       headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
                       encode_chunked=True)
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


def test_the_default_port_is_one_browsers_open():
    """The Fetch standard's bad ports (https://fetch.spec.whatwg.org/#port-blocking), which
    Chromium, Firefox and Safari refuse to connect to."""
    bad = {1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104,
           109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515,
           526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049,
           3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080}
    from pathlib import Path

    import yaml

    assert ServerSettings().port not in bad
    conf = yaml.safe_load((Path(__file__).resolve().parent.parent / "conf" / "fs_spark.yaml").read_text())
    assert conf["online"]["server"]["port"] == ServerSettings().port


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
        # liveness for anyone; the checks (root, tables, versions) and the metrics behind a token
        status, anonymous = call(url, "/health")
        assert status == 200 and set(anonymous) == {"status"}, anonymous
        assert "checks" in call(url, "/health", token="t-alice")[1]
        assert call(url, "/metrics")[0] == 401 and call(url, "/metrics", token="wrong")[0] == 401
        status, page = call(url, "/metrics", token="t-alice")
        assert status == 200 and "fs_spark_online_requests_total" in page
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
