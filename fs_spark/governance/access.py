"""Enforcing the access policy on every path that touches data, and auditing each decision.

Every public operation of `FeatureStore` that reads, writes or changes a feature table asks
`AccessControl.require` first, with the table and features it will touch: reads and time travel,
training-set builds (whatever spelling the lookup has: its table and feature names are what is
checked, never its output names), opening or rebuilding a stored training set (its rows hold
feature values), writes, definitions, deprecation, quarantine, rollback and VACUUM. An entity
DataFrame read straight from a feature table's files counts as a read of that whole table. All
decisions of one request go to the `audit_log` catalog table in one commit, allowed or not; a
denied request raises before anything is read or written. Without a policy file, access control
is off (a single-user store) and nothing is audited. A training set written to a path of the
caller's (`create_training_set(path=...)`) is a copy of feature data: the region of that path
(`governance.locations`) must be one the policy allows for each table read, like the region the
process reads in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from pyspark.sql import DataFrame

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import AUDIT_LOG
from fs_spark.config import GovernanceSettings
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import AccessDeniedError
from fs_spark.governance.policies import ALWAYS_SENSITIVE, Policy, load_policy
from fs_spark.ids import new_id
from fs_spark.storage.paths import local_path


@dataclass(frozen=True)
class Request:
    """One action on some features of one table (None: all of them)."""

    action: str
    table: str
    features: Sequence[str] | None = None
    definition: FeatureTable | None = None  # for a table not applied yet
    copy_to: str | None = None  # for a read whose rows are written elsewhere: the destination's region


class AccessControl:
    """The policy in force for one principal in one region, with the audit log it writes to.

    Args:
        settings: the governance settings (policy file, region, locations).
        principal: who is acting.
        catalog: where decisions are audited.
        definition_of: the current definition of a table, by name.
        table_root: where feature tables live, to recognise raw reads of their files.
    """

    def __init__(
        self,
        settings: GovernanceSettings,
        principal: str,
        catalog: Catalog,
        definition_of: Callable[[str], FeatureTable],
        table_root: str,
    ):
        self.policy: Policy | None = load_policy(settings.policy_file) if settings.policy_file else None
        self.region = settings.region
        self._locations = dict(settings.locations)
        self._principal = principal
        self._catalog = catalog
        self._definition_of = definition_of
        self._table_root = table_root

    @property
    def enabled(self) -> bool:
        return self.policy is not None

    @property
    def sensitive_tags(self) -> frozenset[str]:
        """Tags whose features never have raw statistics stored: `pii`, and the policy's own."""
        return ALWAYS_SENSITIVE | frozenset(self.policy.sensitive_tags if self.policy else ())

    def _decide(self, policy: Policy, request: Request, table: FeatureTable, name: str) -> tuple[bool, str]:
        feature = table.feature(name)
        tags = set(feature.tags) | set(table.tags)
        allowed, rule = policy.decide(self._principal, request.action, table.name, name, tags)
        allowed_regions = policy.regions_for(table.name) if request.action == "read" else None
        if allowed and allowed_regions is not None and self.region not in allowed_regions:
            allowed, rule = False, f"regions of {table.name}: {list(allowed_regions)}, not {self.region!r}"
        elif (
            allowed
            and allowed_regions is not None
            and request.copy_to is not None
            and request.copy_to not in allowed_regions
        ):
            allowed, rule = False, f"regions of {table.name}: {list(allowed_regions)}, no copy to {request.copy_to!r}"
        return allowed, rule

    def require(self, *requests: Request) -> None:
        """Decide every feature of every request, audit them all, then raise on the first denial."""
        if self.policy is None or not requests:
            return
        rows, denied = [], None
        for request in requests:
            table = request.definition or self._definition_of(request.table)
            names = list(request.features) if request.features else list(table.feature_names)
            for name, allowed, rule in self.decisions(request, table, names):
                rows.append((request.action, f"{table.name}:{name}", allowed, rule))
                if not allowed and denied is None:
                    denied = AccessDeniedError(self._principal, request.action, table.name, name, rule)
        self.audit(rows)
        if denied is not None:
            raise denied

    def decisions(self, request: Request, table: FeatureTable, names: Sequence[str]) -> list[tuple[str, bool, str]]:
        """(feature, allowed, rule) for each of `names`, not audited: for callers that audit
        in their own rhythm (the online reader)."""
        if self.policy is None:
            return [(name, True, "") for name in names]
        return [(name, *self._decide(self.policy, request, table, name)) for name in names]

    def audit(self, decisions: Sequence[tuple[str, str, bool, str]]) -> None:
        """Append (action, object, allowed, rule) decisions to the audit log, as one request."""
        if self.policy is None or not decisions:
            return
        at, request_id = datetime.now(UTC), new_id()
        rows = [
            {
                "event_id": new_id(),
                "request_id": request_id,
                "principal": self._principal,
                "action": action,
                "object": thing,
                "decision": "allow" if allowed else "deny",
                "rule": rule,
                "at": at,
            }
            for action, thing, allowed, rule in decisions
        ]
        self._catalog.append(AUDIT_LOG, rows)

    def as_principal(self, principal: str) -> AccessControl:
        """The same policy and audit log, for another principal (a server's callers)."""
        other = copy.copy(self)
        other._principal = principal
        return other

    @property
    def principal(self) -> str:
        return self._principal

    def readable(self, table: FeatureTable) -> frozenset[str]:
        """The features of `table` this principal may read here (all, without a policy). Used
        to redact statistics, which are data of their feature; not audited, as nothing is read."""
        if self.policy is None:
            return frozenset(table.feature_names)
        request = Request("read", table.name)
        return frozenset(name for name in table.feature_names if self._decide(self.policy, request, table, name)[0])

    def redacted(self, version: FeatureVersion, table: FeatureTable) -> FeatureVersion:
        """`version` with the statistics of features this principal may not read taken out."""
        if self.policy is None:
            return version
        return version.without_stats_of(set(table.feature_names) - self.readable(table))

    def require_catalog(self) -> None:
        """The raw catalog holds every version's statistics and every audit row: under a policy
        only a principal who may administer every feature table opens it."""
        if self.policy is not None:
            self.require(*(Request("admin", name) for name in sorted(self._catalog.current_definitions())))

    def kept_out_of(self, region: str, tables: Sequence[str], *, audit: bool = True) -> set[str]:
        """The tables whose data the policy's regions (residency) keep out of `region`: a
        replication leaves them behind. Each decision is audited as a `replicate` request."""
        if self.policy is None:
            return set()
        decisions = []
        for name in tables:
            allowed_regions = self.policy.regions_for(name)
            allowed = allowed_regions is None or region in allowed_regions
            rule = "" if allowed_regions is None else f"regions of {name}: {list(allowed_regions)}"
            decisions.append(("replicate", f"{name}->{region}", allowed, rule))
        if audit:
            self.audit(decisions)
        return {thing.split("->")[0] for _, thing, allowed, _ in decisions if not allowed}

    def resident_in(self, table: str, region: str) -> bool:
        """Whether the policy keeps `table`'s data in `region` alone (its home, whatever the
        store's home region is)."""
        return self.policy is not None and self.policy.regions_for(table) == (region,)

    def region_of(self, path: str) -> str | None:
        """The region a storage location is in: the first `governance.locations` pattern it
        matches, else (a path of this store's own, or unmapped) the region this process runs in."""
        for pattern, region in self._locations.items():
            if fnmatchcase(path, pattern):
                return region
        return self.region

    def tables_read_by(self, frame: DataFrame) -> list[str]:
        """Feature tables whose files `frame` reads directly (a raw path instead of `read`)."""
        if self.policy is None:
            return []
        root = self._table_root
        prefix = (local_path(root) or root).rstrip("/") + "/"
        names = set()
        for uri in frame.inputFiles():
            path = local_path(uri) or uri
            if path.startswith(prefix):
                names.add(path[len(prefix) :].split("/", 1)[0])
        return sorted(names)

    def require_frame(self, frame: DataFrame) -> None:
        """An entity frame read from a feature table's files is a read of all its features."""
        self.require(*(Request("read", name) for name in self.tables_read_by(frame)))
