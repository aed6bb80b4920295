"""Finding features: by name, description, tags, owner and unit, with the models and live
deployments that use each (`FeatureStore.search`, `fs-spark search`).

Every word of the query must match one of a feature's fields (or its table's); a hit's score adds,
per word, the weight of the best field it matched, so a name beats a tag, a tag an owner or a
unit, and those a word of a description. The catalog's definitions are read once per search, in
memory: ten thousand features take milliseconds (`bench/cli.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fs_spark.definitions.model import FeatureTable

_WORD = re.compile(r"[a-z0-9]+")
# weight of a query word found in each field; an exact name is worth more than a part of one
_EXACT_NAME, _NAME, _TAG, _OWNER, _UNIT, _TABLE, _DESCRIPTION = 10.0, 5.0, 4.0, 3.0, 3.0, 2.0, 1.0


@dataclass(frozen=True)
class SearchHit:
    """One feature (or a table, `feature` None) that matched, and who uses it."""

    table: str
    feature: str | None
    score: float
    matched: tuple[str, ...]  # the fields the query's words were found in
    description: str
    owner: str | None
    tags: tuple[str, ...]
    unit: str | None
    models: tuple[str, ...]  # model versions trained on it, "name vN"
    deployments: tuple[str, ...]  # live deployments using it, "environment: name vN"

    @property
    def name(self) -> str:
        return f"{self.table}:{self.feature}" if self.feature else self.table

    def to_text(self) -> str:
        used = [*self.models, *(f"live in {d}" for d in self.deployments)]
        parts = [f"{self.name}  ({self.score:g}: {', '.join(self.matched)})"]
        if self.description:
            parts.append(f"  {self.description}")
        extra = [
            f"owner {self.owner}" if self.owner else "",
            f"unit {self.unit}" if self.unit else "",
            f"tags {', '.join(self.tags)}" if self.tags else "",
            f"used by {', '.join(used)}" if used else "",
        ]
        if any(extra):
            parts.append("  " + "; ".join(e for e in extra if e))
        return "\n".join(parts)


def _words(text: str | None) -> set[str]:
    return set(_WORD.findall((text or "").lower()))


def _score(query: Sequence[str], phrase: str, fields: Mapping[str, tuple[float, str, set[str]]]) -> tuple[float, list]:
    """The hit's score and matched fields, or 0 when a word of the query matches nothing."""
    total, matched = 0.0, []
    for word in query:
        best, where = 0.0, None
        for field, (weight, text, words) in fields.items():
            found = word in text if field in ("name", "table") else word in words
            if found and weight > best:
                best, where = weight, field
        if where is None:
            return 0.0, []
        total += best
        if where not in matched:
            matched.append(where)
    if fields["name"][1] == phrase:
        total += _EXACT_NAME
    return total, matched


def search(
    tables: Iterable[FeatureTable],
    text: str,
    models_of: Mapping[str, Sequence[str]],
    deployments_of: Mapping[str, Sequence[str]],
    limit: int = 20,
) -> list[SearchHit]:
    """The best `limit` hits for `text`; `models_of` and `deployments_of` map `table:feature`
    to the model versions and live deployments that use it."""
    query = sorted(_words(text))
    if not query:
        raise ValueError("search for at least one word (letters or digits)")
    phrase = text.strip().lower()
    hits = []
    for table in tables:
        table_tags = " ".join(table.tags)
        table_fields = {
            "name": (_NAME, table.name, _words(table.name)),
            "tag": (_TAG, table_tags, _words(table_tags)),
            "owner": (_OWNER, table.owner or "", _words(table.owner)),
            "description": (_DESCRIPTION, table.description, _words(table.description)),
        }
        score, matched = _score(query, phrase, table_fields)
        if score:
            hits.append(
                SearchHit(
                    table.name,
                    None,
                    score,
                    tuple(matched),
                    table.description,
                    table.owner,
                    tuple(table.tags),
                    None,
                    (),
                    (),
                )
            )
        for feature in table.features:
            tags = " ".join(feature.tags)
            fields = {
                "name": (_NAME, feature.name, _words(feature.name)),
                "tag": (_TAG, tags, _words(tags)),
                "owner": (_OWNER, feature.owner or "", _words(feature.owner)),
                "unit": (_UNIT, feature.unit or "", _words(feature.unit)),
                "table": (_TABLE, table.name, _words(table.name)),
                "description": (_DESCRIPTION, feature.description, _words(feature.description)),
            }
            score, matched = _score(query, phrase, fields)
            if score:
                key = f"{table.name}:{feature.name}"
                hits.append(
                    SearchHit(
                        table.name,
                        feature.name,
                        score,
                        tuple(matched),
                        feature.description,
                        feature.owner or table.owner,
                        tuple(feature.tags),
                        feature.unit,
                        tuple(models_of.get(key, ())),
                        tuple(deployments_of.get(key, ())),
                    )
                )
    hits.sort(key=lambda h: (-h.score, h.name))
    return hits[:limit]
