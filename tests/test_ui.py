"""The web UI of `fs-spark serve`, in a real browser: Playwright driving Debian's chromium. Pages load
without console errors, navigation works, the lineage graph and the correlation dashboard show
the expected nodes and markers, a principal denied a feature sees none of its values, and the
screenshots taken are not blank."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T0
from PIL import Image
from test_feature_server import serving

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.config import GovernanceSettings, OnlineSettings, ServerSettings, Settings, StoreSettings
from fs_spark.store import FeatureStore

pytestmark = pytest.mark.slow  # a browser

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
POLICY = """
principals:
  tester: {roles: [admin]}
  alice: {roles: [analyst]}
rules:
  - {name: everything, roles: [admin], actions: [read, write, deprecate, admin]}
  - {name: analysts_read, roles: [analyst], actions: [read]}
  - {name: no_finance_for_analysts, roles: [analyst], actions: [read], tags: [finance], effect: deny}
"""
CUSTOMERS = FeatureTable(
    name="customers",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    features=[Feature(name="spend", dtype="double", owner="growth", unit="eur"),
              Feature(name="income", dtype="double", tags=("finance",))],
    owner="growth",
    description="what customers spend",
)
SCHEMA = "customer_id long, ts timestamp, spend double, income double"
INCOME = 98765.4321  # a value only the finance feature holds: it must never reach alice


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    """A model trained twice on a table that meanwhile had a bad write quarantined and rolled back
    and a feature added; with tokens for tester (admin) and alice (no finance features)."""
    folder = tmp_path_factory.mktemp("ui")
    (folder / "policy.yaml").write_text(POLICY)
    settings = Settings(store=StoreSettings(root=str(folder / "store"), user="tester"),
                        governance=GovernanceSettings(policy_file=str(folder / "policy.yaml")),
                        online=OnlineSettings(server=ServerSettings(tokens={"t-tester": "tester", "t-alice": "alice"})))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(CUSTOMERS)
    entities = spark.createDataFrame([(i, T0 + timedelta(days=3)) for i in range(4)], "customer_id long, ts timestamp")

    def write(day, spend, visits=()):
        rows = [(i, T0 + timedelta(days=day), spend + i, INCOME + i, *visits) for i in range(4)]
        return store.write("customers", spark.createDataFrame(rows, SCHEMA + (", visits int" if visits else "")))

    def train(name, auc):
        with store.start_run("churn", name=name) as run:
            built = run.create_training_set(entities, ["customers:spend"])
            run.log_metrics({"val_auc": auc})
            return run.register_model("churn_model", training_sets=[built])

    write(0, 10.0)
    first = train("first", 0.71)
    bad = write(1, 5000.0)
    store.quarantine_version("customers", bad.version_number, "a feed sent cents as euros")
    store.rollback("customers", 1, reason="a feed sent cents as euros")
    store.apply(CUSTOMERS.with_(features=[*CUSTOMERS.features, Feature(name="visits", dtype="int")]))
    write(2, 11.0, visits=(3,))
    second = train("second", 0.64)
    store.deploy(second.model_version_id, "prod")
    return store, first, second


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed: run `make setup`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        yield launched
        launched.close()


def open_page(browser, token):
    context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {token}"},
                                  viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return page, problems


def not_blank(path: Path) -> None:
    image = Image.open(path).convert("L")
    low, high = image.getextrema()
    colours = len(image.getcolors(maxcolors=1 << 16) or [])
    assert image.size[0] >= 800 and high - low > 100 and colours > 20, (path, image.size, low, high, colours)


def test_every_page_loads_and_navigation_works(history, browser, tmp_path):
    store, first, second = history
    with serving(store) as url:
        page, problems = open_page(browser, "t-tester")
        page.goto(url + "/ui/")
        assert page.locator("h1").inner_text() == "Feature tables"
        page.click("text=customers")
        assert page.locator("h1").inner_text() == "Feature table customers"
        assert page.locator("#versions tr").count() == 1 + 4  # header, three writes and the rollback
        page.click("#features >> text=spend")
        assert page.locator("h1").inner_text() == "Feature customers.spend"
        assert page.locator("svg.chart").count() >= 4 and "eur" in page.content()
        for name, heading in (("Training sets", "Training sets"), ("Experiments", "Experiments and runs"),
                              ("Models", "Models"), ("Deployments", "Deployments"), ("Quality", "Quality scoreboard"),
                              ("Alerts", "Alerts")):
            page.click(f"nav >> text={name}")
            assert page.locator("h1").inner_text() == heading, name
        page.click("nav >> text=Health")
        assert page.locator("h1").inner_text().startswith("Health: ")
        page.screenshot(path=str(tmp_path / "feature.png"), full_page=True)
        assert problems == []


def test_the_lineage_graph_shows_the_model_and_pans_and_zooms(history, browser, tmp_path):
    store, first, second = history
    with serving(store) as url:
        page, problems = open_page(browser, "t-tester")
        page.goto(url + "/ui/lineage")
        page.wait_for_selector("body[data-rendered]")
        keys = set(page.eval_on_selector_all("g.node", "nodes => nodes.map(n => n.dataset.key)"))
        assert {f"model_version:{first.model_version_id}", f"model_version:{second.model_version_id}"} <= keys
        assert sum(1 for k in keys if k.startswith("feature_version:")) == 4
        page.click("#zoom-in")
        assert float(page.get_attribute("svg", "data-zoom")) == pytest.approx(1.25, abs=0.01)
        page.click("#zoom-fit")
        assert page.get_attribute("svg", "data-zoom") == "1.000"
        page.click(f'g.node[data-key="model_version:{second.model_version_id}"]')
        assert page.locator("#selected").inner_text() == f"model_version:{second.model_version_id}"
        page.screenshot(path=str(tmp_path / "lineage.png"))
        not_blank(tmp_path / "lineage.png")
        assert problems == []


def test_the_dashboard_marks_what_changed_upstream_and_links_to_it(history, browser, tmp_path):
    store, first, second = history
    with serving(store) as url:
        page, problems = open_page(browser, "t-tester")
        page.goto(url + "/ui/models/churn_model")
        kinds = page.eval_on_selector_all("svg.timeline a.marker", "ms => ms.map(m => m.dataset.kind)")
        assert sorted(set(kinds)) == ["feature_version", "quarantine", "rollback", "schema_change"]
        assert kinds.count("feature_version") == 3 and kinds.count("rollback") == 1
        assert page.locator("svg.timeline circle.point").count() == 2  # val_auc of v1 and v2
        assert "0.71" in page.locator("#model-versions").inner_text()
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        not_blank(shot)
        if os.environ.get("FS_SPARK_UPDATE_SCREENSHOTS"):  # the README's picture
            shutil.copy(shot, ROOT / "docs" / "images" / "correlation-dashboard.png")
        page.click("svg.timeline a.marker.quarantine rect")  # its handle, above the chart
        assert page.locator("h1").inner_text() == "What changed in customers #2"
        assert "a feed sent cents as euros" in page.locator("#events").inner_text()
        page.go_back()
        page.click("#model-versions >> text=diff")
        assert page.locator("h1").inner_text() == "Model churn_model: what its inputs changed"
        assert "customers" in page.locator("#tables").inner_text()
        assert problems == []


def test_a_denied_principal_sees_no_denied_values(history, browser):
    store, _, _ = history
    with serving(store) as url:
        page, problems = open_page(browser, "t-alice")
        seen = []
        for path in ("/ui/", "/ui/tables/customers", "/ui/tables/customers/features/income",
                     "/ui/tables/customers/features/spend", "/ui/training-sets", "/ui/experiments", "/ui/models",
                     "/ui/models/churn_model", "/ui/deployments", "/ui/lineage", "/ui/quality", "/ui/alerts",
                     "/ui/health"):
            assert page.goto(url + path).status == 200, path
            seen.append(page.content())
        page.goto(url + "/ui/tables/customers")
        page.click("text=what changed >> nth=0")
        seen.append(page.content())
        text = "\n".join(seen)
        assert "may not read customers.income" in text and "not readable" in text
        assert f"{INCOME:.4f}"[:6] not in text and str(INCOME)[:5] not in text  # no value, no statistic of it
        assert "alice" in text and problems == []
        # tester sees the same statistics
        page, _ = open_page(browser, "t-tester")
        page.goto(url + "/ui/tables/customers/features/income")
        assert str(INCOME)[:5] in page.content()
        # no token, no page
        anonymous = browser.new_context().new_page()
        assert anonymous.goto(url + "/ui/").status == 401
