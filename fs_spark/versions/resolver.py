"""Finding a feature version: by number, by global ID, or as of a point in time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.errors import VersionNotFoundError
from fs_spark.ids import is_id
from fs_spark.provenance import require_utc


class VersionResolver:
    """Resolves what a caller names to one feature version of a table.

    Args:
        catalog: where versions are recorded.
        current_definition_version: a table's current definition version, by name (raises
            TableNotFoundError for an unknown table); numbers count within it.
    """

    def __init__(self, catalog: Catalog, current_definition_version: Callable[[str], int]):
        self._catalog = catalog
        self._current = current_definition_version

    def resolve(
        self, table: str, version: int | str | None = None, as_of: datetime | None = None
    ) -> tuple[FeatureVersion | None, FeatureVersion | None]:
        """The version asked for (the latest with neither; None before the first write), and the
        next version of the same table and definition version that committed to Delta."""
        current = self._current(table)
        if version is not None and as_of is not None:
            raise ValueError("pass either version or as_of, not both")
        every = self._catalog.versions(table)
        chosen: FeatureVersion | None
        if isinstance(version, str):
            if not is_id(version):
                raise VersionNotFoundError(table, version, "a version ID is a UUIDv7 string")
            found = [v for v in every if v.version_id == version]
            if not found:
                raise VersionNotFoundError(table, version, f"it has {len(every)} version(s)")
            chosen = found[0]
        else:
            candidates = [v for v in every if v.definition_version == current]
            if isinstance(version, int) and not isinstance(version, bool):
                found = [v for v in candidates if v.version_number == version]
                if not found:
                    numbers = f"versions 1..{len(candidates)}" if candidates else "no versions yet"
                    raise VersionNotFoundError(table, version, f"definition version {current} has {numbers}")
                chosen = found[0]
            elif version is not None:
                raise VersionNotFoundError(table, version, "a version is a number or a version ID")
            elif as_of is not None:
                moment = require_utc(as_of, "as_of")
                before = [v for v in candidates if v.committed_at <= moment]
                if not before:
                    first = candidates[0].committed_at.isoformat() if candidates else "never"
                    raise VersionNotFoundError(table, f"as of {moment.isoformat()}", f"its first commit was {first}")
                chosen = before[-1]
            else:
                chosen = candidates[-1] if candidates else None
        if chosen is None:
            return None, None
        # The next version that committed to Delta after it (a rollback commits nothing).
        later = [
            v
            for v in every
            if v.definition_version == chosen.definition_version
            and v.version_number > chosen.version_number
            and v.delta_version > chosen.delta_version
        ]
        return chosen, (later[0] if later else None)

    def exact(self, table: str, version: int | str) -> FeatureVersion:
        """The version a number or ID names (VersionNotFoundError when none does)."""
        found = self.resolve(table, version)[0]
        if found is None:
            raise VersionNotFoundError(table, version, "the table has no versions yet")
        return found

    def at_delta_version(self, table: str, delta_version: int) -> tuple[FeatureVersion | None, FeatureVersion | None]:
        """`resolve` of the latest version of the current definition version committed at or
        before a Delta version of the table."""
        current = self._current(table)
        candidates = [
            v
            for v in self._catalog.versions(table)
            if v.definition_version == current and v.delta_version <= delta_version
        ]
        if not candidates:
            raise VersionNotFoundError(
                table, f"at Delta version {delta_version}", "no feature version was committed at or before it"
            )
        return self.resolve(table, candidates[-1].version_id)
