"""Notifications (`fs-spark watch`, from cron or a scheduler): one pass over the rules whose
thresholds are in `conf/` (`observability.notify` and `observability.health`), each breach an alert
in the catalog's `alerts` table and sent to the configured sink (`quality.alerts`).

- version churn: more than `churn_max_versions` versions of a table in `churn_window_hours`;
- lineage: a model version or deployment whose upstream misses feature versions, sources or
  transformations, and a catalog link to a record that does not exist;
- anomalies: each table's latest version, judged once (`fs_spark.quality.anomalies`);
- replication lag and online staleness past their health thresholds.

An alert names the table, the feature and version where there is one, the figure and the
threshold. The same alert (rule, table, feature, version) is not sent again within
`renotify_hours`, so a scheduler running every few minutes does not flood the sink.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fs_spark.catalog.schema import ALERTS, VERSION_PROFILES
from fs_spark.errors import first_line
from fs_spark.ids import new_id
from fs_spark.observability.health import HealthReport, check_health
from fs_spark.quality.alerts import raise_alerts
from fs_spark.quality.checks import AnomalyReport

log = logging.getLogger("fs_spark.watch")

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore


@dataclass(frozen=True)
class WatchResult:
    check_id: str
    alerts: tuple[dict[str, Any], ...]  # sent by this pass
    repeated: int  # breaches already alerted within renotify_hours, not sent again
    health: HealthReport


def watch(store: FeatureStore) -> WatchResult:
    """Run every notification rule once; send and record what breaches."""
    check_id, now = new_id(), datetime.now(UTC)
    notify = store.settings.observability.notify
    health = check_health(store)
    found = [*_churn(store, now), *_lineage(health), *_staleness(health), *_lag(store, health)]
    judged = [r for t in store.list_tables() if _latest_unjudged(store, t) and (r := _anomalies(store, t))]
    recent = {
        _key(r) for r in store._catalog.rows(ALERTS.name) if r["at"] >= now - timedelta(hours=notify.renotify_hours)
    }
    fresh = [f for f in found if _key(f) not in recent]
    sink = store.settings.quality.alerts
    common = {"check_id": check_id, "sink": sink.kind, "at": now, "version_id": None, "feature": None}
    alerts = [{"alert_id": new_id(), **common, **f} for f in fresh]
    raise_alerts(store._catalog, sink, alerts)
    anomaly_ids = {a for report in judged for a in report.alert_ids}  # each check sent its own
    anomalies = tuple(r for r in store._catalog.rows(ALERTS.name) if r["alert_id"] in anomaly_ids)
    return WatchResult(check_id, tuple(alerts) + anomalies, len(found) - len(fresh), health)


def _anomalies(store: FeatureStore, table: str) -> AnomalyReport | None:
    """The table's anomaly check, or None when it failed: one unreadable table does not stop the
    other rules, and its failure is a `metrics` row that health's last failed job reports."""
    try:
        return store.quality.check_anomalies(table)
    except Exception as failure:
        log.warning("fs_spark watch: the anomaly check of %s failed: %s", table, first_line(failure))
        return None


def _key(alert: dict[str, Any]) -> tuple:
    """What makes two alerts the same: the rule and its subject (for lineage, the node or link)."""
    subject = alert["baseline"] if alert["metric"].startswith("lineage") else None
    return (alert["metric"], alert["table_name"], alert.get("feature"), alert.get("version_id"), subject)


def _churn(store: FeatureStore, now: datetime) -> list[dict[str, Any]]:
    notify = store.settings.observability.notify
    since = now - timedelta(hours=notify.churn_window_hours)
    found = []
    for table in store.list_tables():
        count = sum(1 for v in store._catalog.versions(table) if v.committed_at >= since)
        if count > notify.churn_max_versions:
            found.append(
                {
                    "table_name": table,
                    "metric": "version_churn",
                    "value": float(count),
                    "threshold": float(notify.churn_max_versions),
                    "baseline": f"versions in the last {notify.churn_window_hours:g} hours",
                }
            )
    return found


def _lineage(health: HealthReport) -> list[dict[str, Any]]:
    check = health.check("lineage")
    detail, found = check.detail, []
    for node in detail.get("incomplete", []):
        found.append(
            {
                "table_name": None,
                "metric": "lineage_incomplete",
                "value": float(check.figure if check.figure is not None else 0),
                "threshold": float(check.threshold or 0),
                "baseline": f"{node}: upstream lacks a feature version, source or transformation",
            }
        )
    for link in detail.get("dangling_links", []):
        found.append(
            {
                "table_name": None,
                "metric": "lineage_dangling",
                "value": 1.0,
                "threshold": 0.0,
                "baseline": f"{link}: no such record",
            }
        )
    reconciled = detail.get("last_reconcile") or {}
    for link in reconciled.get("unauthorised_links", []):
        found.append(
            {
                "table_name": None,
                "metric": "lineage_unreconciled",
                "value": 1.0,
                "threshold": 0.0,
                "baseline": f"{link} (reconcile at {reconciled['at']})",
            }
        )
    return found


def _staleness(health: HealthReport) -> list[dict[str, Any]]:
    check = health.check("online_store")
    limit = float(check.threshold or 0)
    return [
        {
            "table_name": table,
            "metric": "online_staleness_seconds",
            "value": float(state["staleness_seconds"]),
            "threshold": limit,
            "baseline": f"serves #{state['serves_version']}, latest servable #{state['latest_servable']}",
        }
        for table, state in check.detail.get("tables", {}).items()
        if state["staleness_seconds"] > limit
    ]


def _lag(store: FeatureStore, health: HealthReport) -> list[dict[str, Any]]:
    check = health.check("replication")
    if check.figure is None:
        return []
    thresholds = store.settings.observability.health
    found = []
    for region, lags in store.replication_status().items():
        for lag in lags:
            late_seconds = lag.seconds_behind > thresholds.replication_lag_seconds
            if late_seconds or lag.versions_behind > thresholds.replication_lag_versions:
                found.append(
                    {
                        "table_name": lag.table,
                        "metric": "replication_lag_seconds" if late_seconds else "replication_lag_versions",
                        "value": float(lag.seconds_behind if late_seconds else lag.versions_behind),
                        "threshold": float(
                            thresholds.replication_lag_seconds if late_seconds else thresholds.replication_lag_versions
                        ),
                        "baseline": f"region {region}: {lag.versions_behind} version(s) behind",
                    }
                )
    return found


def _latest_unjudged(store: FeatureStore, table: str) -> bool:
    """Whether the table's latest version has not been profiled (so not judged) yet."""
    latest = store._catalog.versions(table)
    if not latest:
        return False
    judged = {r["version_id"] for r in store._catalog.rows(VERSION_PROFILES.name) if r["table_name"] == table}
    return latest[-1].version_id not in judged
