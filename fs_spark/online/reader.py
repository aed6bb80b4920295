"""Online reads: feature vectors by entity key, in the training side's shape and semantics.

This is the fast path: no Spark and no catalog read per request. Definitions are read once per
(table, definition version) and the table's online state (which definition version is served,
the versions withheld, the features retired) is re-read at most every `check_interval_ms`, in
the same round trip as the vectors. Access is decided per feature from the policy, cached per
principal; denials are audited at once, allowed reads once per principal and feature per
`audit_seconds` (a Delta commit per request would cost more than the read).

Semantics, per entity row and feature (as a training set built now would have them):
- a key never materialized: the lookup's default, else None;
- a row older than the table's time to live: the default, else None;
- a stored null: None (a null is a value; the default is for a missing row);
- a value of a withheld version (quarantined, or rolled over): the default, else None, until
  the next materialization restores the served version's value;
- an unknown table or feature, a missing or mistyped key column, a retired feature: an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import FeatureType, parse_duration
from fs_spark.errors import (
    AccessDeniedError,
    EntityColumnError,
    FeatureNotFoundError,
    NotMaterializedError,
    OnlineRequestError,
    RetiredFeatureError,
)
from fs_spark.governance.access import AccessControl, Request
from fs_spark.online.base import OnlineStore
from fs_spark.online.cache import VectorCache
from fs_spark.online.encoding import Vector, decode_value, encode_key
from fs_spark.online.state import TableState, state_name
from fs_spark.training.lookups import FeatureLookup, as_lookups

PRESENT, NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"


@dataclass(frozen=True)
class OnlineResult:
    """Columns by output name, and per value Feast's status (PRESENT, NOT_FOUND: no served row,
    OUTSIDE_MAX_AGE: older than the time to live, NULL_VALUE: a stored null) and its row's
    event time."""

    columns: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    event_times: dict[str, list[datetime | None]]


@dataclass
class _Table:
    """What the reader knows of one table: its served state and definition, and when it looked."""

    state: TableState
    definition: FeatureTable
    ttl: timedelta | None
    index: dict[str, int]
    checked: float
    retire_at: dict[str, tuple[datetime, dict]]


class OnlineReader:
    """Reads vectors for one principal (`for_principal` gives a reader for another, sharing
    the store, the cache and the definitions).

    Args:
        store: the online store.
        store_name: how errors name it.
        definition_at: a table's definition at a definition version.
        check_table: raises TableNotFoundError for a name that is no table.
        access: the policy and audit log of the principal.
        cache: decoded vectors in process, or None.
        check_interval_ms: how stale the reader's view of a table's state may get.
        max_entities: most entity rows one call may ask for.
    """

    def __init__(
        self,
        store: OnlineStore,
        store_name: str,
        definition_at: Callable[[str, int], FeatureTable],
        check_table: Callable[[str], object],
        access: AccessControl,
        cache: VectorCache | None,
        check_interval_ms: float,
        max_entities: int,
        audit_seconds: float = 60.0,
    ):
        self.store = store
        self.store_name = store_name
        self._definition_at = definition_at
        self._check_table = check_table
        self._access = access
        self.cache = cache
        self._interval = check_interval_ms / 1000.0
        self.max_entities = max_entities
        self._audit_seconds = audit_seconds
        self._tables: dict[str, _Table] = {}
        self._definitions: dict[tuple[str, int], FeatureTable] = {}
        self._decisions: dict[tuple[str, int, str], tuple[bool, str]] = {}
        self._audited: dict[str, float] = {}
        self._lookups: dict[tuple[str, ...], list[FeatureLookup]] = {}
        self._lock = threading.Lock()

    def for_principal(self, access: AccessControl) -> OnlineReader:
        other = OnlineReader.__new__(OnlineReader)
        other.__dict__.update(self.__dict__)
        other._access = access
        other._decisions, other._audited = {}, {}
        return other

    # --- state ----------------------------------------------------------------------------------

    def _definition(self, table: str, definition_version: int) -> FeatureTable:
        found = self._definitions.get((table, definition_version))
        if found is None:
            found = self._definitions[(table, definition_version)] = self._definition_at(table, definition_version)
        return found

    def _apply_state(self, table: str, raw: bytes | None, now: float) -> _Table:
        state = TableState.from_bytes(raw)
        if state.definition_version is None:
            self._tables.pop(table, None)
            self._check_table(table)  # TableNotFoundError, with the closest name
            raise NotMaterializedError(table, self.store_name)
        known = self._tables.get(table)
        if known is not None and known.state.generation == state.generation:
            known.checked = now
            return known
        if self.cache is not None:
            self.cache.drop_table(table)
        definition = self._definition(table, state.definition_version)
        ttl = parse_duration(definition.ttl) if definition.ttl else None
        retire_at = {name: (datetime.fromisoformat(d["end"]), d) for name, d in state.retired.items()}
        fresh = _Table(state, definition, ttl, {f.name: i for i, f in enumerate(definition.features)}, now, retire_at)
        self._tables[table] = fresh
        return fresh

    def _fresh_tables(self, names: Sequence[str]) -> dict[str, _Table]:
        now = time.monotonic()
        due = [n for n in names if n not in self._tables or now - self._tables[n].checked >= self._interval]
        if due:
            for name, raw in zip(due, self.store.state([state_name(n) for n in due]), strict=True):
                self._apply_state(name, raw, now)
        return {n: self._tables[n] for n in names}

    def refresh(self) -> None:
        """Look at every known table's state now (after a change made in this process)."""
        for table in self._tables.values():
            table.checked = float("-inf")

    # --- access ---------------------------------------------------------------------------------

    def _require(self, lookup: FeatureLookup, table: _Table, names: Sequence[str]) -> None:
        if self._access.policy is None:
            return
        definition = table.definition
        undecided = [n for n in names if (definition.name, definition.definition_version, n) not in self._decisions]
        if undecided:
            request = Request("read", definition.name, undecided, definition=definition)
            for name, allowed, rule in self._access.decisions(request, definition, undecided):
                self._decisions[(definition.name, definition.definition_version, name)] = (allowed, rule)
        now = time.monotonic()
        due = []
        for name in names:
            allowed, rule = self._decisions[(definition.name, definition.definition_version, name)]
            thing = f"{definition.name}:{name}"
            if not allowed:
                self._access.audit([("read", thing, False, rule)])
                raise AccessDeniedError(self._access.principal, "read", definition.name, name, rule)
            if now - self._audited.get(thing, float("-inf")) >= self._audit_seconds:
                self._audited[thing] = now
                due.append(("read", thing, True, rule))
        self._access.audit(due)

    # --- reading --------------------------------------------------------------------------------

    def _as_lookups(self, features: Sequence[FeatureLookup | str]) -> list[FeatureLookup]:
        if all(isinstance(f, str) for f in features):
            key = tuple(str(f) for f in features)
            found = self._lookups.get(key)
            if found is None:
                found = self._lookups[key] = as_lookups(features)
            return found
        return as_lookups(features)

    def get(
        self, features: Sequence[FeatureLookup | str], entity_rows: Sequence[dict[str, Any]]
    ) -> dict[str, list[Any]]:
        """Columns: the entity rows' own, then each feature's output name."""
        return self.read(features, entity_rows).columns

    def read(self, features: Sequence[FeatureLookup | str], entity_rows: Sequence[dict[str, Any]]) -> OnlineResult:
        """The columns, with each value's status and its row's event time."""
        if not entity_rows:
            raise OnlineRequestError("no entity rows: pass at least one")
        if len(entity_rows) > self.max_entities:
            raise OnlineRequestError(f"{len(entity_rows)} entity rows; at most {self.max_entities} per call")
        lookups = self._as_lookups(features)
        if not lookups:
            raise OnlineRequestError("no features asked for")
        for lookup in lookups:
            if lookup.version is not None or lookup.delta_version is not None:
                raise OnlineRequestError(
                    f"lookup on {lookup.table_name} pins a version; online reads serve the materialized version "
                    "(pins apply to training sets)"
                )
        tables = self._fresh_tables(list(dict.fromkeys(lk.table_name for lk in lookups)))
        result: dict[str, list[Any]] = {}
        for column in dict.fromkeys(c for row in entity_rows for c in row):
            result[column] = [row.get(column) for row in entity_rows]
        plans = []
        for lookup in lookups:
            table = tables[lookup.table_name]
            definition = table.definition
            wanted = list(lookup.feature_names or definition.feature_names)
            unknown = [n for n in wanted if n not in table.index]
            if unknown:
                raise FeatureNotFoundError(definition.name, unknown, definition.feature_names)
            if table.retire_at:
                moment = datetime.now(UTC)
                for name in wanted:
                    retiring = table.retire_at.get(name) or table.retire_at.get("*")
                    if retiring is not None and moment >= retiring[0]:
                        schedule = retiring[1]
                        raise RetiredFeatureError(
                            f"{definition.name}.{name}", schedule["end"], schedule["replacement"], schedule["reason"]
                        )
            self._require(lookup, table, wanted)
            plans.append((lookup, table, wanted, self._keys(lookup, definition, entity_rows)))
        vectors = self._vectors(plans)
        now = datetime.now(UTC)
        out = OnlineResult(result, {c: [PRESENT] * len(entity_rows) for c in result}, {})
        for (lookup, table, wanted, _), found in zip(plans, vectors, strict=True):
            withheld, ttl = table.state.withheld, table.ttl
            live: list[Vector | None] = []
            states: list[str] = []
            for vector in found:
                if vector is None or vector.version_number in withheld:
                    live.append(None)
                    states.append(NOT_FOUND)
                elif ttl is not None and vector.event_time < now - ttl:
                    live.append(None)
                    states.append(OUTSIDE_MAX_AGE)
                else:
                    live.append(vector)
                    states.append(PRESENT)
            times = [v.event_time if v is not None else None for v in live]
            for name in wanted:
                i, default = table.index[name], lookup.default_values.get(name)
                column = lookup.output_name(name)
                values = [default if v is None else v.values[i] for v in live]
                result[column] = values
                out.statuses[column] = [
                    NULL_VALUE if state == PRESENT and value is None else state
                    for state, value in zip(states, values, strict=True)
                ]
                out.event_times[column] = times
        return out

    @staticmethod
    def _keys(lookup: FeatureLookup, definition: FeatureTable, entity_rows: Sequence[dict[str, Any]]) -> list[bytes]:
        columns = list(lookup.lookup_key or definition.keys)
        if len(columns) != len(definition.keys):
            raise EntityColumnError(
                columns[0], f"lookup_key {columns} must name one column per key {list(definition.keys)}"
            )
        types = definition.entity.keys
        keys = []
        for row in entity_rows:
            parts = []
            for column, key in zip(columns, definition.keys, strict=True):
                if column not in row:
                    raise EntityColumnError(column, f"is a key of {definition.name}", list(row))
                value = row[column]
                want_string = types[key] == FeatureType.STRING
                if isinstance(value, bool) or not isinstance(value, str if want_string else int):
                    raise EntityColumnError(
                        column,
                        f"is the key {definition.name}.{key} ({types[key].value}), "
                        f"not {type(value).__name__} {value!r}",
                    )
                parts.append(value)
            keys.append(encode_key(definition.name, definition.definition_version, parts))
        return keys

    def _vectors(self, plans) -> list[list[Vector | None]]:
        """The decoded vectors of every plan's keys: from the cache, the rest in one store read."""
        cache = self.cache
        out: list[list[Vector | None]] = []
        missing: list[tuple[int, int, bytes]] = []
        generations = {}
        for p, (_, table, _, keys) in enumerate(plans):
            name = table.definition.name
            row: list[Vector | None] = [None] * len(keys)
            if cache is not None:
                generations[name] = cache.generation(name)
                for i, key in enumerate(keys):
                    hit, vector = cache.get(name, key)
                    if hit:
                        row[i] = vector
                    else:
                        missing.append((p, i, key))
            else:
                missing.extend((p, i, key) for i, key in enumerate(keys))
            out.append(row)
        if missing:
            raw = self.store.read([key for _, _, key in missing])
            for (p, i, key), value in zip(missing, raw, strict=True):
                definition = plans[p][1].definition
                vector = decode_value(definition, value) if value is not None else None
                out[p][i] = vector
                if cache is not None:
                    cache.put(definition.name, key, vector, generations[definition.name])
        return out
