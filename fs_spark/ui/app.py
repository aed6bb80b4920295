"""The read-only web UI of `fs-spark serve`, at `/ui/`: server-rendered pages (Jinja2), every
asset inline, no script but the lineage picture's own.

Pages: feature tables and their versions; a feature's definition, its statistics over versions
(charts), drift scores and deprecations; what changed in a version; training sets; experiments
and runs with their metrics; models, each with a dashboard of its metrics over time marked with
the events upstream of it (feature versions, schema changes, quarantines, rollbacks); deployments;
the lineage graph; the quality scoreboard; alerts; health.

Callers are the principals of the feature server's tokens (`Authorization: Bearer <token>`); each
page is built from a store opened as that principal, so its access policy applies as to any read:
a feature it may not read shows no values and no statistics. The UI reads the catalog only and
starts no Spark.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from fs_spark.errors import AccessDeniedError, FsSparkError
from fs_spark.lineage.render import to_html
from fs_spark.observability.health import check_health
from fs_spark.ui import views

if TYPE_CHECKING:
    from fs_spark.store import FeatureStore

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


class UnauthorizedError(Exception):
    pass


def create_ui(store: FeatureStore, principal_of: Callable[[Request], str]) -> Starlette:
    """The UI over `store`; `principal_of` names the caller of a request (UnauthorizedError: none)."""
    stores: dict[str, FeatureStore] = {}
    lock = threading.Lock()

    def store_for(request: Request) -> tuple[FeatureStore, str]:
        principal = principal_of(request)
        with lock:
            found = stores.get(principal)
            if found is None:
                found = stores[principal] = views.as_principal(store, principal)
        return found, principal

    def page(name: str, build: Callable[..., dict[str, Any]]) -> Callable:
        async def endpoint(request: Request) -> Response:
            try:
                seen, principal = store_for(request)
            except UnauthorizedError:
                return HTMLResponse("<h1>401</h1><p>a valid bearer token is required</p>", 401)
            try:
                context = build(seen, **request.path_params)
            except AccessDeniedError as denied:
                return _message(principal, "Not allowed", str(denied), 403)
            except (FsSparkError, LookupError) as missing:
                return _message(principal, "Not found", f"{type(missing).__name__}: {missing}", 404)
            text = _TEMPLATES.get_template(context.pop("template", "rows.html")).render(
                page=name, principal=principal, **context
            )
            return HTMLResponse(text)

        return endpoint

    async def lineage(request: Request) -> Response:
        try:
            seen, _ = store_for(request)
        except UnauthorizedError:
            return HTMLResponse("<h1>401</h1>", 401)
        graph = seen.lineage.graph()
        return HTMLResponse(to_html(graph, title="fs_spark lineage"))

    def health_page(seen: FeatureStore) -> dict[str, Any]:
        report = check_health(seen)
        rows = [[c.name, c.status, c.figure, c.threshold, views.brief(c.detail)] for c in report.checks]
        columns = ["check", "status", "figure", "threshold", "detail"]
        return {"title": f"Health: {report.status}", "sections": [views.section("health", "", columns, rows)]}

    routes = [
        Route("/", page("tables", views.tables_page)),
        Route("/tables/{table}", page("table", views.table_page)),
        Route("/tables/{table}/features/{feature}", page("feature", views.feature_page)),
        Route("/changes/{table}/{version_id}", page("changes", views.changes_page)),
        Route("/training-sets", page("training_sets", views.training_sets_page)),
        Route("/experiments", page("experiments", views.experiments_page)),
        Route("/models", page("models", views.models_page)),
        Route("/models/{name}", page("dashboard", views.dashboard_page)),
        Route("/models/{name}/diff/{a}/{b}", page("model_diff", views.model_diff_page)),
        Route("/deployments", page("deployments", views.deployments_page)),
        Route("/quality", page("quality", views.quality_page)),
        Route("/alerts", page("alerts", views.alerts_page)),
        Route("/health", page("health", health_page)),
        Route("/lineage", lineage),
    ]
    return Starlette(routes=routes)


def _message(principal: str, title: str, text: str, status: int) -> HTMLResponse:
    section = {"id": "message", "title": "", "columns": [""], "rows": [[text]]}
    page = _TEMPLATES.get_template("rows.html").render(
        title=title, page="error", principal=principal, sections=[section]
    )
    return HTMLResponse(page, status)


def redirect_to_ui(request: Request) -> Response:
    return RedirectResponse("/ui/")
