"""Which writes' rows a feature version holds.

A version normally holds the rows of every write of its table (and definition version) up to
and including its own. A rollback is a version that wrote nothing and makes an earlier
version's rows current again: it holds what that version held, and the writes after it hold
the rollback's rows plus their own. Rows carry their write's number (`_fs_version`), so reads
leave out the rows of the writes a version does not hold; nothing is deleted.
"""

from __future__ import annotations

from fs_spark.catalog.records import FeatureVersion
from fs_spark.errors import VersionQuarantinedError

ROLLBACK = "rollback"


def series(versions: list[FeatureVersion], version: FeatureVersion) -> dict[int, FeatureVersion]:
    """The versions of `version`'s table and definition version, by number."""
    return {
        v.version_number: v
        for v in versions
        if v.table_name == version.table_name and v.definition_version == version.definition_version
    }


def included(versions: list[FeatureVersion], version: FeatureVersion) -> set[int]:
    """Numbers of the versions whose writes `version` holds (rollbacks themselves included)."""
    by_number = series(versions, version)
    held: set[int] = set()
    number: int | None = version.version_number
    while number:
        current = by_number.get(number)
        if current is None:
            break
        held.add(number)
        number = current.restores_version if current.mode == ROLLBACK else number - 1
    return held


def excluded(versions: list[FeatureVersion], version: FeatureVersion | None) -> tuple[int, ...]:
    """Numbers of earlier writes whose rows `version` does not hold: empty unless a rollback
    lies behind it, so ordinary reads need no filter."""
    if version is None:
        return ()
    held = included(versions, version)
    return tuple(
        sorted(
            n
            for n, v in series(versions, version).items()
            if n < version.version_number and n not in held and v.mode != ROLLBACK
        )
    )


def quarantined_within(
    versions: list[FeatureVersion], version: FeatureVersion, quarantined: dict[str, str]
) -> list[FeatureVersion]:
    """The quarantined versions whose rows `version` holds, by number."""
    held = included(versions, version)
    return [v for n, v in sorted(series(versions, version).items()) if n in held and v.version_id in quarantined]


def refuse_quarantined(
    versions: list[FeatureVersion], version: FeatureVersion, quarantined: dict[str, str], what: str = "the lookup"
) -> None:
    """Raise VersionQuarantinedError when `version` holds rows of a quarantined version (`what`
    names the operation: a lookup, a read, a rollback)."""
    hit = quarantined_within(versions, version, quarantined)
    if hit:
        raise VersionQuarantinedError(
            version.table_name,
            [v.version_id for v in hit],
            [quarantined[v.version_id] for v in hit],
            f"{what} of #{version.version_number}",
        )
