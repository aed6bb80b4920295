"""The in-process cache: bounded, entries expire, and a newer materialization, a quarantine or a
rollback made by another process is seen within the check interval: no superseded or withheld
value is served after it."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import CacheSettings, OnlineSettings, Settings, StoreSettings
from fs_spark.online.cache import VectorCache

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SCORES = FeatureTable(name="scores", entity=Entity(name="c", keys={"customer_id": "long"}), event_time="ts",
                      features=[Feature(name="score", dtype="double")])


def test_the_cache_is_bounded_expires_and_drops_a_table_at_once():
    cache = VectorCache(max_entries=2, ttl_seconds=0.2)
    for key in (b"a", b"b", b"c"):
        cache.put("t", key, key.decode(), cache.generation("t"))
    assert cache.get("t", b"a") == (False, None)  # the least recently used went first
    assert cache.get("t", b"c") == (True, "c")
    seen_before = cache.generation("t")
    cache.drop_table("t")
    assert cache.get("t", b"c") == (False, None)
    cache.put("t", b"late", "read before the drop", seen_before)  # a read that raced the drop
    assert cache.get("t", b"late") == (False, None)
    cache.put("u", b"x", None, cache.generation("u"))  # "no value" is cached too
    assert cache.get("u", b"x") == (True, None)
    time.sleep(0.25)
    assert cache.get("u", b"x") == (False, None)
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.invalidations) == (2, 4, 1) and stats.hit_rate == pytest.approx(2 / 6)
    assert 0 <= stats.max_age_served_seconds < 0.2


@pytest.fixture
def two_processes(spark, tmp_path):
    """A serving store with a cache (state checked every 50 ms) and another handle of the same
    root standing in for the materialization job's process."""
    cached = OnlineSettings(cache=CacheSettings(ttl_seconds=3600, check_interval_ms=50))
    serving = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(tmp_path / "s")), online=cached))
    job = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(tmp_path / "s"))))
    job.apply(SCORES)
    return serving, job


def scores(store, keys=(1, 2)):
    return store.get_online_features(["scores:score"], [{"customer_id": k} for k in keys])["score"]


@pytest.mark.slow
def test_another_process_materializing_a_newer_version_reaches_the_cache(two_processes, spark):
    serving, job = two_processes
    schema = "customer_id long, ts timestamp, score double"
    job.write("scores", spark.createDataFrame([(1, T0, 0.1), (2, T0, 0.2)], schema))
    job.materialize("scores")
    assert scores(serving) == [0.1, 0.2] and scores(serving) == [0.1, 0.2]
    cache = serving._online.reader().cache
    assert cache.stats().hits == 2
    job.write("scores", spark.createDataFrame([(1, T0 + timedelta(1), 0.9)], schema))
    job.materialize("scores")
    time.sleep(0.1)  # past the check interval
    assert scores(serving) == [0.9, 0.2]
    job.quarantine_version("scores", 2, "bad scores")
    time.sleep(0.1)
    assert scores(serving) == [None, 0.2]  # withheld at once, cached or not
    job.materialize("scores")
    time.sleep(0.1)
    assert scores(serving) == [0.1, 0.2]
    job.release_version("scores", 2)
    job.materialize("scores")
    time.sleep(0.1)
    assert scores(serving) == [0.9, 0.2]  # cached again ...
    assert scores(serving) == [0.9, 0.2]
    job.rollback("scores", 1, reason="version 2 after all")
    time.sleep(0.1)
    assert scores(serving) == [None, 0.2]  # ... and dropped at the rollback
    assert cache.stats().invalidations >= 5
