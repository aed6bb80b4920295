"""The store's health (`GET /health`, `fs-spark health`): each check with its figure and threshold,
and one status: ok, degraded (something needs a look) or down (the store cannot be used).

- storage: the root and the catalog read, and (`observability.write_probe`) one small object
  written and deleted under `<root>/_health/`; down when any fails.
- online_store: reachable, and per materialized table how long the oldest servable version it
  does not serve yet has waited (0 when it serves the latest); down when unreachable, degraded past
  `online_staleness_seconds`. Tables never materialized are not checked.
- cache: the online cache's hit rate, where this process has a cache (the feature server).
- lineage: the share of model versions and deployments whose upstream reaches a feature version,
  a source and a transformation, and the catalog links that point at no record (what
  `reconcile` would flag without reading data); with the last `reconcile` run's findings, which
  also read each Delta version a link names (a health check cannot afford those reads); degraded
  below `min_lineage_completeness`, on a dangling record link, or when the last reconcile found
  unauthorised links.
- replication: each region's lag in versions and seconds, where regions are configured.
- last_failed_job: the latest operation of the `metrics` table that failed; degraded when it
  failed within `failed_job_window_hours`.
Every figure comes from the catalog's rows in memory and one request per store: a store of 100
tables and 10,000 versions answers in well under 100 ms (`bench/health.py`). The `metrics` table
gains a row with every operation and micro-batch, so it is not held in memory: it is asked for its
newest failure and its newest reconcile alone (`Catalog.select`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pyarrow.compute as pc

from fs_spark.catalog.schema import (
    DEPLOYMENTS,
    MATERIALIZATIONS,
    METRICS,
    MODEL_VERSIONS,
    RUN_INPUTS,
    RUNS,
    TRAINING_SETS,
)
from fs_spark.errors import first_line
from fs_spark.ids import new_id
from fs_spark.lineage.graph import LineageGraph
from fs_spark.online.state import TableState, served_version, state_name
from fs_spark.replication.objects import objects
from fs_spark.versions.status import quarantined

if TYPE_CHECKING:
    from fs_spark.online.cache import CacheStats
    from fs_spark.online.reader import OnlineReader
    from fs_spark.store import FeatureStore

Status = Literal["ok", "degraded", "down"]
_RANK: dict[str, int] = {"ok": 0, "degraded": 1, "down": 2}
_UPSTREAM_NEEDED = ("feature_version", "source", "transformation")


@dataclass(frozen=True)
class Check:
    """One health check: its status, the figure it was judged by and the threshold."""

    name: str
    status: Status
    figure: float | int | None = None
    threshold: float | int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    checks: tuple[Check, ...]
    checked_at: datetime
    seconds: float

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default="ok")

    @property
    def exit_code(self) -> int:
        """0 ok, 1 degraded, 2 down: what `fs-spark health` exits with."""
        return _RANK[self.status]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checked_at": self.checked_at.isoformat(),
            "seconds": round(self.seconds, 4),
            "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.checks},
        }

    def to_text(self) -> str:
        lines = [f"{self.status} ({self.seconds * 1000:.0f} ms)"]
        for c in self.checks:
            limit = f" (threshold {c.threshold})" if c.threshold is not None else ""
            figure = f": {c.figure}" if c.figure is not None else ""
            note = c.detail.get("note") or c.detail.get("error") or ""
            lines.append(f"  {c.status:<8} {c.name}{figure}{limit}{f' - {note}' if note else ''}")
        return "\n".join(lines)


def check_health(
    store: FeatureStore, reader: OnlineReader | None = None, cache_stats: Callable[[], CacheStats] | None = None
) -> HealthReport:
    """Every check of `store`. `reader` is the online reader to probe (default: a new one);
    `cache_stats`, where this process serves from a cache, gives its figures."""
    started, now = time.perf_counter(), datetime.now(UTC)
    storage = _storage(store)
    checks = [storage]
    if storage.status != "down":  # with the root unreadable the rest cannot be read
        checks += [_online(store, reader, now), _lineage(store), _replication(store), _last_failure(store, now)]
        if cache_stats is not None:
            checks.append(_cache(store, cache_stats()))
    return HealthReport(tuple(checks), now, time.perf_counter() - started)


def _guarded(name: str, failed: Status, body: Callable[[], Check]) -> Check:
    """The check, or `failed` with the error when it raised."""
    try:
        return body()
    except Exception as error:
        return Check(name, failed, detail={"error": f"{type(error).__name__}: {error}"})


def _storage(store: FeatureStore) -> Check:
    def body() -> Check:
        started = time.perf_counter()
        tables = len(store._catalog.rows("feature_tables"))
        probed = store.settings.observability.write_probe
        if probed:
            root = objects(store.root, store.settings.s3)
            name = f"_health/probe-{new_id()}"
            root.write(name, b"fs_spark health probe")
            if root.read(name) != b"fs_spark health probe":
                raise OSError(f"the probe {name} read back different bytes")
            root.delete(name)
        seconds = round(time.perf_counter() - started, 4)
        return Check("storage", "ok", seconds, None, {"root": store.root, "tables": tables, "write_probe": probed})

    return _guarded("storage", "down", body)


def _online(store: FeatureStore, reader: OnlineReader | None, now: datetime) -> Check:
    limit = store.settings.observability.health.online_staleness_seconds
    materialized = sorted({r["table_name"] for r in store._catalog.rows(MATERIALIZATIONS.name)})
    if not materialized:
        return Check("online_store", "ok", None, limit, {"tables": {}, "note": "nothing materialized"})

    def body() -> Check:
        online = reader or store._online.reader()
        states = online.store.state([state_name(n) for n in materialized])
        held_back = quarantined(store._catalog)
        tables, worst = {}, 0.0
        for name, raw in zip(materialized, states, strict=True):
            state = TableState.from_bytes(raw)
            if state.definition_version is None:
                continue
            every = store._catalog.versions(name)
            served = served_version(every, name, state.definition_version, held_back)
            waiting = [
                v.committed_at
                for v in every
                if v.definition_version == state.definition_version
                and served is not None
                and (state.watermark or 0) < v.version_number <= served.version_number
            ]
            staleness = max(0.0, (now - min(waiting)).total_seconds()) if waiting else 0.0
            worst = max(worst, staleness)
            tables[name] = {
                "serves_version": state.watermark,
                "latest_servable": served.version_number if served is not None else None,
                "staleness_seconds": round(staleness, 3),
                "materialized_at": state.materialized_at,
            }
        status: Status = "degraded" if worst > limit else "ok"
        return Check("online_store", status, round(worst, 3), limit, {"store": online.store_name, "tables": tables})

    return _guarded("online_store", "down", body)


def _cache(store: FeatureStore, stats: CacheStats) -> Check:
    least = store.settings.observability.health.min_cache_hit_rate
    rate = round(stats.hit_rate, 4)
    detail = {
        "hits": stats.hits,
        "misses": stats.misses,
        "entries": stats.entries,
        "invalidations": stats.invalidations,
        "oldest_entry_served_seconds": round(stats.max_age_served_seconds, 3),
    }
    return Check("cache", "degraded" if rate < least else "ok", rate, least, detail)


def lineage_completeness(graph: LineageGraph, keys: Iterable[str]) -> tuple[float | None, list[str]]:
    """The share of `keys` whose upstream reaches a node of each kind in `_UPSTREAM_NEEDED`, and
    the keys that do not (None: there is nothing to judge)."""
    keys = list(keys)
    incomplete = []
    for key in keys:
        kinds = {n.kind for n in graph.upstream(key).nodes.values()}
        if not all(kind in kinds for kind in _UPSTREAM_NEEDED):
            incomplete.append(key)
    share = 1 - len(incomplete) / len(keys) if keys else None
    return share, incomplete


def dangling_records(store: FeatureStore) -> list[str]:
    """Catalog links to records that are not in the catalog: the part of `reconcile` that needs
    no data read (reconcile also reads each Delta version a link names)."""
    catalog = store._catalog
    versions = {v.version_id for v in catalog.versions()}
    sets = {r["training_set_id"] for r in catalog.rows(TRAINING_SETS.name)}
    models = {r["model_version_id"] for r in catalog.rows(MODEL_VERSIONS.name)}
    runs = {r["run_id"] for r in catalog.rows(RUNS.name)}
    found: list[str] = []

    def missing(holder: str, kind: str, ids: Iterable[str | None], known: set[str]) -> None:
        found.extend(f"{holder} -> {kind}:{i}" for i in ids if i and i not in known)

    for row in catalog.rows(TRAINING_SETS.name):
        missing(f"training_set:{row['training_set_id']}", "feature_version", row["feature_version_ids"] or [], versions)
    for row in catalog.rows(RUN_INPUTS.name):
        missing(f"run:{row['run_id']}", "feature_version", [row["version_id"]], versions)
    for row in catalog.rows(MODEL_VERSIONS.name):
        holder = f"model_version:{row['model_version_id']}"
        missing(holder, "training_set", row["training_set_ids"] or [], sets)
        missing(holder, "feature_version", row["feature_version_ids"] or [], versions)
        missing(holder, "run", [row["run_id"]], runs)
    for row in catalog.rows(DEPLOYMENTS.name):
        holder = f"deployment:{row['deployment_id']}"
        missing(holder, "model_version", [row["model_version_id"]], models)
        missing(holder, "feature_version", row["feature_version_ids"] or [], versions)
    return sorted(set(found))


def last_reconcile(store: FeatureStore) -> dict[str, Any] | None:
    """What the latest finished `reconcile` found (its `metrics` row), or None if none ran."""
    columns = ["operation_id", "started_at", "rows", "tags_json"]
    finished = (pc.field("operation") == "reconcile") & pc.field("error_class").is_null()
    runs = store._catalog.select(METRICS.name, columns, finished, newest=("started_at", 1))
    if not runs:
        return None
    last = runs[0]
    tags = json.loads(last["tags_json"] or "{}")
    return {
        "at": last["started_at"].isoformat(),
        "links_checked": last["rows"],
        "dangling": int(tags.get("dangling", 0)),
        "unauthorised": int(tags.get("unauthorised", 0)),
        "unauthorised_links": json.loads(tags.get("unauthorised_links", "[]")),
        "operation_id": last["operation_id"],
    }


def _lineage(store: FeatureStore) -> Check:
    least = store.settings.observability.health.min_lineage_completeness

    def body() -> Check:
        graph = store.lineage.graph()
        keys = [n.key for n in graph.nodes.values() if n.kind in ("model_version", "deployment")]
        share, incomplete = lineage_completeness(graph, keys)
        dangling = dangling_records(store)
        reconciled = last_reconcile(store)
        low = share is not None and share < least
        unauthorised = reconciled is not None and reconciled["unauthorised"] > 0
        status: Status = "degraded" if low or dangling or unauthorised else "ok"
        figure = round(share, 4) if share is not None else None
        detail = {
            "judged": len(keys),
            "incomplete": incomplete[:20],
            "dangling_links": dangling[:20],
            "last_reconcile": reconciled,
        }
        return Check("lineage", status, figure, least, detail)

    return _guarded("lineage", "degraded", body)


def _replication(store: FeatureStore) -> Check:
    thresholds = store.settings.observability.health
    if not store.settings.store.regions_file:
        return Check("replication", "ok", None, None, {"note": "no regions configured"})

    def body() -> Check:
        regions, worst_seconds, worst_versions = {}, 0.0, 0
        for region, lags in store.replication_status().items():
            versions = max((lag.versions_behind for lag in lags), default=0)
            seconds = max((lag.seconds_behind for lag in lags), default=0.0)
            regions[region] = {"versions_behind": versions, "seconds_behind": round(seconds, 3)}
            worst_seconds, worst_versions = max(worst_seconds, seconds), max(worst_versions, versions)
        late = (
            worst_seconds > thresholds.replication_lag_seconds or worst_versions > thresholds.replication_lag_versions
        )
        detail = {
            "regions": regions,
            "versions_behind": worst_versions,
            "threshold_versions": thresholds.replication_lag_versions,
        }
        status: Status = "degraded" if late else "ok"
        return Check("replication", status, round(worst_seconds, 3), thresholds.replication_lag_seconds, detail)

    return _guarded("replication", "degraded", body)


def _last_failure(store: FeatureStore, now: datetime) -> Check:
    window = timedelta(hours=store.settings.observability.health.failed_job_window_hours)
    columns = ["operation_id", "operation", "table_name", "started_at", "error_class", "error"]
    failed_rows = pc.field("error_class").is_valid()

    def body() -> Check:
        failed = store._catalog.select(METRICS.name, columns, failed_rows, newest=("started_at", 1))
        if not failed:
            return Check("last_failed_job", "ok", None, None, {"note": "no operation has failed"})
        last = failed[0]
        age = (now - last["started_at"]).total_seconds()
        detail = {
            "operation": last["operation"],
            "table": last["table_name"],
            "error_class": last["error_class"],
            "error": first_line(last["error"] or ""),
            "at": last["started_at"].isoformat(),
            "operation_id": last["operation_id"],
        }
        status: Status = "degraded" if age <= window.total_seconds() else "ok"
        return Check("last_failed_job", status, round(age, 1), window.total_seconds(), detail)

    return _guarded("last_failed_job", "degraded", body)
