"""One rule for output columns online and offline: two features with one output name, or a
feature named like an entity column, are refused (neither value is dropped silently), and
`rename_outputs` resolves it the same way on both sides. The rule is the reader's, whatever the
online store behind it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import Entity, Feature, FeatureLookup, FeatureTable
from fs_spark.errors import FeatureLookupError

NOW = datetime.now(timezone.utc)
ENTITY = Entity(name="c", keys={"customer_id": "long"})
P = FeatureTable(name="p", entity=ENTITY, event_time="ts", features=[Feature(name="score", dtype="double")])
Q = FeatureTable(name="q", entity=ENTITY, event_time="ts", features=[Feature(name="score", dtype="double"),
                                                                        Feature(name="customer_id_seen", dtype="long")])


def test_one_rule_for_output_names_online_and_offline(store, spark):
    """Refused on both sides: two features with one output name, a feature named like an entity
    column; renamed, both values come back on both sides."""

    store.apply(P, Q)
    store.write("p", spark.createDataFrame([(1, NOW - timedelta(hours=1), 0.25)], "customer_id long, ts timestamp, score double"))
    store.write("q", spark.createDataFrame([(1, NOW - timedelta(hours=1), 0.75, 5)],
                                           "customer_id long, ts timestamp, score double, customer_id_seen long"))
    store.materialize("p")
    store.materialize("q")
    entities = spark.createDataFrame([(1, NOW)], "customer_id long, ts timestamp")
    for read in (lambda f: store.get_online_features(f, [{"customer_id": 1}]),
                 lambda f: store.create_training_set(entities, f)):
        with pytest.raises(FeatureLookupError, match=r"output column 'score' of q.score is also the output of p.score"):
            read(["p:score", "q:score"])

    lookup = [FeatureLookup(table_name="q", feature_names=["customer_id_seen"],
                            rename_outputs={"customer_id_seen": "extra"})]
    with_extra = spark.createDataFrame([(1, NOW, 9)], "customer_id long, ts timestamp, extra long")
    with pytest.raises(FeatureLookupError, match="'extra' of q.customer_id_seen is already an entity column"):
        store.get_online_features(lookup, [{"customer_id": 1, "extra": 9}])
    with pytest.raises(FeatureLookupError, match="'extra' of q.customer_id_seen is already an entity column"):
        store.create_training_set(with_extra, lookup)

    lookups = [FeatureLookup(table_name="p", feature_names=["score"], rename_outputs={"score": "p_score"}),
               FeatureLookup(table_name="q", feature_names=["score"], rename_outputs={"score": "q_score"})]
    online = store.get_online_features(lookups, [{"customer_id": 1}])
    assert (online["p_score"], online["q_score"]) == ([0.25], [0.75])
    (row,) = store.create_training_set(entities, lookups).to_arrow().to_pylist()
    assert (row["p_score"], row["q_score"]) == (0.25, 0.75)
