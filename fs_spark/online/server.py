"""The HTTP feature server (`fs-spark serve`): Starlette on uvicorn (uvloop, httptools), no Spark.

`POST /get-online-features` is answered by a plain ASGI handler, the other routes by Starlette:
FastAPI's request handling cost more than the lookup itself, and Starlette's request and routing
objects a fifth of it (measured: `bench/online.py`).

- `POST /get-online-features`: Feast's request and response shape. The request names
  `features` (`table:feature`) or a `feature_service`, and `entities` as columns
  (`{"customer_id": [1, 2]}`); the response has `metadata.feature_names` and, per column,
  `values`, `statuses` and `event_timestamps`. `full_feature_names` gives `table__feature`.
- `GET /health`: every check of `fs_spark.observability.health` (storage, the online store and
  its staleness per table, the cache's hit rate, lineage, replication, the last failed job), each
  with its figure; `status` ok, degraded, or down (HTTP 503).
- `GET /ui/`: the read-only web UI (`fs_spark.ui`), for the same callers and policies.
- `GET /metrics`: Prometheus text: requests by endpoint and outcome, latency histograms,
  errors by class, cache hits and misses, and the store's operation figures.

Callers present `Authorization: Bearer <token>`; `online.server.tokens` maps tokens to
principals, whose access policy applies as to any read. With a policy file set and no tokens
the server refuses to start: there is no anonymous access to governed features. With tokens set,
`/health` answers a caller without one with its status alone (liveness for load balancers: the
checks name the store's root, tables and versions), and `/metrics` answers 401.

A request body over `online.server.max_body_bytes` (1 MiB) is refused with 413 before it is
parsed; a server fault is a JSON 5xx, the caller's mistakes a JSON 4xx, each counted in
`fs_spark_online_errors`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from fs_spark.errors import (
    AccessDeniedError,
    ConfigError,
    EntityColumnError,
    FeatureLookupError,
    FeatureNotFoundError,
    FeatureServiceNotFoundError,
    NotMaterializedError,
    OnlineRequestError,
    RetiredFeatureError,
    TableNotFoundError,
    first_line,
)
from fs_spark.observability.health import Check, HealthReport, check_health
from fs_spark.online.base import OnlineStoreError
from fs_spark.online.reader import OnlineReader
from fs_spark.training.lookups import FeatureLookup
from fs_spark.ui.app import UnauthorizedError, create_ui, redirect_to_ui

log = logging.getLogger("fs_spark.server")

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # Feast's event time of a value not found
_STATUS = {
    AccessDeniedError: 403,
    NotMaterializedError: 404,
    FeatureNotFoundError: 404,
    FeatureServiceNotFoundError: 404,
    TableNotFoundError: 404,
    RetiredFeatureError: 410,
    OnlineStoreError: 503,
    OnlineRequestError: 400,
    EntityColumnError: 400,
    FeatureLookupError: 400,
    ValueError: 400,  # a request body pydantic refused, or a lookup string that is no 'table:feature'
}


class OnlineFeaturesRequest(BaseModel):
    """Feast's `/get-online-features` body."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] | None = None
    feature_service: str | None = None
    entities: dict[str, list[Any]] = Field(default_factory=dict)
    full_feature_names: bool = False


def _principal(tokens: dict[str, str], authorization: str) -> str:
    """The principal whose token an `Authorization: Bearer <token>` header carries."""
    scheme, _, token = authorization.partition(" ")
    principal = tokens.get(token) if scheme.lower() == "bearer" else None
    if principal is None:
        raise UnauthorizedError()
    return principal


def _status_of(error: BaseException) -> int:
    """The caller's mistakes are 4xx; anything else is the server's fault, 5xx."""
    return next((code for kind, code in _STATUS.items() if isinstance(error, kind)), 500)


def create_app(store: FeatureStore) -> ASGIApp:
    """The feature server of `store` (its settings give the tokens and the online store)."""
    settings = store.settings.online.server
    policy = store.settings.governance.policy_file
    if policy and not settings.tokens:
        raise ConfigError(
            "online.server.tokens", f"the access policy {policy} is set: list the callers' tokens, no anonymous access"
        )
    base = store._online.reader()
    readers: dict[str, OnlineReader] = {}
    access = store._access

    metrics = CollectorRegistry()  # this app's requests; /metrics adds the store's operations
    requests = Counter(
        "fs_spark_online_requests", "Requests by endpoint and HTTP status", ["endpoint", "status"], registry=metrics
    )
    latency = Histogram(
        "fs_spark_online_request_seconds",
        "Request latency",
        ["endpoint"],
        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        registry=metrics,
    )
    answered, timing = requests.labels("get-online-features", "200"), latency.labels("get-online-features")
    errors = Counter("fs_spark_online_errors", "Failed requests by error class", ["error"], registry=metrics)
    entities = Counter("fs_spark_online_entities", "Entity rows served", registry=metrics)
    hits = Gauge("fs_spark_online_cache_hits", "Cache hits since start", registry=metrics)
    misses = Gauge("fs_spark_online_cache_misses", "Cache misses since start", registry=metrics)
    warm_up = Gauge(
        "fs_spark_health_warm_up_seconds",
        "How long the process's first health check took (it reads the whole catalog); 0 until it is done",
        registry=metrics,
    )

    services: dict[str, tuple[float, list[FeatureLookup]]] = {}

    def service_lookups(name: str) -> list[FeatureLookup]:
        """A feature service's latest lookups, looked up again at most once a second."""
        now = time.monotonic()
        found = services.get(name)
        if found is None or now - found[0] > 1.0:
            found = services[name] = (now, list(store.feature_service(name).lookups))
        return found[1]

    def reader_for(authorization: str) -> OnlineReader:
        if not settings.tokens:
            return base
        principal = _principal(settings.tokens, authorization)
        found = readers.get(principal)
        if found is None:
            found = readers[principal] = base.for_principal(access.as_principal(principal))
        return found

    async def get_online_features(scope, receive, send) -> None:
        started = time.perf_counter()
        try:
            authorization = next((v.decode() for k, v in scope["headers"] if k == b"authorization"), "")
            reader = reader_for(authorization)
            body = OnlineFeaturesRequest.model_validate_json(await _body(scope, receive, settings.max_body_bytes))
            status, payload = 200, _answer(service_lookups, reader, body)
            content = orjson.dumps(payload, option=orjson.OPT_UTC_Z)
            entities.inc(len(next(iter(body.entities.values()), [])))
        except UnauthorizedError:
            status, payload = 401, {"error": "Unauthorized", "detail": "a valid bearer token is required"}
            content = orjson.dumps(payload)
        except RequestTooLargeError as error:
            status = 413
            errors.labels(type(error).__name__).inc()
            content = orjson.dumps({"error": type(error).__name__, "detail": str(error)})
        except Exception as error:  # every failure is one JSON line with its class
            status = _status_of(error)
            errors.labels(type(error).__name__).inc()
            detail = first_line(error, 2000) if status < 500 else f"{type(error).__name__}: {error}"
            content = orjson.dumps({"error": type(error).__name__, "detail": detail})
        await send({"type": "http.response.start", "status": status, "headers": _headers(content)})
        await send({"type": "http.response.body", "body": content})
        (answered if status == 200 else requests.labels("get-online-features", str(status))).inc()
        timing.observe(time.perf_counter() - started)

    started = time.monotonic()
    warmed = threading.Event()

    def authorized(request: Request) -> bool:
        """Whether the caller may see the store's details (no tokens set: everyone)."""
        if not settings.tokens:
            return True
        try:
            _principal(settings.tokens, request.headers.get("authorization", ""))
        except UnauthorizedError:
            return False
        return True

    async def health(request: Request) -> Response:
        if not warmed.is_set():  # answer at once, not after the catalog read the warm-up is doing
            waited = round(time.monotonic() - started, 3)
            note = "the server is reading the catalog for its first health check"
            check = Check("warm_up", "degraded", waited, None, {"note": note})
            report = HealthReport((check,), datetime.now(UTC), 0.0)
        else:
            report = check_health(store, base, base.cache.stats if base.cache is not None else None)
        code = 503 if report.status == "down" else 200
        if not authorized(request):  # liveness for anyone; the checks name paths, tables and versions
            return JSONResponse({"status": report.status}, code)
        return JSONResponse(report.to_dict(), code)

    async def prometheus(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": "Unauthorized", "detail": "a valid bearer token is required"}, 401)
        if base.cache is not None:
            stats = base.cache.stats()
            hits.set(stats.hits)
            misses.set(stats.misses)
        page = generate_latest(metrics) + generate_latest(store.metrics.registry)
        return Response(page, media_type=CONTENT_TYPE_LATEST)

    def principal_of(request: Request) -> str:
        """The UI's caller: the principal of the request's token, as for feature reads."""
        if not settings.tokens:
            return store.user
        return _principal(settings.tokens, request.headers.get("authorization", ""))

    others = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/", redirect_to_ui),
            Mount("/ui", app=create_ui(store, principal_of)),
        ]
    )

    async def app(scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/get-online-features":
            if scope["method"] == "POST":
                return await get_online_features(scope, receive, send)
            content = b'{"error":"MethodNotAllowed","detail":"POST /get-online-features"}'
            await send({"type": "http.response.start", "status": 405, "headers": _headers(content)})
            return await send({"type": "http.response.body", "body": content})
        return await others(scope, receive, send)

    # The first health check of a process reads the whole catalog (1.3 s at 10,000 versions); do
    # it now, beside the first requests, so that `/health` answers from warm caches (and, until
    # then, answers at once that it is warming up).
    threading.Thread(
        target=_warm, args=(store, base, warm_up, warmed), name="fs_spark-health-warm-up", daemon=True
    ).start()
    return app


def _warm(store: FeatureStore, reader: OnlineReader, took: Gauge, done: threading.Event) -> None:
    """The process's first health check; until it is done, `/health` says so (degraded) at once."""
    started = time.perf_counter()
    try:
        check_health(store, reader)
    except Exception:  # a failing check is reported by the next /health, not here
        pass
    finally:
        seconds = time.perf_counter() - started
        took.set(seconds)
        done.set()
    log.info("fs_spark serve: the first health check (catalog read) took %.3f s", seconds)


class RequestTooLargeError(Exception):
    def __init__(self, limit: int):
        super().__init__(f"the request body is over {limit} bytes (online.server.max_body_bytes)")


async def _body(scope, receive, limit: int) -> bytes:
    """The request's body, refused once it is over `limit` bytes: by its declared length before a
    byte is read, else as it arrives."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _headers(content: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(content))]


def frozen(app: ASGIApp) -> ASGIApp:
    """`app`, with everything built so far left out of garbage collection: it lives as long as
    the server, and full collections over it (pyarrow, pandas, ...) took 50-60 ms, the p99."""
    gc.collect()
    gc.freeze()
    return app


def app_from_environment() -> ASGIApp:
    """The app of one worker process of `fs-spark serve --workers N`: the store its settings
    (`FS_SPARK_*`, set by the command) name."""
    from fs_spark.store import FeatureStore

    return frozen(create_app(FeatureStore()))


def _answer(services: Callable[[str], list[FeatureLookup]], reader: OnlineReader, body: OnlineFeaturesRequest) -> dict:
    if (body.features is None) == (body.feature_service is None):
        raise OnlineRequestError("name either `features` or a `feature_service`")
    if not body.entities:
        raise OnlineRequestError("no entities: pass `entities` as {column: [values]}")
    lengths = {len(v) for v in body.entities.values()}
    if len(lengths) != 1:
        raise OnlineRequestError(f"entity columns have different lengths {sorted(lengths)}")
    rows = [dict(zip(body.entities, values, strict=True)) for values in zip(*body.entities.values(), strict=True)]
    lookups = services(body.feature_service) if body.feature_service else body.features
    result = reader.read(lookups or [], rows)
    names, results = [], []
    stamps: dict[int, list] = {}  # each table's event times, with Feast's epoch for a value not found
    for column, values in result.columns.items():
        table = result.tables.get(column)
        names.append(f"{table}__{column}" if body.full_feature_names and table else column)
        if table is None:  # an entity column
            results.append(
                {"values": values, "statuses": result.statuses[column], "event_timestamps": [_EPOCH] * len(values)}
            )
            continue
        times = result.event_times[column]
        shown = stamps.get(id(times))
        if shown is None:
            shown = stamps[id(times)] = [t if t is not None else _EPOCH for t in times]
        results.append({"values": values, "statuses": result.statuses[column], "event_timestamps": shown})
    return {"metadata": {"feature_names": names}, "results": results}
