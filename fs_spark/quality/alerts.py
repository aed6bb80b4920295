"""Where alerts go: a log line (the default), a JSON-lines file, or a webhook.

One small class per sink, chosen by `quality.alerts.kind` in settings; every sink gets the same
JSON-ready dict per alert. A sink that fails raises AlertSinkError naming the sink: an alert that
silently went nowhere would be worse than a failed check (the alert is in the catalog either way).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import ALERTS
from fs_spark.config import AlertSettings
from fs_spark.errors import FsSparkError

log = logging.getLogger("fs_spark.alerts")


class AlertSinkError(FsSparkError):
    def __init__(self, sink: str, detail: str):
        self.sink = sink
        super().__init__(f"alert sink {sink} failed: {detail}; the alerts are recorded in the catalog's `alerts` table")


class LogSink:
    kind = "log"

    def __init__(self, settings: AlertSettings):
        pass

    def send(self, alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            log.warning(
                "fs_spark alert: %s %s.%s %s=%.4g > %.4g (version %s, baseline %s)",
                alert["alert_id"],
                alert["table_name"],
                alert["feature"],
                alert["metric"],
                alert["value"],
                alert["threshold"],
                alert["version_id"],
                alert["baseline"],
            )


class FileSink:
    kind = "file"

    def __init__(self, settings: AlertSettings):
        if not settings.path:
            raise AlertSinkError("file", "quality.alerts.path is not set")
        self.path = Path(settings.path)

    def send(self, alerts: list[dict[str, Any]]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                for alert in alerts:
                    out.write(json.dumps(alert, sort_keys=True, default=str) + "\n")
        except OSError as exc:
            raise AlertSinkError(f"file {self.path}", str(exc)) from exc


class WebhookSink:
    kind = "webhook"

    def __init__(self, settings: AlertSettings):
        if not settings.url:
            raise AlertSinkError("webhook", "quality.alerts.url is not set")
        self.url = settings.url
        self.timeout = settings.timeout_seconds

    def send(self, alerts: list[dict[str, Any]]) -> None:
        body = json.dumps({"alerts": alerts}, sort_keys=True, default=str).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if response.status >= 300:
                    raise AlertSinkError(f"webhook {self.url}", f"HTTP {response.status}")
        except OSError as exc:
            raise AlertSinkError(f"webhook {self.url}", str(exc)) from exc


SINKS = {sink.kind: sink for sink in (LogSink, FileSink, WebhookSink)}


def make_sink(settings: AlertSettings):
    return SINKS[settings.kind](settings)


def raise_alerts(catalog: Catalog, settings: AlertSettings, alerts: list[dict[str, Any]]) -> None:
    """Record alerts in the catalog's `alerts` table, then send them to the configured sink."""
    if alerts:
        catalog.append(ALERTS, alerts)
        make_sink(settings).send(alerts)
