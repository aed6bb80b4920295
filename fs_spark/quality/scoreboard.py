"""The quality scoreboard: per table and version, what validation, drift checks and people found.

One row per feature version, from the catalog: rows written and quarantined, the rules the
quarantined rows broke, the drift checks run on it with the worst distances, the alerts raised,
and its status (ok, quarantined, rollback). Printed by `fs-spark quality`; `frame()` gives the
same rows as a Spark DataFrame to query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import ALERTS, DRIFT_SCORES, QUARANTINE_EVENTS
from fs_spark.versions.series import ROLLBACK
from fs_spark.versions.status import quarantined as quarantined_versions


@dataclass(frozen=True)
class ScoreRow:
    table: str
    version_number: int
    version_id: str
    committed_at: datetime
    status: str
    rows: int
    quarantined_rows: int
    rule_failures: str  # "feature:rule=n, ..."
    drift_checks: int
    worst_psi: float | None
    worst_ks: float | None
    alerts: int


@dataclass(frozen=True)
class Scoreboard:
    rows: list[ScoreRow]

    def frame(self, spark: SparkSession) -> DataFrame:
        schema = (
            "table string, version_number long, version_id string, committed_at timestamp, status string, "
            "rows long, quarantined_rows long, rule_failures string, drift_checks long, worst_psi double, "
            "worst_ks double, alerts long"
        )
        return spark.createDataFrame([tuple(asdict(r).values()) for r in self.rows], schema)

    def to_text(self) -> str:
        lines = [
            f"{'table':<20} {'#':>3} {'status':<11} {'rows':>9} {'quarant.':>8} {'checks':>6} {'psi':>7} "
            f"{'ks':>6} {'alerts':>6}  rule failures"
        ]
        for r in self.rows:
            psi = f"{r.worst_psi:.3f}" if r.worst_psi is not None else "-"
            ks = f"{r.worst_ks:.3f}" if r.worst_ks is not None else "-"
            lines.append(
                f"{r.table:<20} {r.version_number:>3} {r.status:<11} {r.rows:>9} {r.quarantined_rows:>8} "
                f"{r.drift_checks:>6} {psi:>7} {ks:>6} {r.alerts:>6}  {r.rule_failures or '-'}"
            )
        return "\n".join(lines)


def scoreboard(
    catalog: Catalog, table: str | None = None, hidden: Callable[[str], set[str]] = lambda table: set()
) -> Scoreboard:
    """`hidden(table)`: the features whose drift figures the reader may not see (they are
    data of their feature); the worst distances are taken over the others."""
    quarantined = quarantined_versions(catalog)
    failures: dict[str, dict[str, int]] = {}
    for event in catalog.rows(QUARANTINE_EVENTS.name):
        counts = failures.setdefault(event["version_id"], {})
        for rule, n in json.loads(event["rule_counts_json"] or "{}").items():
            counts[rule] = counts.get(rule, 0) + int(n)
    scores: dict[str, list[dict]] = {}
    for row in catalog.rows(DRIFT_SCORES.name):
        scores.setdefault(row["version_id"], []).append(row)
    alerts: dict[str, int] = {}
    for row in catalog.rows(ALERTS.name):
        alerts[row["version_id"]] = alerts.get(row["version_id"], 0) + 1
    rows = []
    withheld = {name: hidden(name) for name in {v.table_name for v in catalog.versions(table)}}
    for v in catalog.versions(table):
        found = [s for s in scores.get(v.version_id, []) if s["feature"] not in withheld[v.table_name]]
        psis = [s["psi"] for s in found if s["psi"] is not None]
        kss = [s["ks"] for s in found if s["ks"] is not None]
        status = "quarantined" if v.version_id in quarantined else ("rollback" if v.mode == ROLLBACK else "ok")
        rows.append(
            ScoreRow(
                v.table_name,
                v.version_number,
                v.version_id,
                v.committed_at,
                status,
                v.row_count,
                v.quarantined_row_count,
                ", ".join(f"{k}={n}" for k, n in sorted(failures.get(v.version_id, {}).items())),
                len({s["check_id"] for s in found}),
                max(psis) if psis else None,
                max(kss) if kss else None,
                alerts.get(v.version_id, 0),
            )
        )
    return Scoreboard(rows)
