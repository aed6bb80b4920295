"""Feature services: a named, versioned set of lookups, so a model's whole input vector comes
from one online call (Feast's `FeatureService`).

Defined in Python or in YAML beside the tables (`conf/features/*.yaml`, key `feature_services:`),
applied like tables: applying a service whose lookups changed records its next version in the
`feature_services` catalog table; applying it unchanged records nothing.

    feature_services:
      - name: churn_model
        description: Inputs of the churn model
        lookups:
          - "customer_activity:spend_7d"
          - {table_name: customer_activity, feature_names: [orders_7d], default_values: {orders_7d: 0}}
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import FEATURE_SERVICES
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import DefinitionError, FeatureServiceMismatchError, FeatureServiceNotFoundError
from fs_spark.ids import new_id
from fs_spark.names import check_name
from fs_spark.training.lookups import FeatureLookup, as_lookups


class FeatureService(BaseModel):
    """A named set of lookups (no version pins: a service serves what is materialized)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    lookups: tuple[FeatureLookup, ...]
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()

    def __init__(self, **data):  # keyword-only, as every definition
        super().__init__(**data)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value, "feature service name")
        return value

    @field_validator("lookups", mode="before")
    @classmethod
    def _lookups(cls, value):
        items = [FeatureLookup.model_validate(v) if isinstance(v, dict) else v for v in value or ()]
        lookups = as_lookups(items)
        if not lookups:
            raise ValueError("a feature service needs at least one lookup")
        pinned = [lk.table_name for lk in lookups if lk.version is not None or lk.delta_version is not None]
        if pinned:
            raise ValueError(f"lookups of {pinned} pin a version; a feature service serves what is materialized")
        return tuple(lookups)

    @property
    def features(self) -> list[str]:
        """`table:feature` of every feature it serves (all of a table's where a lookup names none)."""
        return [f"{lk.table_name}:{name}" for lk in self.lookups for name in lk.feature_names or ("*",)]

    def fingerprint(self) -> str:
        return json.dumps([lk.model_dump(mode="json") for lk in self.lookups], sort_keys=True)


@dataclass(frozen=True)
class AppliedService:
    service: FeatureService
    version: int
    action: str  # create, update or unchanged

    def __str__(self) -> str:
        return f"{self.action:<11} feature service {self.service.name} v{self.version}"


def check_serves(
    applied: AppliedService, features: Sequence[str], definition_of: Callable[[str], FeatureTable]
) -> None:
    """A deployment's service must serve exactly the features its model was trained on."""
    served = {
        f"{lk.table_name}:{name}"
        for lk in applied.service.lookups
        for name in lk.feature_names or definition_of(lk.table_name).feature_names
    }
    missing, extra = sorted(set(features) - served), sorted(served - set(features))
    if missing or extra:
        raise FeatureServiceMismatchError(applied.service.name, applied.version, missing, extra)


def load_feature_services(path: str | Path) -> list[FeatureService]:
    """Every `feature_services:` entry of a YAML file, or of all `*.yaml`/`*.yml` of a folder."""
    path = Path(path)
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    services = []
    for file in files:
        try:
            document = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DefinitionError(str(file), f"cannot read YAML: {exc}") from exc
        for raw in document.get("feature_services") or []:
            try:
                services.append(FeatureService.model_validate(raw))
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise DefinitionError(str(raw.get("name")), f"{problems} (in {file})", "feature service") from None
    return services


class FeatureServices:
    """Applied feature services, from the catalog."""

    def __init__(self, catalog: Catalog, definition_of: Callable[[str], FeatureTable], user: str):
        self._catalog = catalog
        self._definition_of = definition_of
        self._user = user

    def _rows(self, name: str | None = None) -> list[dict]:
        rows = self._catalog.rows(FEATURE_SERVICES.name)
        return sorted((r for r in rows if name is None or r["name"] == name), key=lambda r: r["version"])

    def apply(self, services: Sequence[FeatureService]) -> list[AppliedService]:
        done, rows = [], []
        for service in services:
            for lookup in service.lookups:
                table = self._definition_of(lookup.table_name)  # TableNotFoundError, with the closest name
                for name in lookup.feature_names or ():
                    table.feature(name)  # FeatureNotFoundError, with the closest name
            previous = self._rows(service.name)
            if (
                previous
                and previous[-1]["lookups_json"] == service.fingerprint()
                and (previous[-1]["description"] == service.description)
            ):
                done.append(AppliedService(service, previous[-1]["version"], "unchanged"))
                continue
            version = previous[-1]["version"] + 1 if previous else 1
            rows.append(
                {
                    "event_id": new_id(),
                    "name": service.name,
                    "version": version,
                    "lookups_json": service.fingerprint(),
                    "description": service.description,
                    "owner": service.owner,
                    "tags": list(service.tags),
                    "user": self._user,
                    "at": datetime.now(UTC),
                }
            )
            done.append(AppliedService(service, version, "update" if previous else "create"))
        if rows:
            self._catalog.append(FEATURE_SERVICES, rows)
        return done

    def get(self, name: str, version: int | None = None) -> AppliedService:
        rows = self._rows(name)
        if version is not None:
            rows = [r for r in rows if r["version"] == version]
        if not rows:
            known = sorted({r["name"] for r in self._rows()})
            raise FeatureServiceNotFoundError(name, version, known)
        row = rows[-1]
        lookups = [FeatureLookup.model_validate(raw) for raw in json.loads(row["lookups_json"])]
        service = FeatureService(
            name=row["name"], lookups=lookups, description=row["description"], owner=row["owner"], tags=row["tags"]
        )
        return AppliedService(service, row["version"], "applied")
