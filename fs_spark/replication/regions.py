"""Regions: named store roots, one of them the home where writes happen.

The regions are declared in a versioned file (`conf/regions.yaml`, `store.regions_file`):

    version: 1
    home: us
    regions:
      us: {root: "s3a://features-us/store"}
      eu: {root: "s3a://features-eu/store"}

`fs-spark plan conf/regions.yaml` shows what `apply` records. Which region is home is recorded
in every region's root (`_region.json`: the region, the home, an epoch), not only in the file,
so that a promotion changes it for every writer at once: a write checks its own root's record
and is refused in a replica (`ReplicaWriteError`). A promotion first claims its epoch in the
old home (created once, so of two promotions racing one is refused), then turns the old home
into a replica, then records the new home everywhere; the epoch counts promotions. A forced
promotion, with the old home unreachable, cannot claim: run those one at a time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fs_spark.config import S3Settings
from fs_spark.errors import ConfigError, PromotionError, UnknownRegionError
from fs_spark.replication.objects import Objects, objects
from fs_spark.storage.paths import absolute

log = logging.getLogger(__name__)

ROLE = "_region.json"
EPOCHS = "_region_epochs"  # one object per promotion, in the home it left: who won that epoch


class RegionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    root: str = Field(description="The region's store root: a local folder or s3a://bucket/prefix")


class Regions(BaseModel):
    """The regions file: a version, the home region and each region's root."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(ge=1)
    home: str
    regions: dict[str, RegionSpec]

    @model_validator(mode="after")
    def _home_is_a_region(self) -> Regions:
        if self.home not in self.regions:
            raise ValueError(f"home {self.home!r} is not one of the regions {sorted(self.regions)}")
        roots = [absolute(r.root) for r in self.regions.values()]
        if len(set(roots)) != len(roots):
            raise ValueError("two regions share one root")
        return self

    def region_of(self, root: str) -> str | None:
        """The region whose root is `root`, None when it is in no region."""
        wanted = absolute(root)
        return next((name for name, spec in self.regions.items() if absolute(spec.root) == wanted), None)

    def root(self, region: str) -> str:
        if region not in self.regions:
            raise UnknownRegionError(region, sorted(self.regions))
        return absolute(self.regions[region].root)


def load_regions(path: str | Path) -> Regions:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return Regions.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(str(path), str(exc)) from exc


@dataclass(frozen=True)
class Role:
    """What one region's root says of itself."""

    region: str
    home: str
    epoch: int

    @property
    def is_home(self) -> bool:
        return self.region == self.home

    def to_bytes(self) -> bytes:
        return json.dumps({"region": self.region, "home": self.home, "epoch": self.epoch}).encode()


def read_role(root: Objects) -> Role | None:
    if root.size(ROLE) is None:
        return None
    data = json.loads(root.read(ROLE))
    return Role(data["region"], data["home"], int(data["epoch"]))


class RegionRoles:
    """The roles recorded in each region's root."""

    def __init__(self, regions: Regions, s3: S3Settings):
        self.regions = regions
        self._s3 = s3

    def objects(self, region: str) -> Objects:
        return objects(self.regions.root(region), self._s3)

    def role(self, region: str) -> Role | None:
        return read_role(self.objects(region))

    def newer_than(self, role: Role) -> Role | None:
        """The newest role another region records past `role`'s epoch: `role`'s region was
        left behind by a forced promotion. A region that cannot be read is passed over, so a
        home stays writable while a replica is down."""
        newest = None
        for name in self.regions.regions:
            if name == role.region:
                continue
            try:
                other = self.role(name)
            except Exception as error:
                log.warning("fs_spark: the role of region %s could not be read: %s", name, error)
                continue
            if other is not None and other.epoch > role.epoch and (newest is None or other.epoch > newest.epoch):
                newest = other
        return newest

    def record(self) -> list[Role]:
        """Record each region's role where none is recorded yet (the file's home, epoch 1);
        the roles already recorded stand: the home changes only by promotion."""
        recorded = [self.role(name) for name in self.regions.regions]
        home = next((r.home for r in recorded if r is not None), self.regions.home)
        epoch = max((r.epoch for r in recorded if r is not None), default=1)
        out = []
        for name, role in zip(self.regions.regions, recorded, strict=True):
            if role is None:
                role = Role(name, home, epoch)
                self.objects(name).create(ROLE, role.to_bytes())
            out.append(role)
        return out

    def plan(self) -> list[str]:
        """What `record` would do, one line per region, and whether the file's home is the
        recorded one (a different home is made by promotion, not by the file)."""
        recorded = {name: self.role(name) for name in self.regions.regions}
        home = next((r.home for r in recorded.values() if r is not None), self.regions.home)
        lines = []
        for name, role in recorded.items():
            kind = "home" if name == home else f"replica of {home}"
            root = self.regions.root(name)
            lines.append(f"= region {name} at {root}: {kind}" if role else f"+ region {name} at {root}: {kind}")
        if home != self.regions.home:
            lines.append(
                f"! home: the file says {self.regions.home!r}, the regions record {home!r}; "
                f"run `fs-spark promote {self.regions.home}` to move it"
            )
        return lines

    def promote(self, region: str, *, force: bool = False) -> Role:
        """Make `region` the home. The old home becomes a replica first; if it cannot be
        reached, promotion needs `force` (its writers would otherwise go on writing)."""
        self.regions.root(region)
        current = self.role(region)
        if current is None:
            raise PromotionError(region, "its role is not recorded: run `fs-spark apply` with the regions file first")
        if current.is_home:
            return current
        old_home, epoch = current.home, current.epoch + 1
        try:
            self._claim(old_home, region, epoch)
            self.objects(old_home).write(ROLE, Role(old_home, region, epoch).to_bytes())
        except PromotionError:
            raise
        except Exception as exc:
            if not force:
                raise PromotionError(
                    region,
                    f"the home region {old_home!r} cannot be reached ({exc}); "
                    "promote with --force only if its writers are stopped",
                ) from exc
        for name in self.regions.regions:
            if name != old_home:
                self.objects(name).write(ROLE, Role(name, region, epoch).to_bytes())
        return Role(region, region, epoch)

    def _claim(self, old_home: str, region: str, epoch: int) -> None:
        """Claim `epoch` for `region` in the old home's root, created once (a conditional PUT on
        S3): of two promotions racing from one epoch, one wins and the other is refused before
        it writes anything. A claim of our own (a promotion run again) stands."""
        name = f"{EPOCHS}/{epoch:010d}.json"
        root = self.objects(old_home)
        if root.create(name, json.dumps({"epoch": epoch, "home": region}).encode()):
            return
        winner = json.loads(root.read(name))["home"]
        if winner != region:
            raise PromotionError(
                region,
                f"region {winner!r} was promoted to epoch {epoch} first (from home {old_home!r}); "
                f"it is the home region now",
            )
