"""A home region left behind by a forced promotion, made a replica of the new home.

A forced promotion (`fs-spark promote eu --force`) is made while the home region cannot be
reached, so that region never hears of it: its role still says it is home. Once it can read the
other regions again, its writes are refused (`StaleHomeError`, from `StoreRegions`), and
`rejoin` (`store.rejoin()`, `fs-spark rejoin`, run in that region) makes it a replica:

- each Delta table keeps the commits it shares with the new home (the new home's replicated
  watermark of it, and any later entry it holds byte for byte); every later commit, with the
  data files it added, is moved under `_diverged/epoch-<n>/` (n: the new home's epoch), and the
  table's replicated watermark is set to the last shared commit;
- each catalog table keeps the rows the new home also holds; the others (the versions, runs,
  lineage... this region wrote alone) are moved to `_diverged/epoch-<n>/_catalog/<table>.parquet`.
  Rows of tables resident here stay (they were never the new home's), and so does the audit log
  (what this region did, which stays true);
- its role records the new home and epoch, last, so a rejoin cut short is run again whole.

Nothing is deleted: what the region wrote alone stays under `_diverged/`, to read or write again
in the home region. The next `replicate` from the new home brings the region level.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from fs_spark.catalog.catalog import Catalog, Row
from fs_spark.catalog.schema import AUDIT_LOG
from fs_spark.errors import RejoinError
from fs_spark.replication.delta_copy import (
    WATERMARKS,
    advance_watermark,
    commit_versions,
    files_of_commit,
    read_watermark,
)
from fs_spark.replication.objects import Objects
from fs_spark.replication.regions import ROLE, RegionRoles, Role
from fs_spark.replication.replicator import REPLICATED, Replicator, digest

DIVERGED = "_diverged"
_VERSIONED = re.compile(r"^\.?(\d{20})\.")  # a log entry of one version: commit, checksum, checkpoint
KEPT_TABLES = {AUDIT_LOG.name}  # the region's own record of what it did


@dataclass(frozen=True)
class RejoinResult:
    """What one rejoin set aside, and where."""

    region: str
    home: str
    epoch: int
    folder: str  # under the region's root
    commits: dict[str, list[int]]  # Delta table -> the commits set aside
    catalog_rows: dict[str, int]  # catalog table -> the rows set aside


def diverged_folder(epoch: int) -> str:
    return f"{DIVERGED}/epoch-{epoch:010d}"


def newest_role(roles: RegionRoles) -> Role:
    """The role with the newest epoch any region records (the current home's)."""
    recorded = [r for r in (roles.role(name) for name in roles.regions.regions) if r is not None]
    if not recorded:
        raise RejoinError(roles.regions.home, "no region records a role: run `fs-spark apply` with the regions file")
    return max(recorded, key=lambda r: r.epoch)


class Rejoin:
    """Makes `region` (`own`, `own_catalog`) a replica of the current home (`home`,
    `home_catalog`). `out` is the replicator from this region to the home (it names this
    region's tables, residents left out); `back` the one from the home to this region."""

    def __init__(self, roles: RegionRoles, region: str, out: Replicator, back: Replicator):
        self.roles = roles
        self.region = region
        self.out = out
        self.back = back

    @property
    def own(self) -> Objects:
        return self.out.home

    @property
    def own_catalog(self) -> Catalog:
        return self.out.home_catalog

    @property
    def home(self) -> Objects:
        return self.back.home

    def run(self) -> RejoinResult:
        own = self.roles.role(self.region)
        newest = newest_role(self.roles)
        if own is None or not own.is_home or newest.epoch <= own.epoch:
            said = f"its role says {own.home!r} is home at epoch {own.epoch}" if own else "it records no role"
            raise RejoinError(
                self.region,
                f"{said} and no region records a newer epoch; only a home left behind by a forced promotion rejoins",
            )
        folder = diverged_folder(newest.epoch)
        commits = {}
        for table in self.out.data_tables():
            moved = self._set_aside_commits(table, folder)
            if moved:
                commits[table] = moved
        rows = self._set_aside_rows(folder)
        for mark in self.own.sizes(f"{WATERMARKS}/_catalog"):  # the next pass appends the home's rows anew
            self.own.delete(mark)
        self.own.write(ROLE, Role(self.region, newest.home, newest.epoch).to_bytes())
        return RejoinResult(self.region, newest.home, newest.epoch, folder, commits, rows)

    def _shared(self, table: str, versions: list[int]) -> int | None:
        """The newest commit of `table` this region shares with the home."""
        shared = read_watermark(self.home, table)
        for version in versions:
            if shared is not None and version <= shared:
                continue
            name = f"{table}/_delta_log/{version:020d}.json"
            if self.home.size(name) is None or self.home.read(name) != self.own.read(name):
                break
            shared = version
        return shared

    def _set_aside_commits(self, table: str, folder: str) -> list[int]:
        versions, _ = commit_versions(self.own, table, None)
        shared = self._shared(table, versions)
        diverged = [v for v in versions if shared is None or v > shared]
        if shared is None:  # the home never had any of it: the whole table
            names = list(self.own.sizes(table))
        else:
            names = []
            for version in diverged:
                names += files_of_commit(table, self.own.read(f"{table}/_delta_log/{version:020d}.json"))
            for name in self.own.sizes(f"{table}/_delta_log"):
                base = name.rsplit("/", 1)[-1]
                found = _VERSIONED.match(base)
                if (found and int(found.group(1)) > shared) or base == "_last_checkpoint":
                    names.append(name)  # Delta lists the log for its checkpoint without the pointer
        for name in names:
            if self.own.size(name) is not None:
                self._move(name, f"{folder}/{name}")
        if shared is not None:
            advance_watermark(self.own, table, shared)
        return diverged

    def _set_aside_rows(self, folder: str) -> dict[str, int]:
        resident = self.out.kept_out()  # tables kept out of the home: resident here
        out = {}
        for spec in REPLICATED:
            if spec.name in KEPT_TABLES:
                continue
            held = {digest(self.back.moved(r)) for r in self.back.home_catalog.rows(spec.name)}
            rows = self.own_catalog.rows(spec.name)
            alone = [i for i, r in enumerate(rows) if digest(r) not in held and r.get("table_name") not in resident]
            if not alone:
                continue
            self.own.write(f"{folder}/_catalog/{spec.name}.parquet", _parquet([rows[i] for i in alone]))
            drop = set(alone)
            self.own_catalog.replace_rows(spec, [r for i, r in enumerate(rows) if i not in drop])
            out[spec.name] = len(alone)
        return out

    def _move(self, name: str, to: str) -> None:
        self.own.write(to, self.own.read(name))
        self.own.delete(name)


def _parquet(rows: list[Row]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()
