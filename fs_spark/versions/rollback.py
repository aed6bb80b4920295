"""Rollback: a known-good version's rows made current again, as a new version that writes nothing.

Builds and reads that follow the latest version then read exactly the rows the target held
(`series` leaves the rolled-over writes out), and later writes add to those. Nothing is deleted;
the versions rolled over stay readable by number or ID.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import FEATURE_VERSIONS
from fs_spark.definitions.registry import Applied
from fs_spark.errors import RollbackError
from fs_spark.ids import new_id
from fs_spark.versions.resolver import VersionResolver
from fs_spark.versions.series import ROLLBACK, refuse_quarantined
from fs_spark.versions.status import quarantined


def rollback(
    catalog: Catalog,
    resolver: VersionResolver,
    applied: Applied,
    table_lock: AbstractContextManager[None],
    user: str,
    to_version: int | str,
    reason: str,
) -> FeatureVersion:
    """Record a rollback of the table `applied` defines to `to_version`, under the table's
    write lock so no write takes its number."""
    definition = applied.definition
    table = definition.name
    with table_lock:
        target = resolver.exact(table, to_version)
        if target.definition_version != definition.definition_version:
            raise RollbackError(
                table,
                to_version,
                f"it belongs to definition version {target.definition_version}; "
                f"rollbacks stay within the current one ({definition.definition_version})",
            )
        every = catalog.versions(table)
        last = [v for v in every if v.definition_version == definition.definition_version][-1]
        if last.version_id == target.version_id:
            raise RollbackError(table, to_version, "it is already the latest version")
        refuse_quarantined(every, target, quarantined(catalog), "the rollback")
        record = FeatureVersion(
            version_id=new_id(),
            table_name=table,
            definition_version=definition.definition_version,
            definition_revision=applied.revision,
            version_number=last.version_number + 1,
            delta_version=last.delta_version,
            committed_at=datetime.now(UTC),
            storage_path=applied.storage_path,
            write_id=f"rollback:{target.version_id}:{new_id()}",
            mode=ROLLBACK,
            row_count=0,
            schema_hash=target.schema_hash,
            user=user,
            source_description=f"rollback to #{target.version_number} ({target.version_id}): {reason}",
            restores_version=target.version_number,
        )
        catalog.append(FEATURE_VERSIONS, [record.to_row()])
    return record
