"""Quarantine and release: status events of feature versions, the latest one in force."""

from __future__ import annotations

from datetime import UTC, datetime

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import VERSION_STATUS
from fs_spark.ids import new_id

STATUSES = ("quarantined", "released")


def record_status(catalog: Catalog, version: FeatureVersion, status: str, reason: str, user: str) -> None:
    """Append a status event; the latest event of a version is its status."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
    catalog.append(
        VERSION_STATUS,
        [
            {
                "event_id": new_id(),
                "version_id": version.version_id,
                "table_name": version.table_name,
                "status": status,
                "reason": reason,
                "user": user,
                "at": datetime.now(UTC),
            }
        ],
    )


def quarantined(catalog: Catalog) -> dict[str, str]:
    """Feature version ID -> reason, for every version quarantined now."""
    latest: dict[str, dict] = {}
    for row in sorted(catalog.rows(VERSION_STATUS.name), key=lambda r: (r["at"], r["event_id"])):
        latest[row["version_id"]] = row
    return {v: r["reason"] for v, r in latest.items() if r["status"] == "quarantined"}
