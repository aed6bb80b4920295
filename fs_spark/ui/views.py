"""What each page of the UI shows, read from a store opened as the caller: its public reads redact
what the caller may not see, and the pages add nothing of a feature it may not read."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fs_spark.catalog.schema import (
    DEPLOYMENTS,
    DRIFT_SCORES,
    EXPERIMENTS,
    FEATURE_TABLES,
    MODEL_VERSIONS,
    MODELS,
    RUN_METRICS,
    RUNS,
    VERSION_PROFILES,
    VERSION_STATUS,
)
from fs_spark.ui.charts import Marker, series_chart, timeline_chart
from fs_spark.versions.status import quarantined

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore


def as_principal(store: FeatureStore, principal: str) -> FeatureStore:
    """The same store, opened as `principal` (its settings and, when started, its Spark)."""
    from fs_spark.store import FeatureStore

    spark = store.spark if store._session.started else None
    return FeatureStore(store.root, spark=spark, settings=store.settings, user=principal)


def section(id: str, title: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"id": id, "title": title, "columns": columns, "rows": rows}


def link(text: Any, href: str) -> dict[str, str]:
    return {"text": str(text), "href": href}


def brief(detail: dict[str, Any], width: int = 160) -> str:
    text = json.dumps(detail, default=str, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else ""


def _range(feature: Any) -> str:
    if feature.allowed_values:
        return ", ".join(map(str, feature.allowed_values))
    low = "" if feature.min_value is None else str(feature.min_value)
    high = "" if feature.max_value is None else str(feature.max_value)
    return f"[{low}, {high}]" if low or high else ""


def tables_page(store: FeatureStore) -> dict[str, Any]:
    tables = []
    for name in store.list_tables():
        definition = store.get_table(name)
        versions = store._catalog.versions(name)
        tables.append(
            {
                "name": name,
                "owner": definition.owner,
                "description": definition.description,
                "tags": list(definition.tags),
                "features": len(definition.features),
                "versions": len(versions),
                "latest": f"#{versions[-1].version_number} {_when(versions[-1].committed_at)}" if versions else "",
            }
        )
    return {"template": "tables.html", "title": "Feature tables", "tables": tables}


def _statuses(store: FeatureStore) -> dict[str, str]:
    return {version_id: "quarantined" for version_id in quarantined(store._catalog)}


def table_page(store: FeatureStore, table: str) -> dict[str, Any]:
    definition = store.get_table(table)
    readable = store._access.readable(definition)
    status = _statuses(store)
    versions = [
        {
            "number": v.version_number,
            "id": v.version_id,
            "at": _when(v.committed_at),
            "rows": v.row_count,
            "quarantined_rows": v.quarantined_row_count,
            "mode": v.mode,
            "status": status.get(v.version_id, "ok"),
            "user": v.user,
            "source": v.source_description,
        }
        for v in store.versions(table)
    ]
    features = [
        {
            "name": f.name,
            "dtype": f.dtype.name if hasattr(f.dtype, "name") else str(f.dtype),
            "unit": f.unit,
            "range": _range(f) if f.name in readable else "",
            "nullable": f.nullable,
            "owner": f.owner,
            "tags": list(f.tags),
            "description": f.description,
            "readable": f.name in readable,
        }
        for f in definition.features
    ]
    deprecations = [d for d in store.deprecations() if d.table == table]
    return {
        "template": "table.html",
        "title": f"Feature table {table}",
        "table": table,
        "definition": definition,
        "features": features,
        "versions": versions,
        "deprecations": deprecations,
    }


def feature_page(store: FeatureStore, table: str, feature: str) -> dict[str, Any]:
    definition = store.get_table(table)
    found = next(f for f in definition.features if f.name == feature)
    readable = feature in store._access.readable(definition)
    deprecations = [d for d in store.deprecations() if d.table == table and d.feature in (feature, None)]
    context: dict[str, Any] = {
        "template": "feature.html",
        "title": f"Feature {table}.{feature}",
        "table": table,
        "table_owner": definition.owner,
        "feature": found,
        "readable": readable,
        "deprecations": deprecations,
        "range": _range(found),
    }
    if not readable:
        return context
    profiles = {
        r["version_id"]: r
        for r in store._catalog.rows(VERSION_PROFILES.name)
        if r["table_name"] == table and r["feature"] == feature
    }
    history = []
    for version in store.versions(table):
        stats = version.stats.get("features", {}).get(feature, {})
        profile = profiles.get(version.version_id, {})
        history.append(
            {
                "number": version.version_number,
                "rows": version.row_count,
                "nulls": stats.get("null_count"),
                "min": stats.get("min"),
                "max": stats.get("max"),
                "mean": profile.get("mean"),
                "p50": profile.get("p50"),
            }
        )

    def numbers(key: str) -> list[tuple[int, float | None]]:
        return [(h["number"], h[key] if isinstance(h[key], int | float) else None) for h in history]

    null_rate = [
        (h["number"], h["nulls"] / h["rows"] if h["rows"] and h["nulls"] is not None else None) for h in history
    ]
    context["charts"] = [
        series_chart("rows per version", [(h["number"], float(h["rows"])) for h in history]),
        series_chart("null rate", null_rate),
        series_chart("minimum", numbers("min")),
        series_chart("maximum", numbers("max")),
        series_chart("mean (profiled versions)", numbers("mean")),
    ]
    context["history"] = history
    context["drift"] = [
        r for r in store._catalog.rows(DRIFT_SCORES.name) if r["table_name"] == table and r["feature"] == feature
    ]
    return context


def changes_page(store: FeatureStore, table: str, version_id: str) -> dict[str, Any]:
    """What one version changed against the version written before it."""
    versions = store.versions(table)
    at = next(i for i, v in enumerate(versions) if v.version_id == version_id)
    version, before = versions[at], versions[at - 1] if at else None
    definition = store.get_table(table)
    readable = store._access.readable(definition)
    facts: list[list[Any]] = [
        ["version", f"#{version.version_number}", f"#{before.version_number}" if before else ""],
        ["committed", _when(version.committed_at), _when(before.committed_at) if before else ""],
        ["rows written", version.row_count, before.row_count if before else ""],
        ["quarantined rows", version.quarantined_row_count, before.quarantined_row_count if before else ""],
        ["mode", version.mode, before.mode if before else ""],
        ["definition version", version.definition_version, before.definition_version if before else ""],
        ["schema", version.schema_hash[:19], before.schema_hash[:19] if before else ""],
        ["source", version.source_description or "", (before.source_description or "") if before else ""],
    ]
    stats_rows: list[list[Any]] = []
    for name in definition.feature_names:
        if name not in readable:
            stats_rows.append([name, "not readable", "", ""])
            continue
        now = version.stats.get("features", {}).get(name, {})
        then = before.stats.get("features", {}).get(name, {}) if before else {}
        for key in ("null_count", "min", "max"):
            if now.get(key) != then.get(key):
                stats_rows.append([name, key, now.get(key), then.get(key)])
    events = [
        [_when(r["at"]), r["status"], r["reason"], r["user"]]
        for r in store._catalog.rows(VERSION_STATUS.name)
        if r["version_id"] == version_id
    ]
    return {
        "title": f"What changed in {table} #{version.version_number}",
        "sections": [
            section("facts", "", ["", "this version", "the one before"], facts),
            section("stats", "Statistics that changed", ["feature", "figure", "now", "before"], stats_rows),
            section("events", "Quarantines and releases", ["at", "status", "reason", "user"], events),
        ],
    }


def training_sets_page(store: FeatureStore) -> dict[str, Any]:
    rows = [
        [m.training_set_id, m.name or "", _when(m.created_at), m.row_count, ", ".join(m.feature_version_ids), m.run_id]
        for m in store.training_sets()
    ]
    columns = ["training set", "name", "built", "rows", "feature versions", "run"]
    return {"title": "Training sets", "sections": [section("training-sets", "", columns, rows)]}


def _latest_runs(store: FeatureStore) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for row in sorted(store._catalog.rows(RUNS.name), key=lambda r: r["at"]):
        runs[row["run_id"]] = row
    return runs


def _run_metrics(store: FeatureStore) -> dict[str, dict[str, float]]:
    metrics: dict[str, dict[str, float]] = defaultdict(dict)
    for row in sorted(store._catalog.rows(RUN_METRICS.name), key=lambda r: (r["at"], r["step"] or 0)):
        metrics[row["run_id"]][row["key"]] = row["value"]
    return metrics


def experiments_page(store: FeatureStore) -> dict[str, Any]:
    runs, metrics = _latest_runs(store), _run_metrics(store)
    sections = []
    for experiment in store._catalog.rows(EXPERIMENTS.name):
        rows = [
            [
                r["run_id"],
                r["name"],
                r["status"],
                r["hypothesis"] or "",
                _when(r["started_at"]),
                ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.get(r["run_id"], {}).items())),
            ]
            for r in runs.values()
            if r["experiment_id"] == experiment["experiment_id"]
        ]
        columns = ["run", "name", "status", "hypothesis", "started", "metrics"]
        sections.append(section(f"experiment-{experiment['name']}", f"Experiment {experiment['name']}", columns, rows))
    return {"title": "Experiments and runs", "sections": sections}


def models_page(store: FeatureStore) -> dict[str, Any]:
    versions = defaultdict(list)
    for row in store._catalog.rows(MODEL_VERSIONS.name):
        versions[row["model_name"]].append(row)
    rows = [
        [link(m["name"], f"/ui/models/{m['name']}"), m["description"] or "", len(versions[m["name"]]), m["user"]]
        for m in store._catalog.rows(MODELS.name)
    ]
    return {"title": "Models", "sections": [section("models", "", ["model", "description", "versions", "owner"], rows)]}


def dashboard_page(store: FeatureStore, name: str) -> dict[str, Any]:
    """A model's metrics over time and across its versions, marked with what happened upstream."""
    mine = sorted(
        (r for r in store._catalog.rows(MODEL_VERSIONS.name) if r["model_name"] == name), key=lambda r: r["version"]
    )
    if not mine:
        raise LookupError(name)
    metrics = _run_metrics(store)
    names = sorted({k for r in mine for k in metrics.get(r["run_id"], {})})
    versions = []
    for i, row in enumerate(mine):
        before = mine[i - 1]["model_version_id"] if i else None
        versions.append(
            {
                "version": row["version"],
                "at": _when(row["created_at"]),
                "run": row["run_id"],
                "metrics": {k: f"{v:.4g}" for k, v in metrics.get(row["run_id"], {}).items()},
                "diff_href": f"/ui/models/{name}/diff/{before}/{row['model_version_id']}" if before else None,
            }
        )
    markers = upstream_markers(store, [r["model_version_id"] for r in mine])
    charts = [
        timeline_chart(
            metric,
            [
                (r["created_at"], metrics[r["run_id"]][metric], f"v{r['version']}")
                for r in mine
                if metric in metrics.get(r["run_id"], {})
            ],
            markers,
        )
        for metric in names
    ]
    if not charts:
        charts = [timeline_chart("no metrics logged", [], markers)]
    return {
        "template": "dashboard.html",
        "title": f"Model {name}: metrics and what changed upstream",
        "charts": charts,
        "versions": versions,
        "metric_names": names,
        "markers": [{"at": _when(m.at), "label": m.label, "href": m.href} for m in markers],
    }


def upstream_markers(store: FeatureStore, model_version_ids: list[str]) -> list[Marker]:
    """The events of the feature tables upstream of the model versions: each feature version
    written, each schema change, quarantine and rollback."""
    graph = store.lineage.graph()
    tables = set()
    for model_version in model_version_ids:
        for node in graph.upstream(f"model_version:{model_version}").nodes.values():
            if node.kind == "feature_version" and node.attrs.get("table_name"):
                tables.add(node.attrs["table_name"])
    markers = []
    numbers = {}
    for table in sorted(tables):
        for v in store._catalog.versions(table):
            numbers[v.version_id] = (table, v.version_number)
            kind = "rollback" if v.mode == "rollback" else "feature_version"
            label = f"{table} #{v.version_number}" + (" (rollback)" if kind == "rollback" else "")
            markers.append(Marker(v.committed_at, kind, label, f"/ui/changes/{table}/{v.version_id}"))
    for row in store._catalog.rows(FEATURE_TABLES.name):
        if row["table_name"] in tables and row["change_kind"] not in ("create", None):
            label = f"{row['table_name']} schema: {row['change_kind']} (definition v{row['definition_version']})"
            markers.append(Marker(row["applied_at"], "schema_change", label, f"/ui/tables/{row['table_name']}"))
    for row in store._catalog.rows(VERSION_STATUS.name):
        if row["table_name"] in tables and row["status"] == "quarantined" and row["version_id"] in numbers:
            table, number = numbers[row["version_id"]]
            label = f"{table} #{number} quarantined: {row['reason']}"
            markers.append(Marker(row["at"], "quarantine", label, f"/ui/changes/{table}/{row['version_id']}"))
    return sorted(markers, key=lambda m: m.at)


def model_diff_page(store: FeatureStore, name: str, a: str, b: str) -> dict[str, Any]:
    diff = store.lineage.diff(a, b)
    tables = [
        [t, ", ".join(f"#{n}" for n in was), ", ".join(f"#{n}" for n in now)] for t, (was, now) in diff.tables.items()
    ]
    only_a = [[kind, key] for kind, keys in sorted(diff.removed.items()) for key in keys]
    only_b = [[kind, key] for kind, keys in sorted(diff.added.items()) for key in keys]
    return {
        "title": f"Model {name}: what its inputs changed",
        "sections": [
            section("tables", "Feature versions read, per table", ["table", "before", "after"], tables),
            section("only-before", "Upstream only before", ["kind", "node"], only_a),
            section("only-after", "Upstream only after", ["kind", "node"], only_b),
        ],
    }


def deployments_page(store: FeatureStore) -> dict[str, Any]:
    rows = [
        [
            r["deployment_id"],
            r["environment"],
            link(f"{r['model_name']} v{r['model_version']}", f"/ui/models/{r['model_name']}"),
            r["status"],
            r["feature_service"] or "",
            _when(r["at"]),
        ]
        for r in store._catalog.rows(DEPLOYMENTS.name)
    ]
    columns = ["deployment", "environment", "model", "status", "feature service", "at"]
    return {"title": "Deployments", "sections": [section("deployments", "", columns, rows)]}


def quality_page(store: FeatureStore) -> dict[str, Any]:
    board = store.quality.scoreboard()
    rows = [
        [
            link(r.table, f"/ui/tables/{r.table}"),
            f"#{r.version_number}",
            _when(r.committed_at),
            r.status,
            r.rows,
            r.quarantined_rows,
            r.rule_failures,
            r.drift_checks,
            r.worst_psi,
            r.worst_ks,
            r.alerts,
        ]
        for r in board.rows
    ]
    columns = [
        "table",
        "version",
        "committed",
        "status",
        "rows",
        "quarantined",
        "rule failures",
        "drift checks",
        "worst psi",
        "worst ks",
        "alerts",
    ]
    return {"title": "Quality scoreboard", "sections": [section("scoreboard", "", columns, rows)]}


def alerts_page(store: FeatureStore) -> dict[str, Any]:
    rows = [
        [
            _when(a["at"]),
            a["table_name"] or "",
            a["feature"] or "",
            a["metric"],
            a["value"],
            a["threshold"],
            a["version_id"] or "",
            a["baseline"] or "",
        ]
        for a in sorted(store.quality.alerts(), key=lambda a: a["at"], reverse=True)
    ]
    columns = ["at", "table", "feature", "metric", "value", "threshold", "version", "baseline"]
    return {"title": "Alerts", "sections": [section("alerts", "", columns, rows)]}
