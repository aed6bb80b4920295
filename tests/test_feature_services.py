"""Feature services: applied from YAML like tables, versioned, named by a deployment, and
served by `online_vector` exactly as the deployment records."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fs_spark import (
    DefinitionError,
    Entity,
    Feature,
    FeatureLookup,
    FeatureService,
    FeatureServiceMismatchError,
    FeatureServiceNotFoundError,
    FeatureTable,
    load_feature_services,
)

pytestmark = pytest.mark.slow  # the online side end to end: services applied, deployed and served

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
USERS = FeatureTable(name="users", entity=Entity(name="user", keys={"user_id": "long"}), event_time="ts",
                     features=[Feature(name="age", dtype="int"), Feature(name="country", dtype="string")])
ORDERS = FeatureTable(name="orders", entity=Entity(name="user", keys={"user_id": "long"}), event_time="ts",
                      features=[Feature(name="n_7d", dtype="long"), Feature(name="spend_7d", dtype="double")])
YAML = """
feature_services:
  - name: churn_inputs
    description: what the churn model reads
    lookups:
      - "users:age"
      - "users:country"
      - {table_name: orders, feature_names: [n_7d], default_values: {n_7d: 0}, rename_outputs: {n_7d: orders}}
"""


@pytest.fixture
def served(store, spark, tmp_path):
    store.apply(USERS, ORDERS)
    store.write("users", spark.createDataFrame([(1, T0, 30, "fr"), (2, T0, 41, None)],
                                               "user_id long, ts timestamp, age int, country string"))
    store.write("orders", spark.createDataFrame([(1, T0, 3, 9.5)], "user_id long, ts timestamp, n_7d long, spend_7d double"))
    store.materialize("users")
    store.materialize("orders")
    (tmp_path / "services.yaml").write_text(YAML)
    return store, tmp_path / "services.yaml"


def test_a_service_applies_from_yaml_with_versions_and_serves_one_vector(served, spark):
    store, path = served
    [service] = load_feature_services(path)
    assert [str(a) for a in store.apply(service)] == ["create      feature service churn_inputs v1"]
    assert [a.action for a in store.apply(service)] == ["unchanged"]
    wider = service.model_copy(update={"lookups": (*service.lookups, FeatureLookup(table_name="orders",
                                                                                 feature_names=["spend_7d"]))})
    assert [(a.action, a.version) for a in store.apply(wider)] == [("update", 2)]
    assert store.feature_service("churn_inputs", 1) == service
    assert store.feature_service("churn_inputs").lookups[-1].feature_names == ("spend_7d",)
    vector = store.get_online_features(list(service.lookups), [{"user_id": 1}, {"user_id": 2}, {"user_id": 3}])
    assert vector == {"user_id": [1, 2, 3], "age": [30, 41, None], "country": ["fr", None, None], "orders": [3, 0, 0]}


def test_a_deployment_serves_exactly_its_service_at_the_version_it_recorded(served, spark):
    store, path = served
    [service] = load_feature_services(path)
    store.apply(service)
    entities = spark.createDataFrame([(1, T0), (2, T0)], "user_id long, ts timestamp")
    ts = store.create_training_set(entities, list(service.lookups))
    model = store.register_model("churn", training_sets=[ts])
    deployment = store.deploy(model.model_version_id, "prod", feature_service="churn_inputs")
    assert (deployment.feature_service, deployment.feature_service_version) == ("churn_inputs", 1)
    store.apply(service.model_copy(update={"lookups": service.lookups[:1]}))  # v2 drops a feature
    assert store.online_vector("prod", [{"user_id": 1}]) == {"user_id": [1], "age": [30], "country": ["fr"],
                                                            "orders": [3]}  # still v1: what was deployed
    narrower = store.feature_service("churn_inputs")
    for deploy in (store.deploy, store.models.deploy):  # one path, the same check, whichever door
        with pytest.raises(FeatureServiceMismatchError, match=r"v2 does not serve exactly.*lacks \['orders:n_7d'\]"):
            deploy(model.model_version_id, "staging", feature_service="churn_inputs")
    assert store.models.live("staging") is None
    assert len(narrower.lookups) == 1
    plain = store.deploy(model.model_version_id, "dev")  # no service: the recorded features, as named
    assert store.online_vector(plain, [{"user_id": 2}]) == {"user_id": [2], "age": [41], "country": [None],
                                                            "n_7d": [None]}


def test_bad_services_are_refused_with_their_name(served, tmp_path):
    store, _ = served
    with pytest.raises(FeatureServiceNotFoundError, match="'churn_inputz' is not applied"):
        store.feature_service("churn_inputz")
    with pytest.raises(ValueError, match="pin a version"):
        FeatureService(name="s", lookups=[FeatureLookup(table_name="users", feature_names=["age"], version=1)])
    with pytest.raises(ValueError, match="at least one lookup"):
        FeatureService(name="s", lookups=[])
    from fs_spark import FeatureNotFoundError

    with pytest.raises(FeatureNotFoundError, match="Did you mean 'age'"):
        store.apply(FeatureService(name="s", lookups=["users:agee"]))
    (tmp_path / "bad.yaml").write_text("feature_services:\n  - name: s\n    lookups: ['users:age']\n    colour: red\n")
    with pytest.raises(DefinitionError, match="feature service 's': colour: Extra inputs"):
        load_feature_services(tmp_path / "bad.yaml")
