"""A store's regions: which region its root is, whether it may write, replicating it to the
others and how far behind they are."""

from __future__ import annotations

from fs_spark.catalog.catalog import Catalog
from fs_spark.config import S3Settings
from fs_spark.errors import ReplicaWriteError, UnknownRegionError
from fs_spark.governance.access import AccessControl
from fs_spark.locks import store_locks
from fs_spark.replication.objects import objects
from fs_spark.replication.regions import RegionRoles, Regions, Role, load_regions
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
        self.region = self.regions.region_of(paths.root)
        if self.region is None:
            raise UnknownRegionError(paths.root, sorted(self.regions.regions))
        self._paths = paths
        self._catalog = catalog
        self._access = access
        self._session = session
        self._s3 = s3
        self._lock_timeout = lock_timeout

    def role(self) -> Role | None:
        return self.roles.role(self.region)  # type: ignore[arg-type]

    def check_writable(self, what: str, table: str | None = None) -> None:
        """Refuse a write here unless this region is home, or `table` is resident here."""
        role = self.role()
        if role is None or role.is_home:
            return
        if table is not None and self._access.resident_in(table, role.region):
            return
        raise ReplicaWriteError(role.region, role.home, what)

    def _replicator(self, region: str) -> Replicator:
        root = self.regions.root(region)
        paths = StorePaths(root)
        replica_catalog = Catalog(self._session, paths, store_locks(paths, self._s3, self._lock_timeout), self._s3)
        return Replicator(
            self._catalog,
            objects(self._paths.root, self._s3),
            replica_catalog,
            objects(root, self._s3),
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

    def status(self) -> dict[str, list[TableLag]]:
        """Each other region's lag, table by table."""
        return {region: self._replicator(region).lag() for region in self._targets(None)}
