"""Access policies, in the library: who may read, write, deprecate or administer which features.

A policy file (`conf/policies.yaml`, strict YAML) names principals and their roles, and rules.
A rule matches a request when one of its roles is the principal's (or it names "*"), the action
is one of its actions, the table and the feature match its name patterns, and, when it lists tags,
the feature or its table carries one of them. A matching deny wins over any allow; a feature no
rule opens is closed. Regions: a table's data may be read only where the policy lists for it.

Example policy:
    principals:
      alice: {roles: [analyst]}
    rules:
      - {name: analysts_read, roles: [analyst], actions: [read], tables: ["customer_*"]}
      - {name: no_pii, roles: ["*"], actions: [read], tags: [pii], effect: deny}
    regions:
      customer_activity: [eu-west-1]
    sensitive_tags: [contact]
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fs_spark.errors import ConfigError

Action = Literal["read", "write", "deprecate", "admin"]
# Features with these tags never have raw statistics (min, max) stored, policy or not.
ALWAYS_SENSITIVE = frozenset({"pii"})
ACTIONS: tuple[str, ...] = ("read", "write", "deprecate", "admin")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Principal(_Strict):
    roles: tuple[str, ...] = ()


class Rule(_Strict):
    name: str
    roles: tuple[str, ...]
    actions: tuple[Action, ...]
    tables: tuple[str, ...] = ("*",)
    features: tuple[str, ...] = ("*",)
    tags: tuple[str, ...] = ()
    effect: Literal["allow", "deny"] = "allow"

    @field_validator("roles", "actions", "tables", "features")
    @classmethod
    def _not_empty(cls, value: tuple) -> tuple:
        if not value:
            raise ValueError("must list at least one entry (use '*' for any)")
        return value

    def matches(self, roles: set[str], action: str, table: str, feature: str, tags: set[str]) -> bool:
        return (
            ("*" in self.roles or bool(roles & set(self.roles)))
            and action in self.actions
            and any(fnmatchcase(table, p) for p in self.tables)
            and any(fnmatchcase(feature, p) for p in self.features)
            and (not self.tags or bool(tags & set(self.tags)))
        )


class Policy(_Strict):
    principals: dict[str, Principal] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    regions: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    sensitive_tags: tuple[str, ...] = ()  # more tags (beside pii) whose features keep no raw min/max

    def decide(self, principal: str, action: str, table: str, feature: str, tags: set[str]) -> tuple[bool, str]:
        """(allowed, the rule that decided: a rule name, or "default deny")."""
        roles = set(self.principals[principal].roles) if principal in self.principals else set()
        matched = [r for r in self.rules if r.matches(roles, action, table, feature, tags)]
        for rule in matched:
            if rule.effect == "deny":
                return False, rule.name
        if matched:
            return True, matched[0].name
        return False, "default deny"

    def regions_for(self, table: str) -> tuple[str, ...] | None:
        """The regions `table`'s data may be read in; None when the policy does not restrict it."""
        for pattern, regions in self.regions.items():
            if fnmatchcase(table, pattern):
                return regions
        return None


def load_policy(path: str | Path) -> Policy:
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return Policy.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(source, str(exc)) from exc
    except ValidationError as exc:
        raise ConfigError(source, str(exc)) from exc
