"""Finding features: ranked by where the words matched, every word required, with the models and
deployments that use each, and only what the principal may read."""

from __future__ import annotations

import io

import pytest

from fs_spark import Entity, Feature, FeatureTable
from fs_spark.cli import run
from fs_spark.discovery import search

from conftest import T0

ORDERS = FeatureTable(
    name="orders",
    entity=Entity(name="customer", keys={"customer_id": "long"}),
    event_time="ts",
    description="What customers bought",
    owner="growth",
    features=[
        Feature(name="spend", dtype="double", unit="eur", description="Money spent in 7 days", tags=("finance",)),
        Feature(name="spend_30d", dtype="double", unit="eur", description="Money spent in 30 days"),
        Feature(name="basket", dtype="long", description="Items per order; spend divided by price"),
        Feature(name="refunds", dtype="long", owner="risk", tags=("finance", "pii")),
    ],
)


def test_ranking_by_field_every_word_required_and_usage_attached():
    hits = search([ORDERS], "spend", {"orders:spend": ["churn v1"]}, {"orders:spend": ["prod: churn v1"]})
    # the exact name first, then a name that holds the word, then a description that mentions it
    assert [(h.name, h.score, h.matched) for h in hits] == [
        ("orders:spend", 15.0, ("name",)), ("orders:spend_30d", 5.0, ("name",)),
        ("orders:basket", 1.0, ("description",))]
    assert hits[0].models == ("churn v1",) and hits[0].deployments == ("prod: churn v1",)
    assert hits[0].unit == "eur" and hits[0].owner == "growth"  # the table's owner when the feature has none
    finance = search([ORDERS], "finance", {}, {})
    assert [h.name for h in finance] == ["orders:refunds", "orders:spend"] and finance[0].matched == ("tag",)
    assert [h.name for h in search([ORDERS], "spend 30", {}, {})] == ["orders:spend_30d"]  # both words needed
    assert [h.name for h in search([ORDERS], "risk finance", {}, {})] == ["orders:refunds"]
    assert [h.name for h in search([ORDERS], "ORDERS", {}, {})][0] == "orders"  # the table itself, by its name
    assert search([ORDERS], "nothing-like-it", {}, {}) == []
    with pytest.raises(ValueError, match="at least one word"):
        search([ORDERS], " ;; ", {}, {})


def test_ten_thousand_features_and_the_limit():
    tables = [FeatureTable(name=f"t{t:03d}", entity=Entity(name="e", keys={"k": "long"}), event_time="ts",
                           features=[Feature(name=f"f{f:03d}", dtype="double", description=f"metric {t * 100 + f}",
                                             tags=("hot",) if f == t else ()) for f in range(100)])
              for t in range(100)]
    hits = search(tables, "hot", {}, {}, limit=5)
    assert [h.name for h in hits] == ["t000:f000", "t001:f001", "t002:f002", "t003:f003", "t004:f004"]
    assert [h.name for h in search(tables, "metric 4242", {}, {})] == ["t042:f042"]


@pytest.mark.slow
def test_the_store_and_the_command_line_list_models_and_live_deployments(store, spark):
    store.apply(ORDERS)
    store.write("orders", spark.createDataFrame([(1, T0, 5.0, 6.0, 2, 0)],
                                                "customer_id long, ts timestamp, spend double, spend_30d double, "
                                                "basket long, refunds long"))
    entities = spark.createDataFrame([(1, T0, 1)], "customer_id long, ts timestamp, label int")
    built = store.create_training_set(entities, ["orders:spend"], label="label")
    model = store.register_model("churn", training_sets=[built])
    store.deploy(model.model_version_id, "prod")
    hit = store.search("spend eur")[0]
    assert (hit.name, hit.models, hit.deployments) == ("orders:spend", ("churn v1",), ("prod: churn v1",))
    assert store.search("spend eur")[1].models == ()  # spend_30d: no model uses it
    written = io.StringIO()
    assert run(["--root", store.paths.root, "search", "refunds"], out=written) == 0
    out = written.getvalue()
    assert out.startswith("orders:refunds  (15: name)") and "owner risk; tags finance, pii" in out
