"""The next version number of a table, and whether a write was already committed."""

from __future__ import annotations

from dataclasses import dataclass

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import FEATURE_VERSIONS


@dataclass(frozen=True)
class WriteState:
    """What the catalog knows of a table before a write: the last number, the last commit, and
    the version a write of this identity already made, if any."""

    last_version_number: int
    last_delta_version: int | None
    version_id_for_write: str | None
    version_id_for_content: str | None = None  # the first version whose batch had the same rows


def write_state(
    catalog: Catalog, table_name: str, definition_version: int, write_id: str, digest: str | None = None
) -> WriteState:
    rows = [
        r
        for r in catalog.rows(FEATURE_VERSIONS.name)
        if r["table_name"] == table_name and r["definition_version"] == definition_version
    ]
    return WriteState(
        max((r["version_number"] for r in rows), default=0),
        max((r["delta_version"] for r in rows), default=None),
        next((r["version_id"] for r in rows if r["write_id"] == write_id), None),
        next((r["version_id"] for r in rows if digest is not None and r["content_digest"] == digest), None),
    )
