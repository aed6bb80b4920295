"""Definitions in YAML files (`conf/features/*.yaml`), read and written without loss.

A file holds `entities:` (optional, referenced by name) and `feature_tables:`; its
`feature_services:` are read by `fs_spark.online.feature_service`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fs_spark.definitions.model import Entity, FeatureTable
from fs_spark.errors import DefinitionError


def load_definitions(path: str | Path) -> list[FeatureTable]:
    """Load every feature table from a YAML file, or from all `*.yaml`/`*.yml` files of a folder."""
    path = Path(path)
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    tables: list[FeatureTable] = []
    for file in files:
        try:
            document = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DefinitionError(str(file), f"cannot read YAML: {exc}") from exc
        tables.extend(definitions_from_dict(document, origin=str(file)))
    names = [t.name for t in tables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DefinitionError(", ".join(twice), f"defined more than once in {path}")
    return tables


def definitions_from_dict(document: dict[str, Any], origin: str = "<dict>") -> list[FeatureTable]:
    if not isinstance(document, dict) or set(document) - {"entities", "feature_tables", "feature_services"}:
        raise DefinitionError(
            origin, "a definitions file has only the keys 'entities', 'feature_tables' and 'feature_services'"
        )
    entities: dict[str, Entity] = {}
    for raw in document.get("entities") or []:
        try:
            entity = Entity.model_validate(raw)
        except ValidationError as exc:
            raise DefinitionError(origin, f"entity {raw.get('name')!r}: {_problems(exc)}") from exc
        entities[entity.name] = entity
    tables = []
    for raw in document.get("feature_tables") or []:
        raw = dict(raw)
        if isinstance(raw.get("entity"), str):
            if raw["entity"] not in entities:
                raise DefinitionError(raw.get("name", origin), f"unknown entity {raw['entity']!r} in {origin}")
            raw["entity"] = entities[raw["entity"]]
        try:
            tables.append(FeatureTable.model_validate(raw))
        except ValidationError as exc:
            raise DefinitionError(str(raw.get("name", origin)), _problems(exc)) from exc
    return tables


def _problems(exc: ValidationError) -> str:
    """Pydantic's report on one line: `field.path: message; ...`."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'definition'}: {e['msg']}" for e in exc.errors())


def dump_definitions(tables: Iterable[FeatureTable]) -> str:
    """YAML text that `load_definitions` reads back to equal definitions."""
    document = {"feature_tables": [t.to_dict() for t in tables]}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
