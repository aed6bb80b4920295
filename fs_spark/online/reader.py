"""Online reads: feature vectors by entity key, in the training side's shape and semantics.

This is the fast path: no Spark and no catalog read per request. The table's online state (which
definition version is served, the versions withheld, the features retired) is re-read at most
every `check_interval_ms`, in the same round trip as the vectors; the served definition
version's latest revision when the state changes, when a caller names a feature it does not
know, and at least every `definition_check_seconds` (a revision may change the tags access is
decided on). Access is decided per feature from the policy, cached per principal and table view;
denials are audited at once, allowed reads once per principal and feature per `audit_seconds`
(a Delta commit per request would cost more than the read).

Semantics, per entity row and feature (as a training set built now would have them):
- a key never materialized: the lookup's default, else None;
- a row older than the lookup's lookback window (default: the table's time to live): the
  default, else None;
- a stored null: None (a null is a value; the default is for a missing row);
- a value of a withheld version (quarantined, or rolled over): the default, else None, until
  the next materialization restores the served version's value;
- an unknown table or feature, a missing or mistyped key column, a retired feature: an error.
"""

from __future__ import annotations

import operator
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
from fs_spark.online.encoding import Vector, key_prefix, make_decoder, translated, value_revision
from fs_spark.online.state import TableState, state_name
from fs_spark.training.lookups import FeatureLookup, as_lookups, check_outputs

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1  # integral keys match as longs, as in training sets
PRESENT, NOT_FOUND, NULL_VALUE, OUTSIDE_MAX_AGE = "PRESENT", "NOT_FOUND", "NULL_VALUE", "OUTSIDE_MAX_AGE"


class OnlineFeatures(dict):
    """Columns by name, as a dict; also Feast's `OnlineResponse` spelling: `.to_dict()` and
    `.to_df()`."""

    def to_dict(self) -> dict[str, list[Any]]:
        return dict(self)

    def to_df(self) -> Any:
        import pandas as pd

        return pd.DataFrame(dict(self))


@dataclass(frozen=True)
class OnlineResult:
    """Columns by output name, and per value Feast's status (PRESENT, NOT_FOUND: no served row,
    OUTSIDE_MAX_AGE: older than the time to live, NULL_VALUE: a stored null), its row's event
    time and its table."""

    columns: dict[str, list[Any]]
    statuses: dict[str, list[str]]
    event_times: dict[str, list[datetime | None]]  # one list per table, shared by its columns
    tables: dict[str, str]  # output column -> its table


@dataclass
class _Table:
    """What the reader knows of one table: its served state and definition, and when it looked."""

    state: TableState
    definition: FeatureTable
    ttl: timedelta | None
    index: dict[str, int]
    checked: float
    retire_at: dict[str, tuple[datetime, dict]]
    decode: Callable[[bytes], Vector]


class OnlineReader:
    """Reads vectors for one principal (`for_principal` gives a reader for another, sharing
    the store, the cache and the definitions).

    Args:
        store: the online store.
        store_name: how errors name it.
        definition_at: a table's definition at a definition version and revision (None: the
            latest revision).
        check_table: raises TableNotFoundError for a name that is no table.
        access: the policy and audit log of the principal.
        cache: decoded vectors in process, or None.
        check_interval_ms: how stale the reader's view of a table's state may get.
        definition_check_seconds: how stale its view of a table's definition may get.
        max_entities: most entity rows one call may ask for.
        fetched: told the bytes of the vectors each store read returned.
    """

    def __init__(
        self,
        store: OnlineStore,
        store_name: str,
        definition_at: Callable[[str, int, int | None], FeatureTable],
        check_table: Callable[[str], object],
        access: AccessControl,
        cache: VectorCache | None,
        check_interval_ms: float,
        max_entities: int,
        definition_check_seconds: float = 1.0,
        audit_seconds: float = 60.0,
        fetched: Callable[[int], None] | None = None,
    ):
        self.store = store
        self._fetched = fetched
        self.store_name = store_name
        self._definition_at = definition_at
        self._check_table = check_table
        self._access = access
        self.cache = cache
        self._interval = check_interval_ms / 1000.0
        self._definition_interval = definition_check_seconds
        self.max_entities = max_entities
        self._audit_seconds = audit_seconds
        self._tables: dict[str, _Table] = {}
        self._definitions: dict[tuple[str, int, int], FeatureTable] = {}
        self._latest_seen: dict[tuple[str, int], tuple[FeatureTable, float]] = {}
        # (table, feature) -> the table view decided on, allowed, rule: a new view decides again
        self._decisions: dict[tuple[str, str], tuple[_Table, bool, str]] = {}
        self._audited: dict[str, float] = {}
        self._ready: dict[tuple, tuple[tuple, list[FeatureLookup], list[_Prepared], int, float]] = {}
        # moves on whenever a table's known state changes; a list, so that the readers of other
        # principals (which share the tables and the prepared lookups) share it too
        self._epoch = [0]
        self._lock = threading.Lock()

    def for_principal(self, access: AccessControl) -> OnlineReader:
        other = OnlineReader.__new__(OnlineReader)
        other.__dict__.update(self.__dict__)
        other._access = access
        other._decisions, other._audited = {}, {}
        return other

    # --- state ----------------------------------------------------------------------------------

    def _definition(self, table: str, definition_version: int, revision: int) -> FeatureTable:
        """The definition at one revision (revisions never change: read once)."""
        found = self._definitions.get((table, definition_version, revision))
        if found is None:
            found = self._definition_at(table, definition_version, revision)
            self._definitions[(table, definition_version, revision)] = found
        return found

    def _latest(self, table: str, definition_version: int, now: float, reload: bool) -> FeatureTable:
        """The definition version's latest revision: what callers may ask for. Read again when
        the table's state changes (a materialization follows an `apply`), at most once per
        check interval when a caller asks for a feature it does not know (an `apply` since), and
        once its definition check interval has passed."""
        known = self._latest_seen.get((table, definition_version))
        if known is None or (reload and now - known[1] >= self._interval) or self._definition_due(known, now):
            known = self._latest_seen[(table, definition_version)] = (
                self._definition_at(table, definition_version, None),
                now,
            )
        return known[0]

    def _definition_due(self, known: tuple[FeatureTable, float] | None, now: float) -> bool:
        return known is not None and now - known[1] >= self._definition_interval

    def _decoder(self, table: str, definition_version: int, state: TableState, latest: FeatureTable):
        """Decodes a value by the revision it was written with (format 1 values: the state's)
        into `latest`'s features; a value of a revision not yet known reads that revision once."""
        decoders: dict[bytes, Callable[[bytes], Vector]] = {}

        def decode(data: bytes) -> Vector:
            tag = data[:5]
            found = decoders.get(tag)
            if found is None:
                revision = value_revision(data)
                if revision is None:
                    revision = state.revision
                stored = self._definition(table, definition_version, revision) if revision is not None else latest
                found = decoders[tag] = translated(stored, latest, make_decoder(stored))
            return found(data)

        return decode

    def _apply_state(self, table: str, raw: bytes | None, now: float, reload: bool = False) -> _Table:
        state = TableState.from_bytes(raw)
        if state.definition_version is None:
            self._epoch[0] += 1
            self._tables.pop(table, None)
            self._check_table(table)  # TableNotFoundError, with the closest name
            raise NotMaterializedError(table, self.store_name)
        known = self._tables.get(table)
        dv = state.definition_version
        due = self._definition_due(self._latest_seen.get((table, dv)), now)
        if known is not None and known.state.generation == state.generation and not reload and not due:
            known.checked = now
            return known
        changed = known is None or known.state.generation != state.generation
        definition = self._latest(table, dv, now, reload or changed)
        if known is not None and not changed and known.definition is definition:
            known.checked = now
            return known
        if self.cache is not None:
            self.cache.drop_table(table)
        ttl = parse_duration(definition.ttl) if definition.ttl else None
        retire_at = {name: (datetime.fromisoformat(d["end"]), d) for name, d in state.retired.items()}
        index = {f.name: i for i, f in enumerate(definition.features)}
        decode = self._decoder(table, dv, state, definition)
        fresh = _Table(state, definition, ttl, index, now, retire_at, decode)
        self._epoch[0] += 1
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
        self._epoch[0] += 1
        for table in self._tables.values():
            table.checked = float("-inf")

    # --- access ---------------------------------------------------------------------------------

    def _require(self, lookup: FeatureLookup, table: _Table, names: Sequence[str]) -> None:
        if self._access.policy is None:
            return
        definition = table.definition
        decided = self._decisions
        undecided = [n for n in names if (found := decided.get((definition.name, n))) is None or found[0] is not table]
        if undecided:
            request = Request("read", definition.name, undecided, definition=definition)
            for name, allowed, rule in self._access.decisions(request, definition, undecided):
                decided[(definition.name, name)] = (table, allowed, rule)
        now = time.monotonic()
        due = []
        for name in names:
            _, allowed, rule = decided[(definition.name, name)]
            thing = f"{definition.name}:{name}"
            if not allowed:
                self._access.audit([("read", thing, False, rule)])
                raise AccessDeniedError(self._access.principal, "read", definition.name, name, rule)
            if now - self._audited.get(thing, float("-inf")) >= self._audit_seconds:
                self._audited[thing] = now
                due.append(("read", thing, True, rule))
        self._access.audit(due)

    # --- reading --------------------------------------------------------------------------------

    def _prepared(self, features: Sequence[FeatureLookup | str]) -> list[_Prepared]:
        """The lookups made ready against the tables' current state, reused while it holds:
        until the first of their tables is due a state check, and while no table's state has
        changed in this reader (`_epoch`)."""
        if all(isinstance(f, str) for f in features):
            key: tuple = tuple(features)
        else:  # lookups are matched by identity; the cache keeps them alive
            key = ("#", *map(id, features))
        cached = self._ready.get(key)
        if cached is not None and (key[0] != "#" or all(map(operator.is_, cached[0], features))):
            if cached[3] == self._epoch[0] and time.monotonic() < cached[4]:
                return cached[2]
            lookups, prepared = cached[1], cached[2]
        else:
            lookups, prepared = as_lookups(features), None
            for lookup in lookups:
                if lookup.version is not None or lookup.delta_version is not None:
                    raise OnlineRequestError(
                        f"lookup on {lookup.table_name} pins a version; online reads serve the materialized "
                        "version (pins apply to training sets)"
                    )
        if not lookups:
            raise OnlineRequestError("no features asked for")
        tables = self._fresh_tables([lk.table_name for lk in lookups])
        if prepared is None or any(p.table is not tables[p.lookup.table_name] for p in prepared):
            prepared = [self._prepare(lk, tables) for lk in lookups]
            check_outputs((p.lookup.table_name, name, p.lookup.output_name(name)) for p in prepared for name in p.names)
            if len(self._ready) >= 1_000:  # callers that build new lookups every call
                self._ready.clear()
        until = min(t.checked for t in tables.values()) + self._interval
        self._ready[key] = (tuple(features), lookups, prepared, self._epoch[0], until)
        return prepared

    def _prepare(self, lookup: FeatureLookup, tables: dict[str, _Table]) -> _Prepared:
        """`lookup` against its table; a feature the reader does not know yet may have been added
        by an `apply` since it read the definition: read the latest revision (once per check
        interval) and try again."""
        try:
            return _Prepared.of(lookup, tables[lookup.table_name])
        except FeatureNotFoundError:
            name = lookup.table_name
            known = tables[name]
            raw = known.state.to_bytes()
            tables[name] = self._apply_state(name, raw, time.monotonic(), reload=True)
            if tables[name] is known:
                raise
            return _Prepared.of(lookup, tables[name])

    def get(self, features: Sequence[FeatureLookup | str], entity_rows: Sequence[dict[str, Any]]) -> OnlineFeatures:
        """Columns: the entity rows' own, then each feature's output name."""
        return OnlineFeatures(self.read(features, entity_rows, statuses=False).columns)

    def read(
        self, features: Sequence[FeatureLookup | str], entity_rows: Sequence[dict[str, Any]], statuses: bool = True
    ) -> OnlineResult:
        """The columns, and (with `statuses`) each value's status and its row's event time."""
        if not entity_rows:
            raise OnlineRequestError("no entity rows: pass at least one")
        if len(entity_rows) > self.max_entities:
            raise OnlineRequestError(f"{len(entity_rows)} entity rows; at most {self.max_entities} per call")
        prepared = self._prepared(features)
        moment = datetime.now(UTC)
        governed = self._access.policy is not None
        for p in prepared:
            if p.retiring:
                p.check_retired(moment)
            if governed:
                self._require(p.lookup, p.table, p.names)
        keys = [p.keys(entity_rows) for p in prepared]
        vectors = self._vectors(prepared, keys)
        columns: dict[str, list[Any]] = {}
        for column in dict.fromkeys(c for row in entity_rows for c in row):
            columns[column] = [row.get(column) for row in entity_rows]
        if any(output in columns for p in prepared for output, _ in p.outputs):
            check_outputs(
                ((p.lookup.table_name, n, p.lookup.output_name(n)) for p in prepared for n in p.names), columns
            )
        out = OnlineResult(columns, {c: [PRESENT] * len(entity_rows) for c in columns} if statuses else {}, {}, {})
        for p, found in zip(prepared, vectors, strict=True):
            withheld = p.table.state.withheld
            cutoff = moment - p.ttl if p.ttl is not None else None
            live = [
                v
                if v is not None
                and (not withheld or v.version_number not in withheld)
                and (cutoff is None or v.event_time >= cutoff)
                else None
                for v in found
            ]
            # one row per entity, then one tuple per feature: a column is a C-level copy
            by_feature = list(zip(*[v.values if v is not None else p.defaults for v in live], strict=True))
            for output, i in p.outputs:
                columns[output] = list(by_feature[i])
            if statuses:
                self._statuses(out, p, found, live, withheld)
        return out

    @staticmethod
    def _statuses(out: OnlineResult, p: _Prepared, found, live, withheld) -> None:
        states = [
            PRESENT
            if v is not None
            else NOT_FOUND
            if raw is None or raw.version_number in withheld
            else OUTSIDE_MAX_AGE
            for raw, v in zip(found, live, strict=True)
        ]
        times = [v.event_time if v is not None else None for v in live]
        table = p.lookup.table_name
        for output, _ in p.outputs:
            values = out.columns[output]
            out.statuses[output] = (
                [
                    NULL_VALUE if state == PRESENT and value is None else state
                    for state, value in zip(states, values, strict=True)
                ]
                if None in values
                else states.copy()
            )
            out.event_times[output] = times
            out.tables[output] = table

    def _vectors(self, prepared: list[_Prepared], keys: list[list[bytes]]) -> list[list[Vector | None]]:
        """The decoded vectors of every lookup's keys: from the cache, the rest in one store read."""
        cache = self.cache
        out: list[list[Vector | None]] = []
        missing: list[tuple[int, int, bytes]] = []
        generations: dict[str, int] = {}
        for n, (p, wanted) in enumerate(zip(prepared, keys, strict=True)):
            if cache is None:
                out.append([None] * len(wanted))
                missing.extend((n, i, key) for i, key in enumerate(wanted))
                continue
            name = p.lookup.table_name
            generations[name] = cache.generation(name)
            row: list[Vector | None] = []
            for i, key in enumerate(wanted):
                hit, cached = cache.get(name, key)
                row.append(Vector(*cached) if cached is not None else None)
                if not hit:
                    missing.append((n, i, key))
            out.append(row)
        if missing:
            raw = self.store.read([key for _, _, key in missing])
            if self._fetched is not None:
                self._fetched(sum(len(value) for value in raw if value is not None))
            for (n, i, key), value in zip(missing, raw, strict=True):
                p = prepared[n]
                vector = p.table.decode(value) if value is not None else None
                out[n][i] = vector
                if cache is not None:
                    name = p.lookup.table_name
                    # a plain tuple: untracked by the garbage collector (see `Vector`)
                    cache.put(name, key, tuple(vector) if vector is not None else None, generations[name])
        return out


@dataclass
class _Prepared:
    """One lookup made ready against one state of its table: checked once, reused per call."""

    lookup: FeatureLookup
    table: _Table
    names: list[str]
    outputs: list[tuple[str, int]]  # (output column, feature index)
    defaults: tuple  # by feature index: the value of a missing row
    columns: list[str]  # entity columns, in the table's key order
    strings: list[bool]  # whether each key part is a string
    prefix: bytes
    ttl: timedelta | None
    retiring: bool

    @classmethod
    def of(cls, lookup: FeatureLookup, table: _Table) -> _Prepared:
        definition = table.definition
        names = list(lookup.feature_names or definition.feature_names)
        unknown = [n for n in names if n not in table.index]
        if unknown:
            raise FeatureNotFoundError(definition.name, unknown, definition.feature_names)
        columns = list(lookup.lookup_key or definition.keys)
        if len(columns) != len(definition.keys):
            raise EntityColumnError(
                columns[0], f"lookup_key {columns} must name one column per key {list(definition.keys)}"
            )
        types = definition.entity.keys
        return cls(
            lookup,
            table,
            names,
            [(lookup.output_name(n), table.index[n]) for n in names],
            tuple(lookup.default_values.get(f.name) for f in definition.features),
            columns,
            [types[k] == FeatureType.STRING for k in definition.keys],
            key_prefix(definition.name, definition.definition_version),
            lookup.lookback or table.ttl,  # as the training side: the lookup's window, else the ttl
            any(n in table.retire_at for n in (*names, "*")),
        )

    def check_retired(self, moment: datetime) -> None:
        for name in self.names:
            retiring = self.table.retire_at.get(name) or self.table.retire_at.get("*")
            if retiring is not None and moment >= retiring[0]:
                schedule = retiring[1]
                raise RetiredFeatureError(
                    f"{self.table.definition.name}.{name}", schedule["end"], schedule["replacement"], schedule["reason"]
                )

    def keys(self, entity_rows: Sequence[dict[str, Any]]) -> list[bytes]:
        prefix, columns, strings = self.prefix, self.columns, self.strings
        keys = []
        for row in entity_rows:
            parts = [prefix]
            for column, string in zip(columns, strings, strict=True):
                try:
                    value = row[column]
                except KeyError:
                    definition = self.table.definition
                    raise EntityColumnError(column, f"is a key of {definition.name}", list(row)) from None
                if string and type(value) is str:
                    raw = value.encode()
                    parts.append(b"s%d:" % len(raw) + raw)
                elif not string and type(value) is int and _LONG_MIN <= value <= _LONG_MAX:
                    parts.append(b"i%d;" % value)
                else:
                    self._wrong_type(column, value)
            keys.append(b"".join(parts))
        return keys

    def _wrong_type(self, column: str, value: Any) -> None:
        definition = self.table.definition
        key = definition.keys[self.columns.index(column)]
        kind = definition.entity.keys[key]
        if isinstance(value, bool) or not isinstance(value, str if kind == FeatureType.STRING else int):
            raise EntityColumnError(
                column, f"is the key {definition.name}.{key} ({kind.value}), not {type(value).__name__} {value!r}"
            )
        if isinstance(value, int) and not _LONG_MIN <= value <= _LONG_MAX:
            raise EntityColumnError(
                column, f"is the key {definition.name}.{key} ({kind.value}): {value} is beyond a 64-bit long"
            )
        raise EntityColumnError(column, f"is the key {definition.name}.{key}: {type(value).__name__} is not plain")
