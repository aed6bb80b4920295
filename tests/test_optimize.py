"""`optimize`: a feature table's files laid out by key and event time after they were written.

An OPTIMIZE commit changes no data: versions, reads by number, ID and `as_of`, and stored
training sets read the same rows after it (their replays give the same digests), and the next
write is numbered as before. It rewrites only what changed since its last run: the partitions a
write touched (Z-order), the new files (liquid clustering). Checked off the Delta log directly."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import T0

from fs_spark import Entity, Feature, FeatureStore, FeatureTable
from fs_spark.config import GovernanceSettings, OptimizeSettings, Settings, StoreSettings
from fs_spark.errors import AccessDeniedError, TableNotFoundError

# a composite key of mixed types, declared (shop, customer_id) while rows list customer_id first
EVENTS = FeatureTable(name="events", entity=Entity(name="c", keys={"shop": "string", "customer_id": "long"}),
                      event_time="ts", features=[Feature(name="amount", dtype="double")])
SCHEMA = "customer_id long, shop string, ts timestamp, amount double"
FEB = T0 + timedelta(days=40)


def _rows(spark, version: int, times, keys=range(300)):
    return spark.createDataFrame(
        [(k, ["north", "south", None][k % 3] or "west", t + timedelta(minutes=version), float(version * 1000 + k))
         for k in keys for t in times], SCHEMA)


def _store(spark, root: Path, **settings) -> FeatureStore:
    return FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(root), user="tester"), **settings))


def _commit(path: str, version: int) -> list[dict]:
    return [json.loads(line) for line in (Path(path) / "_delta_log" / f"{version:020d}.json").read_text().splitlines()]


def _snapshot(store: FeatureStore, spark) -> dict:
    """Every version's rows, read by number and by `as_of` its commit time."""
    out = {}
    for v in store.versions("events"):
        by_number = sorted(tuple(r) for r in store.read("events", version=v.version_number).collect())
        by_time = sorted(tuple(r) for r in store.read("events", as_of=v.committed_at).collect())
        out[v.version_number] = (v.version_id, v.delta_version, by_number, by_time)
    return out


def test_optimize_rewrites_the_partitions_writes_touched_and_changes_no_data(spark, tmp_path):
    store = _store(spark, tmp_path / "store")
    store.apply(EVENTS)
    for version in (1, 2, 3):
        store.write("events", _rows(spark, version, [T0, FEB]))
    entities = spark.createDataFrame([(k, "north" if k % 3 == 0 else "south" if k % 3 == 1 else "west",
                                       FEB + timedelta(hours=1)) for k in range(0, 300, 7)],
                                     "customer_id long, shop string, ts timestamp")
    built = store.create_training_set(entities, ["events:amount"])
    before = _snapshot(store, spark)
    path = store.versions("events")[0].storage_path

    [first] = store.optimize("events", reason="nightly")
    assert (first.method, first.partitions, first.files_removed) == ("zorder", ("2024-01", "2024-02"), 6)
    assert first.files_added == 2 and first.bytes_rewritten == first.table_bytes > 0
    actions = _commit(path, first.delta_version)
    changes = [a.get("add") or a.get("remove") for a in actions if "add" in a or "remove" in a]
    assert len(changes) == 8 and {c["dataChange"] for c in changes} == {False}  # no data changed
    assert next(a["commitInfo"] for a in actions if "commitInfo" in a)["operation"] == "OPTIMIZE"
    assert _snapshot(store, spark) == before
    again = store.load_training_set(built.id, verify=True)  # the replay's digest must equal the stored one
    assert sorted(map(tuple, again.to_arrow().to_pylist())) == sorted(map(tuple, built.to_arrow().to_pylist()))

    [nothing] = store.optimize("events")
    assert nothing.delta_version is None and nothing.bytes_rewritten == 0
    store.write("events", _rows(spark, 4, [FEB], keys=[1]))  # 1 row, in February
    [second] = store.optimize("events")
    assert second.partitions == ("2024-02",) and second.files_removed == 2  # February's file and the new one
    assert 0 < second.rewritten_fraction < 0.75
    assert [v.version_number for v in store.versions("events")] == [1, 2, 3, 4]
    fifth = store.write("events", _rows(spark, 5, [T0], keys=[2]))
    assert fifth.version_number == 5 and fifth.delta_version == second.delta_version + 1
    events = [(r["action"], r["reason"], r["deleted_files"]) for r in store.catalog.rows("maintenance_events")]
    assert events == [("optimize", "nightly", 6), ("optimize", "", 2)]
    assert sorted(tuple(r) for r in store.read("events", version=3).collect()) == before[3][2]


def test_an_unpartitioned_table_is_liquid_clustered_and_a_later_run_lays_out_only_new_files(spark, tmp_path):
    store = _store(spark, tmp_path / "store", optimize=OptimizeSettings(cube_mb=0))  # every cluster final
    store.apply(EVENTS.with_(time_partition="none"))
    for version in (1, 2):
        store.write("events", _rows(spark, version, [T0, FEB]))
    before = _snapshot(store, spark)
    [first] = store.optimize("events")
    assert (first.method, first.files_removed, first.partitions) == ("liquid", 2, ())
    path = first.storage_path
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]
    assert list(detail["clusteringColumns"]) == ["shop", "customer_id", "ts"]
    assert _snapshot(store, spark) == before
    third = store.write("events", _rows(spark, 3, [FEB], keys=[5]))
    [second] = store.optimize("events")
    [added] = [a["add"] for a in _commit(path, third.delta_version) if "add" in a]
    assert (second.files_removed, second.bytes_rewritten) == (1, added["size"])  # the new file alone
    assert [v.version_number for v in store.versions("events")] == [1, 2, 3]


@pytest.mark.slow  # threads or a job beside a store: kept out of the quick tier's budget
def test_optimize_runs_beside_writers_and_no_write_is_lost_or_numbered_twice(spark, tmp_path):
    store = _store(spark, tmp_path / "store")
    store.apply(EVENTS)
    store.write("events", _rows(spark, 1, [T0, FEB]))
    writer_store = _store(spark, tmp_path / "store")
    failures, done = [], threading.Event()

    def write():
        try:
            for version in range(2, 6):
                writer_store.write("events", _rows(spark, version, [T0, FEB], keys=range(version * 10)))
        except Exception as error:  # pragma: no cover - the assertion below names it
            failures.append(error)
        finally:
            done.set()

    writer = threading.Thread(target=write)
    writer.start()
    runs = []
    while not done.is_set():
        runs += store.optimize("events")
    writer.join()
    runs += store.optimize("events")
    assert failures == []
    versions = store.versions("events")
    # an OPTIMIZE committed between two of the writes
    assert any(versions[1].delta_version < r.delta_version < versions[-1].delta_version for r in runs if r.delta_version)
    assert [v.version_number for v in versions] == [1, 2, 3, 4, 5]
    assert len({v.delta_version for v in versions}) == 5
    expected = 600 + sum(2 * v * 10 for v in range(2, 6))
    assert store.read("events").count() == expected
    for v in versions:  # each version's own rows, by the number written into them
        assert store.read("events", version=v.version_number).filter(
            f"amount >= {v.version_number * 1000} AND amount < {v.version_number * 1000 + 1000}").count() == (
            600 if v.version_number == 1 else 2 * v.version_number * 10)


def test_optimize_needs_admin_and_an_existing_table(spark, tmp_path):
    (tmp_path / "policy.yaml").write_text("""
principals:
  tester: {roles: [admin]}
  alice: {roles: [analyst]}
rules:
  - {name: admins, roles: [admin], actions: [read, write, admin]}
  - {name: analysts, roles: [analyst], actions: [read, write]}
""")
    governance = GovernanceSettings(policy_file=str(tmp_path / "policy.yaml"))
    admin = _store(spark, tmp_path / "store", governance=governance)
    admin.apply(EVENTS)
    admin.write("events", _rows(spark, 1, [T0]))
    alice = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(tmp_path / "store"), user="alice"),
                                                        governance=governance))
    with pytest.raises(AccessDeniedError, match="alice.*admin"):
        alice.optimize("events")
    with pytest.raises(TableNotFoundError, match="evnets"):
        admin.optimize("evnets")
    assert admin.catalog.rows("maintenance_events") == []
    assert [r.files_removed for r in admin.optimize("events")] == [1]


@pytest.mark.slow  # threads or a job beside a store: kept out of the quick tier's budget
def test_the_command_and_the_job_optimize_and_say_what_they_rewrote(spark, tmp_path, capsys):
    import sys

    import io

    from fs_spark.cli import main, run

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jobs"))
    import optimize as job  # noqa: E402  (jobs/ are scripts, not a package)

    store = _store(spark, tmp_path / "store")
    store.apply(EVENTS)
    store.write("events", _rows(spark, 1, [T0, FEB]))
    store.write("events", _rows(spark, 2, [FEB]))
    out = io.StringIO()
    assert run(["--root", store.root, "optimize", "events", "--reason", "by hand"], out=out) == 0
    said = out.getvalue().strip()
    assert said.startswith("events: zorder in 2 partition(s), Delta version ") and "3 file(s) rewritten as 2" in said
    store.write("events", _rows(spark, 3, [T0], keys=[1]))
    assert job.main(["--root", store.root]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    printed = json.loads(line)
    assert (printed["table"], printed["method"], printed["files_rewritten"]) == ("events", "zorder", 2)
    assert 0 < printed["share_rewritten"] < 1
    assert main(["--root", store.root, "optimize"]) == 2  # neither a table nor --all
    assert [r["reason"] for r in store.catalog.rows("maintenance_events")] == ["by hand", "scheduled optimize"]
