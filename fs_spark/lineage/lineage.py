"""`FeatureStore.lineage`: questions asked of the lineage graph.

Example:
    >>> store.lineage.upstream(model_version_id).ids("feature_version")     # doctest: +SKIP
    >>> store.lineage.downstream(version_id).of_kind("deployment")          # doctest: +SKIP
    >>> store.lineage.render(model_version_id, html="lineage.html")         # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.schema import LINEAGE_EDGES, MODEL_VERSIONS, RUNS, TRAINING_SETS
from fs_spark.errors import LineageNodeNotFoundError
from fs_spark.lineage.graph import KINDS, GraphCache, LineageGraph
from fs_spark.lineage.reconcile import ReconcileReport, reconcile
from fs_spark.lineage.render import to_dot, to_html
from fs_spark.names import check_name
from fs_spark.observability.metrics import StoreMetrics
from fs_spark.session import SessionSource
from fs_spark.tracking.records import Deployment


@dataclass(frozen=True)
class InputsDiff:
    """What changed between two model versions' inputs."""

    tables: dict[str, tuple[list[int], list[int]]]  # table -> (version numbers that supplied a, b), changed only
    added: dict[str, list[str]] = field(default_factory=dict)  # kind -> upstream node keys only b has
    removed: dict[str, list[str]] = field(default_factory=dict)  # kind -> upstream node keys only a has

    @property
    def unchanged(self) -> bool:
        return not (self.tables or self.added or self.removed)


@dataclass(frozen=True)
class MlflowLineage:
    """What stands behind an MLflow run or model in this store."""

    mlflow_run_ids: list[str]
    run_ids: list[str]
    training_set_ids: list[str]
    feature_version_ids: list[str]
    model_version_ids: list[str]


class Lineage:
    """Questions asked of the lineage graph the catalog implies, and links recorded by hand.

    Args:
        session: gives the Spark session that reads Delta versions when reconciling.
        catalog: where the records and hand-made links are.
        user: who records links.
        live_deployments: the deployments live now, in every environment.
        metrics: records each reconciliation with what it found (health reports the last one).
    """

    def __init__(
        self,
        session: SessionSource,
        catalog: Catalog,
        user: str,
        live_deployments: Callable[[], list[Deployment]],
        metrics: StoreMetrics,
    ):
        self._session = session
        self._metrics = metrics
        self._catalog = catalog
        self._user = user
        self._live_deployments = live_deployments
        self._graphs = GraphCache(catalog)

    def graph(self) -> LineageGraph:
        """The whole graph as the catalog has it now (built again only after the catalog changed)."""
        return self._graphs.graph()

    def upstream(self, node: str) -> LineageGraph:
        """Everything `node` (an ID or `kind:id`) came from."""
        return self.graph().upstream(node)

    def downstream(self, node: str) -> LineageGraph:
        """Everything that used `node`: training sets, runs, models, deployments."""
        return self.graph().downstream(node)

    def link(self, src: str, dst: str, relation: str, *, run=None) -> None:
        """Record an edge no other record implies, e.g. from an external dataset to a feature table.
        `src` and `dst` are `kind:id`."""
        check_name(relation, "relation")
        parts = []
        for node in (src, dst):
            kind, sep, ident = node.partition(":")
            if not sep or kind not in KINDS or not ident:
                raise LineageNodeNotFoundError(node)
            parts.append((kind, ident))
        self._catalog.append(
            LINEAGE_EDGES,
            [
                {
                    "src_kind": parts[0][0],
                    "src_id": parts[0][1],
                    "dst_kind": parts[1][0],
                    "dst_id": parts[1][1],
                    "relation": relation,
                    "run_id": getattr(run, "run_id", None),
                    "user": self._user,
                    "at": datetime.now(UTC),
                }
            ],
        )

    def diff(self, model_version_a: str, model_version_b: str) -> InputsDiff:
        """What changed between the inputs of two model versions: the feature versions that supplied
        their training rows, per table, and every upstream node (sources, transformations, training sets, runs) one has and the other not."""
        graph = self.graph()
        ups = [graph.upstream(f"model_version:{m}" if ":" not in m else m) for m in (model_version_a, model_version_b)]
        direct = []
        for key, up in zip((model_version_a, model_version_b), ups, strict=True):
            record = graph.node(key)
            read: dict[str, list[Any]] = {}
            for edge in up.edges:
                if edge.relation in ("supplied", "input"):
                    node = graph.nodes[edge.src]
                    read.setdefault(node.attrs.get("table_name", "?"), []).append(node.attrs.get("version_number"))
            direct.append(({t: sorted(set(v)) for t, v in read.items()}, record))
        tables = {}
        for table in sorted(set(direct[0][0]) | set(direct[1][0])):
            a, b = direct[0][0].get(table, []), direct[1][0].get(table, [])
            if a != b:
                tables[table] = (a, b)
        ignore = {"model_version", "model", "deployment"}
        keys_a = {k for k in ups[0].nodes if graph.nodes[k].kind not in ignore}
        keys_b = {k for k in ups[1].nodes if graph.nodes[k].kind not in ignore}

        def by_kind(keys: set[str]) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for key in sorted(keys):
                out.setdefault(graph.nodes[key].kind, []).append(key)
            return out

        return InputsDiff(tables, by_kind(keys_b - keys_a), by_kind(keys_a - keys_b))

    # --- MLflow, both ways --------------------------------------------------------------------

    def for_mlflow_run(self, mlflow_run_id: str) -> MlflowLineage:
        """The fs_spark runs, training sets, feature versions and model versions behind an MLflow run."""
        catalog = self._catalog
        runs = sorted({r["run_id"] for r in catalog.rows(RUNS.name) if r["mlflow_run_id"] == mlflow_run_id})
        sets = [
            r
            for r in catalog.rows(TRAINING_SETS.name)
            if r.get("mlflow_run_id") == mlflow_run_id or (r["run_id"] in runs)
        ]
        models = [r for r in catalog.rows(MODEL_VERSIONS.name) if r["run_id"] in runs]
        return self._summary([mlflow_run_id], runs, sets, models)

    def for_mlflow_model(self, mlflow_model_id: str) -> MlflowLineage:
        """The training sets and feature versions behind an MLflow logged model."""
        catalog = self._catalog
        models = [r for r in catalog.rows(MODEL_VERSIONS.name) if r["mlflow_model_id"] == mlflow_model_id]
        wanted = {t for m in models for t in m["training_set_ids"] or []}
        sets = [r for r in catalog.rows(TRAINING_SETS.name) if r["training_set_id"] in wanted]
        runs = sorted({m["run_id"] for m in models if m["run_id"]})
        mlflow_runs = sorted(
            {r["mlflow_run_id"] for r in catalog.rows(RUNS.name) if r["run_id"] in runs and r["mlflow_run_id"]}
        )
        return self._summary(mlflow_runs, runs, sets, models)

    def mlflow_runs(self, node: str) -> list[str]:
        """The reverse: the MLflow runs downstream of a feature version, training set or run."""
        down = self.downstream(node)
        found = {n.attrs.get("mlflow_run_id") for n in down.nodes.values() if n.kind in ("run", "training_set")}
        return sorted(f for f in found if f)

    @staticmethod
    def _summary(
        mlflow_runs: Sequence[str], runs: Sequence[str], sets: list[dict[str, Any]], models: list[dict[str, Any]]
    ) -> MlflowLineage:
        return MlflowLineage(
            mlflow_run_ids=sorted(mlflow_runs),
            run_ids=sorted(runs),
            training_set_ids=sorted(r["training_set_id"] for r in sets),
            feature_version_ids=sorted({v for r in sets for v in r["feature_version_ids"] or []}),
            model_version_ids=sorted(r["model_version_id"] for r in models),
        )

    def reconcile(self) -> ReconcileReport:
        """Check that every feature version, training set and model version the catalog refers to
        exists and is readable at its recorded Delta version; report each dangling link. The
        `metrics` row of the run keeps the counts and the first unauthorised links."""
        with self._metrics.measure("reconcile") as measure:
            report = reconcile(self._session(), self._catalog, self._live_deployments())
            measure.add(rows=report.checked)
            measure.tags.update(
                dangling=str(len(report.dangling)),
                unauthorised=str(len(report.unauthorised)),
                unauthorised_links=json.dumps([str(link) for link in report.unauthorised[:20]]),
            )
        return report

    # --- pictures -----------------------------------------------------------------------------

    def render(
        self, node: str, *, html: str | Path | None = None, dot: str | Path | None = None, direction: str = "both"
    ) -> LineageGraph:
        """Write the lineage around `node` as an HTML page and/or Graphviz DOT.

        Args:
            direction: "upstream", "downstream" or "both".
        """
        graph = self.graph()
        key = graph.resolve(node)
        parts = []
        if direction in ("upstream", "both"):
            parts.append(graph.upstream(key))
        if direction in ("downstream", "both"):
            parts.append(graph.downstream(key))
        if not parts:
            raise ValueError(f"direction must be upstream, downstream or both, not {direction!r}")
        nodes = {k: v for p in parts for k, v in p.nodes.items()}
        shown = LineageGraph(nodes, [e for p in parts for e in p.edges])
        if html is not None:
            Path(html).write_text(to_html(shown, focus=key), encoding="utf-8")
        if dot is not None:
            Path(dot).write_text(to_dot(shown, focus=key), encoding="utf-8")
        return shown
