"""What each stream has done, from the catalog: its starts, Spark's progress reports and the
versions its micro-batches committed (`FeatureStore.streams()`, `fs-spark streams`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fs_spark.catalog.records import FeatureVersion
from fs_spark.ingest.stream import batch_of


@dataclass(frozen=True)
class StreamStatus:
    """One stream's state and figures. Rates and lag are those of its latest progress report."""

    name: str
    table: str
    query_id: str
    source: str
    started_at: datetime
    starts: int  # 1 + restarts
    versions: int  # micro-batches committed
    rows: int
    quarantined_rows: int
    last_batch_id: int | None
    last_progress_at: datetime | None
    input_rows_per_second: float | None
    processed_rows_per_second: float | None
    offsets_behind_latest: int | None
    retried_batches: int  # batches run again after a restart that an earlier run had committed

    @property
    def restarts(self) -> int:
        return self.starts - 1


def stream_statuses(
    starts: list[dict[str, Any]], progress: list[dict[str, Any]], versions: list[FeatureVersion]
) -> list[StreamStatus]:
    """Every stream's status, by name."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in starts:
        by_name[row["stream_name"]].append(row)
    reports: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in progress:
        reports[row["stream_name"]].append(row)
    committed: dict[str, list[FeatureVersion]] = defaultdict(list)
    for version in versions:
        found = batch_of(version)
        if found is not None:
            committed[found[0]].append(version)
    out = []
    for name, rows in sorted(by_name.items()):
        rows = sorted(rows, key=lambda r: r["started_at"])
        latest = rows[-1]
        mine = [v for v in committed[name] if v.table_name == latest["table_name"]]
        seen = sorted(reports[name], key=lambda r: r["at"])
        last = seen[-1] if seen else None
        out.append(
            StreamStatus(
                name=name,
                table=latest["table_name"],
                query_id=latest["query_id"],
                source=latest["source_description"] or "",
                started_at=rows[0]["started_at"],
                starts=len(rows),
                versions=len(mine),
                rows=sum(v.row_count for v in mine),
                quarantined_rows=sum(v.quarantined_row_count for v in mine),
                last_batch_id=max((b for v in mine if (b := _batch(v)) is not None), default=None),
                last_progress_at=last["at"] if last else None,
                input_rows_per_second=last["input_rows_per_second"] if last else None,
                processed_rows_per_second=last["processed_rows_per_second"] if last else None,
                offsets_behind_latest=last["offsets_behind_latest"] if last else None,
                retried_batches=_retried(seen, rows, mine),
            )
        )
    return out


def _batch(version: FeatureVersion) -> int | None:
    found = batch_of(version)
    return found[1] if found else None


def _retried(reports: list[dict[str, Any]], starts: list[dict[str, Any]], versions: list[FeatureVersion]) -> int:
    """Micro-batches a run reported whose version an earlier run had committed: Spark ran them
    again after a restart, and the write identity kept them from being committed twice."""
    started = {row["spark_run_id"]: row["started_at"] for row in starts}
    committed = {b: v.committed_at for v in versions if (b := _batch(v)) is not None}
    again = set()
    for row in reports:
        run_start, commit = started.get(row["spark_run_id"]), committed.get(row["batch_id"])
        if run_start is not None and commit is not None and commit < run_start:
            again.add(row["batch_id"])
    return len(again)
