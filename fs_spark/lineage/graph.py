"""The lineage graph: one view over the catalog's records.

Most edges are implied by records the store keeps anyway (a feature version names its source,
transformation, parents and run; a manifest names the feature versions it read; a model version
names its training sets), so they are derived here rather than written twice; `lineage_edges`
holds only the edges recorded by hand. Nodes are keyed `kind:id`. Edges point the way data
flows: from a source to the feature version made from it, on to training sets, model versions and
deployments. Each feature version is also linked to the next one of its table, whose rows
include it (`included_in`, or `restored` for a rollback): history, shown in pictures but not
walked, because a training set records the versions whose rows its join actually picked
(`supplied`), and only those are upstream of it. Training sets built before that was recorded
link every version up to the one they read (`input`).
"""

from __future__ import annotations

import hashlib
import html
import json
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from fs_spark.catalog.schema import (
    DEPLOYMENTS,
    EXPERIMENTS,
    EXPORTS,
    FEATURE_TABLES,
    FEATURE_VERSIONS,
    LINEAGE_EDGES,
    MATERIALIZATIONS,
    MODEL_VERSIONS,
    MODELS,
    RUN_INPUTS,
    RUN_METRICS,
    RUNS,
    SCORINGS,
    TRAINING_SETS,
)
from fs_spark.errors import LineageNodeNotFoundError

# Edges between the versions of one table: the history of its rows, not what fed a training set.
HISTORY = frozenset({"included_in", "restored"})

KINDS = (
    "source",
    "transformation",
    "feature",
    "feature_table",
    "experiment",
    "run",
    "feature_version",
    "training_set",
    "model",
    "model_version",
    "deployment",
    "predictions",
    "export",
    "online_store",
)


@dataclass(frozen=True)
class Node:
    kind: str
    id: str
    label: str
    detail: str = ""
    attrs: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    relation: str


def _short(text: str | None, width: int = 8) -> str:
    return (text or "")[-width:]


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class LineageGraph:
    """Nodes and edges, with the queries people ask of them."""

    def __init__(self, nodes: dict[str, Node], edges: list[Edge]):
        self.nodes = nodes
        self.edges = sorted(set(edges), key=lambda e: (e.src, e.dst, e.relation))
        self._out: dict[str, list[Edge]] = {}
        self._in: dict[str, list[Edge]] = {}
        for edge in self.edges:
            self._out.setdefault(edge.src, []).append(edge)
            self._in.setdefault(edge.dst, []).append(edge)

    def resolve(self, node: str) -> str:
        """The key of a node given as `kind:id`, a bare global ID, or the label listings show
        when only one node has it (`churn v1`, `customer_activity #2`)."""
        if node in self.nodes:
            return node
        found = [key for key, n in self.nodes.items() if n.id == node] or [
            key for key, n in self.nodes.items() if n.label == node
        ]
        if len(found) != 1:
            raise LineageNodeNotFoundError(node)
        return found[0]

    def node(self, node: str) -> Node:
        return self.nodes[self.resolve(node)]

    def _walk(self, start: str, forward: bool) -> LineageGraph:
        start = self.resolve(start)
        seen, queue, edges = {start}, deque([start]), []
        while queue:
            key = queue.popleft()
            for edge in (self._out if forward else self._in).get(key, []):
                if edge.relation in HISTORY:
                    continue
                edges.append(edge)
                nxt = edge.dst if forward else edge.src
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return LineageGraph({k: self.nodes[k] for k in seen}, edges)

    def to_text(self) -> str:
        """One line per node, by kind: what `fs-spark lineage` prints."""
        lines = []
        for node in sorted(
            self.nodes.values(), key=lambda n: (KINDS.index(n.kind) if n.kind in KINDS else 99, n.label)
        ):
            features = node.attrs.get("features")
            detail = node.detail + (f"; features {', '.join(features)}" if features else "")
            lines.append(f"{node.kind:<16} {node.label:<32} {detail}".rstrip())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        """The picture, in a notebook (Jupyter, Databricks `displayHTML`), in a frame of its own."""
        from fs_spark.lineage.render import to_html

        page = html.escape(to_html(self), quote=True)
        return f'<iframe srcdoc="{page}" style="width: 100%; height: 640px; border: 1px solid #ddd"></iframe>'

    def upstream(self, node: str) -> LineageGraph:
        """Everything `node` came from, down to sources and transformations, `node` included."""
        return self._walk(node, forward=False)

    def downstream(self, node: str) -> LineageGraph:
        """Everything that used `node`: impact analysis, `node` included."""
        return self._walk(node, forward=True)

    def of_kind(self, kind: str) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.kind == kind), key=lambda n: n.key)

    def ids(self, kind: str) -> set[str]:
        return {n.id for n in self.nodes.values() if n.kind == kind}

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "key": n.key,
                    "kind": n.kind,
                    "id": n.id,
                    "label": n.label,
                    "detail": n.detail,
                    "attrs": {k: _plain(v) for k, v in n.attrs.items()},
                }
                for n in sorted(self.nodes.values(), key=lambda n: n.key)
            ],
            "edges": [{"src": e.src, "dst": e.dst, "relation": e.relation} for e in self.edges],
        }


def source_key(description: str) -> str:
    return hashlib.sha256(description.encode()).hexdigest()[:16]


# The catalog tables the graph is built from.
GRAPH_TABLES = (
    DEPLOYMENTS,
    EXPERIMENTS,
    EXPORTS,
    FEATURE_TABLES,
    FEATURE_VERSIONS,
    LINEAGE_EDGES,
    MATERIALIZATIONS,
    MODEL_VERSIONS,
    MODELS,
    RUN_INPUTS,
    RUN_METRICS,
    RUNS,
    SCORINGS,
    TRAINING_SETS,
)


class GraphCache:
    """The last graph built from a catalog, kept while the catalog's rows of every table it
    reads are the same (cached) row lists: a health check or a page asks for the graph often,
    and building it for 10,000 versions costs a few hundred milliseconds."""

    def __init__(self, catalog) -> None:
        self._catalog = catalog
        self._built: tuple[tuple[list, ...], LineageGraph] | None = None

    def graph(self) -> LineageGraph:
        rows = tuple(self._catalog.rows(t.name) for t in GRAPH_TABLES)
        built = self._built
        if built is not None and all(a is b for a, b in zip(built[0], rows, strict=True)):
            return built[1]
        graph = build_graph(self._catalog)
        self._built = (rows, graph)
        return graph


def build_graph(catalog) -> LineageGraph:
    """Read every catalog table once (cached) and assemble the graph."""
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []

    def add(node: Node) -> str:
        nodes.setdefault(node.key, node)
        return node.key

    def link(src: str, dst: str, relation: str) -> None:
        edges.append(Edge(src, dst, relation))

    for row in catalog.rows(FEATURE_TABLES.name):
        key = f"feature_table:{row['table_name']}"
        if key not in nodes or nodes[key].attrs["definition_version"] < row["definition_version"]:
            nodes[key] = Node(
                "feature_table",
                row["table_name"],
                row["table_name"],
                f"definition v{row['definition_version']}.{row['revision']}",
                {"definition_version": row["definition_version"]},
            )

    versions = sorted(
        catalog.rows(FEATURE_VERSIONS.name),
        key=lambda r: (r["table_name"], r["definition_version"], r["version_number"]),
    )
    previous: dict[tuple[str, int], str] = {}
    numbered: dict[tuple[str, int, int], str] = {}
    for row in versions:
        key = add(
            Node(
                "feature_version",
                row["version_id"],
                f"{row['table_name']} #{row['version_number']}",
                f"definition v{row['definition_version']}, delta v{row['delta_version']}, {row['row_count']} rows",
                {
                    k: row[k]
                    for k in (
                        "table_name",
                        "definition_version",
                        "version_number",
                        "delta_version",
                        "committed_at",
                        "row_count",
                        "user",
                        "source_start",
                        "source_end",
                        "experiment_id",
                        "hypothesis",
                        "storage_path",
                    )
                },
            )
        )
        table = add(Node("feature_table", row["table_name"], row["table_name"]))
        link(table, key, "version")
        series = (row["table_name"], row["definition_version"])
        if row["mode"] == "rollback":  # holds the restored version's rows, not its predecessor's
            restored = numbered.get((*series, row["restores_version"]))
            if restored:
                link(restored, key, "restored")
        elif series in previous:
            link(previous[series], key, "included_in")
        previous[series] = key
        numbered[(*series, row["version_number"])] = key
        if row["source_description"]:
            link(add(Node("source", source_key(row["source_description"]), row["source_description"])), key, "source")
        if row["transformation_fingerprint"]:
            spec = json.loads(row["transformation_json"] or "{}")
            detail = ", ".join(
                [
                    *(f"{k}={v}" for k, v in sorted((spec.get("parameters") or {}).items())),
                    *(f"window {w}" for w in spec.get("windows") or ()),
                ]
            )
            link(
                add(
                    Node(
                        "transformation",
                        row["transformation_fingerprint"],
                        spec.get("name") or "transformation",
                        detail,
                        {"spec": spec},
                    )
                ),
                key,
                "transformation",
            )
        for parent in row["parents"] or []:
            link(add(Node("feature", parent, parent)), key, "parent")
        if row["run_id"]:
            link(f"run:{row['run_id']}", key, "produced")

    experiments = {r["experiment_id"]: r for r in catalog.rows(EXPERIMENTS.name)}
    for row in experiments.values():
        add(Node("experiment", row["experiment_id"], row["name"], row["description"] or ""))
    metrics: dict[str, dict[str, float]] = {}
    for row in sorted(catalog.rows(RUN_METRICS.name), key=lambda r: (r["step"], r["at"])):
        metrics.setdefault(row["run_id"], {})[row["key"]] = row["value"]
    latest_runs: dict[str, dict] = {}
    for row in sorted(catalog.rows(RUNS.name), key=lambda r: r["event_id"]):
        latest_runs[row["run_id"]] = row
    for run_id, row in latest_runs.items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.get(run_id, {}).items()))
        key = add(
            Node(
                "run",
                run_id,
                row["name"] or f"run …{_short(run_id)}",
                f"{row['stage']}, {row['status']}" + (f"; {shown}" if shown else ""),
                {
                    "stage": row["stage"],
                    "status": row["status"],
                    "hypothesis": row["hypothesis"],
                    "params": json.loads(row["params_json"] or "{}"),
                    "metrics": metrics.get(run_id, {}),
                    "mlflow_run_id": row["mlflow_run_id"],
                    "experiment_id": row["experiment_id"],
                },
            )
        )
        link(f"experiment:{row['experiment_id']}", key, "contains")
    for row in catalog.rows(RUN_INPUTS.name):
        link(f"feature_version:{row['version_id']}", f"run:{row['run_id']}", "read")

    for row in catalog.rows(TRAINING_SETS.name):
        lookups = json.loads(row["lookups_json"])
        features = [f"{lk['table_name']}.{f['name']}" for lk in lookups for f in lk["features"]]
        key = add(
            Node(
                "training_set",
                row["training_set_id"],
                row["name"] or f"training set …{_short(row['training_set_id'])}",
                f"{row['row_count']} rows" + (f", {row['context']}" if row.get("context") else ""),
                {
                    "features": features,
                    "row_count": row["row_count"],
                    "created_at": row["created_at"],
                    "context": row.get("context"),
                    "output_path": row["output_path"],
                    "mlflow_run_id": row.get("mlflow_run_id"),
                },
            )
        )
        suppliers = row.get("supplying_version_ids")
        if suppliers is not None:
            for version_id in suppliers:
                link(f"feature_version:{version_id}", key, "supplied")
        else:  # recorded before suppliers were: every version whose rows the one it read held
            for lookup in lookups:
                if lookup.get("version_number") is None:
                    continue
                series = (lookup["table_name"], lookup["definition_version"])
                left_out = set(lookup.get("excluded_versions") or ())
                for number in range(1, lookup["version_number"] + 1):
                    if number not in left_out and (*series, number) in numbered:
                        link(numbered[(*series, number)], key, "input")
        if row["run_id"]:
            link(f"run:{row['run_id']}", key, "built")

    for row in catalog.rows(MODELS.name):
        add(Node("model", row["model_id"], row["name"], row["description"] or ""))
    for row in catalog.rows(MODEL_VERSIONS.name):
        key = add(
            Node(
                "model_version",
                row["model_version_id"],
                f"{row['model_name']} v{row['version']}",
                f"mlflow {row['mlflow_model_id']}" if row["mlflow_model_id"] else "",
                {
                    "model_name": row["model_name"],
                    "version": row["version"],
                    "artifact_uri": row["artifact_uri"],
                    "mlflow_model_id": row["mlflow_model_id"],
                },
            )
        )
        link(f"model:{row['model_id']}", key, "version")
        for ts in row["training_set_ids"] or []:
            link(f"training_set:{ts}", key, "trained_on")
        if row["run_id"]:
            link(f"run:{row['run_id']}", key, "trained")

    for row in catalog.rows(DEPLOYMENTS.name):
        key = add(
            Node(
                "deployment",
                row["deployment_id"],
                f"{row['environment']}: {row['model_name']} v{row['model_version']}",
                f"{row['status']} since {_plain(row['at'])[:19]}",
                {"environment": row["environment"], "status": row["status"], "at": row["at"]},
            )
        )
        link(f"model_version:{row['model_version_id']}", key, "deployed")

    for row in catalog.rows(EXPORTS.name):
        key = add(
            Node(
                "export",
                row["export_id"],
                f"export to {row['path']}",
                f"{row['format']}, {row['row_count']} rows" + (f", {row['region']}" if row["region"] else ""),
                {
                    "path": row["path"],
                    "format": row["format"],
                    "region": row["region"],
                    "user": row["user"],
                    "at": row["at"],
                },
            )
        )
        link(f"{row['source_kind']}:{row['source_id']}", key, "exported")
        if row["run_id"]:
            link(f"run:{row['run_id']}", key, "exported")

    # Predictions: a model version scored the features a scoring set looked up.
    for row in catalog.rows(SCORINGS.name):
        key = add(
            Node(
                "predictions",
                row["scoring_id"],
                f"predictions {_plain(row['at'])[:19]}",
                f"{row['row_count']} rows" + (f" in {row['output_path']}" if row["output_path"] else ""),
                {"output_path": row["output_path"], "model_uri": row["model_uri"], "at": row["at"]},
            )
        )
        if row["model_version_id"]:
            link(f"model_version:{row['model_version_id']}", key, "scored")
        link(f"training_set:{row['scoring_set_id']}", key, "features")
        if row["run_id"]:
            link(f"run:{row['run_id']}", key, "scored")

    # The online store's state per table: fed by the versions each materialization read.
    for row in sorted(catalog.rows(MATERIALIZATIONS.name), key=lambda r: r["at"]):
        key = add(
            Node(
                "online_store",
                f"{row['online_store']}/{row['table_name']}",
                f"{row['table_name']} online",
                f"{row['online_store']}",
                {"online_store": row["online_store"], "table_name": row["table_name"]},
            )
        )
        nodes[key] = replace(
            nodes[key],
            detail=f"{row['online_store']}, serves #{row['version_number']}"
            if row["version_id"]
            else nodes[key].detail,
            attrs={**nodes[key].attrs, "version_id": row["version_id"], "materialized_at": row["at"]},
        )
        for version_id in row["supplying_version_ids"] or ():
            link(f"feature_version:{version_id}", key, "materialized")
        if row["run_id"]:
            link(f"run:{row['run_id']}", key, "materialized")

    for row in catalog.rows(LINEAGE_EDGES.name):
        src = add(Node(row["src_kind"], row["src_id"], row["src_id"]))
        dst = add(Node(row["dst_kind"], row["dst_id"], row["dst_id"]))
        link(src, dst, row["relation"])

    # An edge to a record that is gone (a dangling link) keeps a placeholder node; reconcile reports it.
    for edge in edges:
        for key in (edge.src, edge.dst):
            if key not in nodes:
                kind, _, ident = key.partition(":")
                nodes[key] = Node(kind, ident, f"missing {kind}", "no record", {"missing": True})
    return LineageGraph(nodes, edges)
