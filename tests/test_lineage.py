"""The lineage graph: a model traced back to its sources, a feature version forward to its
deployments, what changed between two model versions, the picture, and OpenLineage events."""

from __future__ import annotations

import json
import random
import shutil
import subprocess

import pytest

from conftest import json_endpoint
from experiment_scenario import SPEND, T0
from fs_spark.errors import LineageNodeNotFoundError
from fs_spark.lineage.graph import Edge, LineageGraph, Node
from fs_spark.lineage.render import HEIGHT, WIDTH, layout

pytestmark = pytest.mark.slow  # the lineage graph end to end


def test_model_traced_back_to_source_rows_versions_and_transformations(experiment):
    up = experiment.store.lineage.upstream(experiment.models["v2"].model_version_id)
    spend1, spend2, spend7d = (experiment.versions[k] for k in ("spend1", "spend2", "spend7d"))
    # the join picked rows of both versions of spend (customer 1 after day 7 from version 2, the rest
    # from version 1), so both are upstream, each with its Delta version
    assert up.ids("feature_version") == {spend1.version_id, spend2.version_id, spend7d.version_id}
    assert up.node(spend2.version_id).attrs["delta_version"] == spend2.delta_version
    assert {n.label for n in up.of_kind("source")} == {"s3://raw/payments/2024-01-01", "s3://raw/payments/2024-01-08"}
    [transformation] = up.of_kind("transformation")
    assert (transformation.label, transformation.detail, transformation.id) == ("rolling_sum", "days=7, window 7d", "sha256:5d41402abc4b2a76")
    assert {n.label for n in up.of_kind("feature")} == {"spend:amount"}  # the derived table's parent feature
    assert up.ids("training_set") == {experiment.sets["second"].id}
    assert {n.label for n in up.of_kind("run")} == {"ingest", "more_history"}
    assert "deployment" not in {n.kind for n in up.nodes.values()}


def test_feature_version_traced_forward_to_models_and_deployments(experiment):
    down = experiment.store.lineage.downstream(experiment.versions["spend1"].version_id)
    assert down.ids("training_set") == {experiment.sets["first"].id, experiment.sets["second"].id}
    assert down.ids("model_version") == {m.model_version_id for m in experiment.models.values()}
    assert down.ids("deployment") == {d.deployment_id for d in experiment.deployments.values()}
    later = experiment.store.lineage.downstream(experiment.versions["spend2"].version_id)
    assert later.ids("model_version") == {experiment.models["v2"].model_version_id}
    assert later.ids("deployment") == {experiment.deployments["v2"].deployment_id}


def test_what_changed_between_two_model_versions(experiment):
    diff = experiment.store.lineage.diff(experiment.models["v1"].model_version_id, experiment.models["v2"].model_version_id)
    # model v2's rows came from spend versions 1 and 2 (v2 only supersedes customer 1 after day 7);
    # spend_7d supplied the same version to both
    assert diff.tables == {"spend": ([1], [1, 2])}
    assert diff.added["feature_version"] == [f"feature_version:{experiment.versions['spend2'].version_id}"]
    assert [k.split(":")[1] for k in diff.added["training_set"]] == [experiment.sets["second"].id]
    assert [k.split(":")[1] for k in diff.removed["training_set"]] == [experiment.sets["first"].id]
    assert "source" in diff.added and "source" not in diff.removed
    same = experiment.store.lineage.diff(experiment.models["v1"].model_version_id, experiment.models["v1"].model_version_id)
    assert same.unchanged


def test_a_graph_shows_itself_in_a_notebook_and_as_text(experiment):
    graph = experiment.store.lineage.upstream(experiment.models["v2"].model_version_id)
    page = graph._repr_html_()
    assert page.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and "churn_model v2" in page
    lines = str(graph).splitlines()
    assert len(lines) == len(graph.nodes)
    [second] = [line for line in lines if line.startswith("training_set") and "churn_v2" in line]
    assert second.endswith("features spend.amount, spend_7d.total")
    assert experiment.store.lineage.upstream("churn_model v2").nodes == graph.nodes  # by the label shown


def test_unknown_node_is_refused_by_name(experiment):
    with pytest.raises(LineageNodeNotFoundError, match="not in the lineage graph"):
        experiment.store.lineage.upstream("01a00000-0000-7000-8000-000000000000")


def test_dot_names_every_node_with_versions_and_stages(experiment, tmp_path):
    shown = experiment.store.lineage.render(experiment.models["v2"].model_version_id, dot=tmp_path / "g.dot")
    text = (tmp_path / "g.dot").read_text()
    assert text.startswith("digraph lineage {") and text.count(" -> ") == len(shown.edges)
    assert "churn_model v2" in text and "spend #2" in text and "training, finished; val_auc=0.78" in text
    assert "active since" in text  # the deployment, downstream of the model version


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert found, "a headless Chromium is needed: `make setup` installs Debian's chromium"
    return found


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.slow
def test_html_picture_renders_in_a_real_headless_browser(experiment, tmp_path):
    page = tmp_path / "lineage.html"
    shown = experiment.store.lineage.render(experiment.models["v2"].model_version_id, html=page)
    profile = tmp_path / "profile"
    base = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*base, "--virtual-time-budget=2000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert f'data-rendered="{len(shown.nodes)}"' in dom, "the page's script ran in the browser"
    assert f"{len(shown.nodes)} nodes, {len(shown.edges)} edges" in dom
    # the focused model version is selected on load: nothing unrelated is dimmed, the focus is named
    assert f"model_version:{experiment.models['v2'].model_version_id}</code>" in dom
    for label in ("churn_model v2", "spend #2", "rolling_sum", "prod: churn_model v2"):
        assert label in dom
    # on first view: the model it was drawn for in the title, the features each training set took,
    # and the whole graph inside the window
    assert "<h1>Lineage of model version churn_model v2</h1>" in dom
    assert '>amount, total</text>' in dom
    assert 'data-fits="true"' in dom
    shot = tmp_path / "lineage.png"
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1400,900", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_openlineage_events_for_writes_builds_and_registrations(experiment):
    events = _events(experiment.openlineage_file)
    by_job: dict[str, list[dict]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event)
    assert {"fs_spark.write.spend", "fs_spark.write.spend_7d", "fs_spark.training_set",
            "fs_spark.register_model.churn_model"} <= set(by_job)
    for name, items in by_job.items():
        runs: dict[str, list[str]] = {}
        for event in items:
            runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
        assert all(states == ["START", "COMPLETE"] for states in runs.values()), name
    spend2 = experiment.versions["spend2"]
    completes = [e for e in by_job["fs_spark.write.spend"] if e["eventType"] == "COMPLETE"]
    last = completes[-1]["outputs"][0]
    assert last["name"].endswith(spend2.storage_path.split("://")[-1]) and last["namespace"] == "file"
    assert last["facets"]["version"]["datasetVersion"] == str(spend2.delta_version)
    tags = {t["key"]: t["value"] for t in completes[-1]["run"]["facets"]["tags"]["tags"]}
    assert tags["fs_spark.version_id"] == spend2.version_id

    first = experiment.sets["first"]
    build = [e for e in by_job["fs_spark.training_set"] if e["eventType"] == "COMPLETE"][0]
    inputs = {(i["name"], i["facets"]["version"]["datasetVersion"]) for i in build["inputs"]}
    for lookup in first.lookups:
        assert any(n.endswith(lookup.storage_path.split("://")[-1]) and v == str(lookup.delta_version) for n, v in inputs)
    assert build["run"]["facets"]["parent"]["run"]["runId"] == experiment.runs["first"].id
    assert build["outputs"][0]["facets"]["version"]["datasetVersion"] == "0"


def test_a_refused_write_emits_fail_with_the_error(spark, tmp_path):
    from conftest import make_store
    from fs_spark.config import LineageSettings, Settings, StoreSettings
    from fs_spark import FeatureStore, ValidationError

    events = tmp_path / "ol.jsonl"
    settings = Settings(store=StoreSettings(root=str(tmp_path / "s"), user="t"), lineage=LineageSettings(
        openlineage={"transport": {"type": "file", "log_file_path": str(events), "append": True}}))
    store = FeatureStore(spark=spark, settings=settings)
    store.apply(SPEND)
    with pytest.raises(ValidationError):
        store.write("spend", spark.createDataFrame([(None, T0, 1.0)], "customer_id long, ts timestamp, amount double"))
    states = [(e["eventType"], e["job"]["name"]) for e in _events(events)]
    assert states == [("START", "fs_spark.write.spend"), ("FAIL", "fs_spark.write.spend")]
    fail = _events(events)[1]
    error = fail["run"]["facets"]["errorMessage"]
    assert "customer_id: rule key_not_null broken by 1 row(s)" in error["message"]
    assert "e.g." not in error["message"] + error["stackTrace"]  # lineage carries no values, not even examples
    assert error["stackTrace"].startswith("Traceback") and "ValidationError" in error["stackTrace"]
    assert make_store(spark, tmp_path / "quiet").events.enabled is False  # no config, no events


def test_reconcile_finds_nothing_dangling_in_a_healthy_store(experiment):
    report = experiment.store.lineage.reconcile()
    assert report.ok and report.dangling == [] and report.checked >= 10


def test_openlineage_http_transport_posts_events_as_to_marquez(spark, tmp_path):
    """The HTTP transport Marquez users configure, against a local HTTP endpoint standing in for Marquez."""
    from fs_spark import FeatureStore
    from fs_spark.config import LineageSettings, Settings, StoreSettings

    with json_endpoint(201) as (url, received):
        settings = Settings(store=StoreSettings(root=str(tmp_path / "s"), user="t"), lineage=LineageSettings(
            namespace="team_a", openlineage={"transport": {"type": "http", "url": url, "endpoint": "api/v1/lineage"}}))
        store = FeatureStore(spark=spark, settings=settings)
        store.apply(SPEND)
        version = store.write("spend", spark.createDataFrame([(1, T0, 1.0)], "customer_id long, ts timestamp, amount double"))
    assert [(p, e["eventType"], e["job"]["namespace"]) for p, e in received] == [
        ("/api/v1/lineage", "START", "team_a"), ("/api/v1/lineage", "COMPLETE", "team_a")]
    assert received[1][1]["outputs"][0]["facets"]["version"]["datasetVersion"] == str(version.delta_version)


def test_a_link_recorded_by_hand_joins_the_graph_and_bad_ones_are_refused(store):
    from fs_spark import InvalidNameError
    from fs_spark.catalog.schema import LINEAGE_EDGES

    store.apply(SPEND)
    store.lineage.link("source:s3a://raw/crm", "feature_table:spend", "feeds")
    up = store.lineage.upstream("feature_table:spend")
    assert "source:s3a://raw/crm" in up.nodes
    assert [(e.src, e.relation) for e in up.edges if e.dst == "feature_table:spend"] == [("source:s3a://raw/crm", "feeds")]
    [row] = store.catalog.rows(LINEAGE_EDGES.name)
    assert (row["src_kind"], row["src_id"], row["dst_kind"], row["user"]) == ("source", "s3a://raw/crm", "feature_table", "tester")
    with pytest.raises(LineageNodeNotFoundError, match="spreadsheet:x"):
        store.lineage.link("spreadsheet:x", "feature_table:spend", "feeds")
    with pytest.raises(LineageNodeNotFoundError, match="feature_table"):
        store.lineage.link("source:a", "feature_table", "feeds")
    with pytest.raises(InvalidNameError, match="relation"):
        store.lineage.link("source:a", "feature_table:spend", "feeds; DROP TABLE x")
    assert len(store.catalog.rows(LINEAGE_EDGES.name)) == 1  # nothing half-written


def _synthetic_graph(nodes: int, seed: int) -> LineageGraph:
    """A lineage-shaped graph of `nodes` nodes in five ranks, each node fed by one to three of the
    rank before it (sources -> feature versions -> training sets -> model versions -> deployments)."""
    rng = random.Random(seed)
    kinds = ["source", "feature_version", "training_set", "model_version", "deployment"]
    sizes = [nodes // 10, nodes * 3 // 10, nodes // 5, nodes // 5]
    sizes.append(nodes - sum(sizes))
    ranks = [[Node(kind, f"{kind}-{i}", f"{kind} {i}") for i in range(size)] for kind, size in zip(kinds, sizes)]
    edges = [Edge(rng.choice(before).key, node.key, "feeds")
             for before, now in zip(ranks, ranks[1:]) for node in now for _ in range(rng.randint(1, 3))]
    return LineageGraph({n.key: n for rank in ranks for n in rank}, edges)


def test_dot_lays_out_two_hundred_nodes_left_to_right_without_overlaps():
    graph = _synthetic_graph(200, seed=7)
    drawn = layout(graph)
    assert set(drawn.boxes) == set(graph.nodes) and len(drawn.boxes) == 200
    boxes = sorted(drawn.boxes.items(), key=lambda kv: kv[1])
    for i, (a, (ax, ay)) in enumerate(boxes):
        assert 0 <= ax and ax + WIDTH <= drawn.width and 0 <= ay and ay + HEIGHT <= drawn.height, a
        for b, (bx, by) in boxes[i + 1:]:
            if bx >= ax + WIDTH:
                break  # sorted by x: no later box reaches back into this one's column
            assert ay + HEIGHT <= by or by + HEIGHT <= ay, f"{a} overlaps {b}"
    for edge in graph.edges:  # in time order: every edge runs from left to right
        curve, tip = drawn.edges[(edge.src, edge.dst, edge.relation)]
        assert drawn.boxes[edge.src][0] < drawn.boxes[edge.dst][0] and curve[0][0] < (tip or curve[-1])[0]
