"""Exports: feature data copied out of the store to a path of the caller's, in a common format.

An export is a read whose rows leave the store, so the policy must allow reading each feature
and copying the table's data to the destination's region (`governance.locations`). Each export
is recorded in the `exports` catalog table (what was read, at which version, where it went, how
many rows, by whom), shows in the lineage graph downstream of what it read, and emits
OpenLineage events like any write. An existing destination is refused unless the caller asks
to overwrite it; Spark's commit protocol (or Delta's log) means a failed export leaves no
half-written output that reads as complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame

from fs_spark.errors import ExportError

FORMATS = ("parquet", "delta", "csv", "json")
MODES = ("error", "overwrite")


@dataclass(frozen=True)
class Export:
    export_id: str
    source: str  # lineage key of what was read: feature_version:<id> or training_set:<id>
    path: str
    format: str
    region: str | None
    row_count: int
    at: datetime


def check_request(what: str, path: str, format: str, mode: str) -> None:
    """Refuse a bad format or mode before anything is read."""
    if format not in FORMATS:
        raise ExportError(what, path, f"format {format!r} is not one of {', '.join(FORMATS)}")
    if mode not in MODES:
        raise ExportError(what, path, f"mode {mode!r} is not one of {', '.join(MODES)}")


def write_export(what: str, frame: DataFrame, path: str, format: str, mode: str) -> int:
    """Write `frame` to `path` and return the rows written (counted from the output, which
    Parquet and Delta answer from metadata)."""
    options = {"header": "true"} if format == "csv" else {}
    try:
        frame.write.format(format).mode(mode).options(**options).save(path)
    except AnalysisException as exc:
        if "PATH_ALREADY_EXISTS" in str(exc) or "already exists" in str(exc):
            raise ExportError(what, path, "the path already exists; pass mode='overwrite' to replace it") from None
        raise
    written = frame.sparkSession.read.format(format).options(**options)
    if format in ("csv", "json"):  # read back with the frame's schema, not an inferred one
        written = written.schema(frame.schema)
    return written.load(path).count()
