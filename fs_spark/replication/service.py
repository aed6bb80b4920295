"""A store's regions: which region its root is, whether it may write, replicating it to the
others and how far behind they are."""

from __future__ import annotations

from fs_spark.catalog.catalog import Catalog
from fs_spark.config import S3Settings
from fs_spark.errors import ReplicaWriteError, StaleHomeError, UnknownRegionError
from fs_spark.governance.access import AccessControl
from fs_spark.locks import store_locks
from fs_spark.replication.objects import objects
from fs_spark.replication.regions import RegionRoles, Regions, Role, load_regions
from fs_spark.replication.rejoin import Rejoin, RejoinResult, newest_role
from fs_spark.replication.replicator import ReplicationResult, Replicator, TableLag
from fs_spark.session import SessionSource
from fs_spark.storage.paths import StorePaths


class StoreRegions:
    """The regions of the store at `paths`, from the regions file."""

    def __init__(
        self,
        regions_file: str,
        paths: StorePaths,
        catalog: Catalog,
        access: AccessControl,
        session: SessionSource,
        s3: S3Settings,
        lock_timeout: float,
    ):
        self.regions: Regions = load_regions(regions_file)
        self.roles = RegionRoles(self.regions, s3)
        region = self.regions.region_of(paths.root)
        if region is None:
            raise UnknownRegionError(paths.root, sorted(self.regions.regions))
        self.region: str = region
        self._paths = paths
        self._catalog = catalog
        self._access = access
        self._session = session
        self._s3 = s3
        self._lock_timeout = lock_timeout

    def role(self) -> Role | None:
        return self.roles.role(self.region)

    def check_writable(self, what: str, table: str | None = None) -> None:
        """Refuse a write here unless this region is home (and no forced promotion left it
        behind), or `table` is resident here."""
        role = self.role()
        if role is None:
            return
        if role.is_home:
            newer = self.roles.newer_than(role)
            if newer is not None:
                raise StaleHomeError(role.region, newer.home, newer.epoch, what)
            return
        if table is not None and self._access.resident_in(table, role.region):
            return
        raise ReplicaWriteError(role.region, role.home, what)

    def _catalog_of(self, region: str) -> Catalog:
        paths = StorePaths(self.regions.root(region))
        return Catalog(self._session, paths, store_locks(paths, self._s3, self._lock_timeout), self._s3)

    def _replicator(self, region: str, source: str | None = None) -> Replicator:
        """The replicator from `source` (default: this region) to `region`."""
        source = source or self.region
        home_catalog = self._catalog if source == self.region else self._catalog_of(source)
        return Replicator(
            home_catalog,
            objects(self.regions.root(source), self._s3),
            self._catalog if region == self.region else self._catalog_of(region),
            objects(self.regions.root(region), self._s3),
            region,
            lambda tables, audit=True: self._access.kept_out_of(region, tables, audit=audit),
        )

    def _targets(self, to: str | list[str] | None) -> list[str]:
        wanted = [to] if isinstance(to, str) else list(to or [r for r in self.regions.regions if r != self.region])
        for region in wanted:
            self.regions.root(region)
        return wanted

    def replicate(self, to: str | list[str] | None = None) -> list[ReplicationResult]:
        """Copy this (home) region to `to` (default: every other region)."""
        self.check_writable("replication from this region")
        self.roles.record()
        return [self._replicator(region).replicate() for region in self._targets(to)]

    def rejoin(self) -> RejoinResult:
        """Make this region, a home left behind by a forced promotion, a replica of the new
        home (see `fs_spark.replication.rejoin`)."""
        home = newest_role(self.roles).home
        return Rejoin(self.roles, self.region, self._replicator(home), self._replicator(self.region, home)).run()

    def status(self) -> dict[str, list[TableLag]]:
        """Each other region's lag, table by table."""
        return {region: self._replicator(region).lag() for region in self._targets(None)}
