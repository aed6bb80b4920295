"""Replication under injected faults: 1,000 seeded cycles of a home table growing (appends,
compactions, checkpoints) and a pass copying it to a replica while the copy steps fail in every
way they can. After every cycle the snapshot at the replica's watermark must be readable and
equal to the home's at that version, no version may be skipped, and the next pass resumes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
import random
import statistics
import time
from pathlib import Path

import deltalake
import pyarrow as pa
import pytest

from fs_spark.errors import ReplicationError
from fs_spark.replication.delta_copy import commit_versions, read_watermark, replicate_table
from fs_spark.replication.objects import LocalObjects, Objects

pytestmark = pytest.mark.slow  # hundreds of replication passes

# 1,000 seeded cycles (about 20 s); FS_SPARK_TEST_FAULT_CYCLES sets another count.
CYCLES = int(os.environ.get("FS_SPARK_TEST_FAULT_CYCLES", "1000"))
TABLE = "tables/spend/v1"


class Killed(Exception):
    """The replicator process died at this step."""


class Unreachable(ConnectionError):
    """The home region did not answer."""


class FaultyReplica(Objects):
    """The replica's objects, with a fault at random steps: a copy dropped (reported done), a
    truncated copy, a duplicated copy, the replicator killed before or after any step."""

    def __init__(self, inner: LocalObjects, rng: random.Random, rate: float):
        self.inner, self.rng, self.rate, self.root = inner, rng, rate, inner.root
        self.injected: dict[str, int] = {}

    def _fault(self, *kinds: str) -> str | None:
        if self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(kinds)
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind

    def sizes(self, prefix):
        return self.inner.sizes(prefix)

    def size(self, name):
        return self.inner.size(name)

    def read(self, name):
        return self.inner.read(name)

    def delete(self, name):
        self.inner.delete(name)

    def write(self, name, data):  # a PUT: whole or nothing, on S3 as on a local folder
        fault = self._fault("kill before", "kill after")
        if fault == "kill before":
            raise Killed(name)
        self.inner.write(name, data)
        if fault == "kill after":
            raise Killed(name)

    def create(self, name, data):
        fault = self._fault("kill before", "kill after")
        if fault == "kill before":
            raise Killed(name)
        created = self.inner.create(name, data)
        if fault == "kill after":
            raise Killed(name)
        return created

    def copy_from(self, source, name):
        fault = self._fault("drop", "truncate", "duplicate", "kill before", "kill after")
        if fault == "drop":
            return
        if fault == "kill before":
            raise Killed(name)
        if fault == "truncate":
            self.inner.write(name, source.read(name)[:-7])
            return
        self.inner.copy_from(source, name)
        if fault == "duplicate":
            self.inner.copy_from(source, name)
        if fault == "kill after":
            raise Killed(name)


class FlakyHome(Objects):
    """The home region's objects, unreachable at random steps."""

    def __init__(self, inner: LocalObjects, rng: random.Random, rate: float):
        self.inner, self.rng, self.rate, self.root = inner, rng, rate, inner.root
        self.failures = 0

    def _maybe_fail(self):
        if self.rng.random() < self.rate:
            self.failures += 1
            raise Unreachable("home region")

    def sizes(self, prefix):
        self._maybe_fail()
        return self.inner.sizes(prefix)

    def size(self, name):
        self._maybe_fail()
        return self.inner.size(name)

    def read(self, name):
        self._maybe_fail()
        return self.inner.read(name)

    def write(self, name, data):
        raise AssertionError("replication never writes to the home region")

    create = delete = write


_OPENED: dict[Path, deltalake.DeltaTable] = {}


def _snapshot(root: Path, version: int) -> list[tuple]:
    """The rows of the table under `root` at `version`, read by delta-rs (an independent reader:
    it fails on a missing or truncated file). The table stays open between reads, loaded at
    each version asked for, as a long-lived reader would."""
    table = _OPENED.get(root)
    if table is None:
        table = _OPENED[root] = deltalake.DeltaTable(str(root / TABLE), version=version)
    else:
        table.load_as_version(version)
    rows = table.to_pyarrow_table()
    return sorted(zip(*(rows.column(c).to_pylist() for c in ("id", "cycle")), strict=True))


def _home_commit(home: deltalake.DeltaTable, rng: random.Random, cycle: int) -> int:
    """One home commit: mostly appends, sometimes a compaction (which removes files) or a
    checkpoint after the commit. Returns the home's latest version."""
    if rng.random() < 0.2:
        home.optimize.compact()
    else:
        n = rng.randint(1, 5)
        ids = pa.array(range(cycle * 10, cycle * 10 + n), pa.int64())
        deltalake.write_deltalake(home, pa.table({"id": ids, "cycle": pa.array([cycle] * n, pa.int64())}), mode="append")
    if rng.random() < 0.1:
        home.create_checkpoint()
    home.update_incremental()
    return home.version()


def _replica_vacuum(replica: LocalObjects, rng: random.Random) -> int:
    """A replica-side VACUUM with no retention, as readers read: it deletes the data files the
    snapshot at the watermark does not reference (what Delta's VACUUM keeps at that version)."""
    mark = read_watermark(replica, TABLE)
    if mark is None:
        return 0
    table = deltalake.DeltaTable(str(Path(replica.root) / TABLE), version=mark)
    live = {str(Path(uri.removeprefix("file://")).relative_to(replica.root)) for uri in table.file_uris()}
    files = [n for n in replica.sizes(TABLE) if n.endswith(".parquet") and "/_delta_log/" not in n]
    doomed = [n for n in files if n not in live and rng.random() < 0.5]
    for name in doomed:
        replica.delete(name)
    return len(doomed)


def test_hundreds_of_faulty_cycles_leave_every_replica_watermark_readable(tmp_path):
    rng = random.Random(20261202)
    home_root, replica_root = tmp_path / "home", tmp_path / "replica"
    home, replica = LocalObjects(str(home_root)), LocalObjects(str(replica_root))
    faulty, flaky = FaultyReplica(replica, rng, rate=0.08), FlakyHome(home, rng, rate=0.01)
    lags, marks, outcomes, vacuumed = [], [], {"whole": 0, "stopped": 0}, 0
    home_at: dict[int, list[tuple]] = {}  # a home snapshot never changes: read each once
    began = time.monotonic()
    first = pa.table({"id": pa.array([-1], pa.int64()), "cycle": pa.array([-1], pa.int64())})
    deltalake.write_deltalake(str(home_root / TABLE), first)
    home_table, latest = deltalake.DeltaTable(str(home_root / TABLE)), 0
    for cycle in range(CYCLES):
        if rng.random() < 0.7:
            latest = _home_commit(home_table, rng, cycle)
        if rng.random() < 0.03:  # a log entry arrives before its data (a reordered copy)
            mark = read_watermark(replica, TABLE)
            early = mark + 1 if mark is not None and mark < latest else None
            if early is not None:
                replica.create(f"{TABLE}/_delta_log/{early:020d}.json", home.read(f"{TABLE}/_delta_log/{early:020d}.json"))
        try:
            replicate_table(flaky, faulty, TABLE)
            outcomes["whole"] += 1
        except (Killed, Unreachable, ReplicationError):
            outcomes["stopped"] += 1
        if rng.random() < 0.05:
            vacuumed += _replica_vacuum(replica, rng)
        mark = read_watermark(replica, TABLE)
        if mark is not None:
            # The snapshot at the watermark is readable and equal to the home's at that version.
            if mark not in home_at:
                home_at[mark] = _snapshot(home_root, mark)
            assert _snapshot(replica_root, mark) == home_at[mark], f"cycle {cycle}"
            marks.append(mark)
        lags.append(latest - (mark if mark is not None else -1))
    # No version skipped: the watermark only moved forward, and the replica's log has every
    # commit up to it (a pass that starts from a checkpoint would say so; none did here).
    assert marks == sorted(marks)
    replica_commits, _ = commit_versions(replica, TABLE)
    assert [v for v in replica_commits if v <= marks[-1]] == list(range(marks[-1] + 1))
    # Faults stop: the next pass resumes where the last stopped and catches up with home.
    final = replicate_table(home, replica, TABLE)
    assert final.watermark == latest and _snapshot(replica_root, latest) == _snapshot(home_root, latest)
    seconds = time.monotonic() - began
    assert sum(faulty.injected.values()) > CYCLES / 10 and flaky.failures > CYCLES / 100
    assert outcomes["stopped"] > CYCLES / 10
    print(f"\n{CYCLES} cycles in {seconds:.1f}s: {outcomes['whole']} whole passes, {outcomes['stopped']} stopped by "
          f"{sum(faulty.injected.values())} injected copy faults {dict(sorted(faulty.injected.items()))} and "
          f"{flaky.failures} home outages; {vacuumed} files vacuumed on the replica; 0 unreadable snapshots. "
          f"RPO after each pass, in commits behind home: median {statistics.median(lags):.0f}, "
          f"p95 {sorted(lags)[int(0.95 * len(lags))]}, max {max(lags)}")


class KilledCatalog:
    """The replica's catalog, with the replicator killed at random just before or just after an
    append of rows (before the pass records how far it got)."""

    def __init__(self, inner, rng: random.Random, rate: float):
        self.inner, self.rng, self.rate = inner, rng, rate
        self.locks = inner.locks  # a pass holds the replica's `replicate` lock
        self.kills = 0

    def rows(self, name):
        return self.inner.rows(name)

    def append(self, spec, rows):
        killed = self.rng.random() < self.rate
        before = killed and self.rng.random() < 0.5
        if before:
            self.kills += 1
            raise Killed(spec.name)
        self.inner.append(spec, rows)
        if killed:
            self.kills += 1
            raise Killed(spec.name)


def test_catalog_rows_replicate_once_each_through_killed_passes(spark, tmp_path):
    """200 seeded cycles of home catalog rows and a replication pass killed at random steps
    (the rows appended or not, the pass's record of them written or not): after every cycle
    the replica holds no row twice and only rows of the home, in the home's order; once the
    faults stop, one pass leaves it holding exactly the home's rows."""
    from conftest import make_store

    from fs_spark.catalog.schema import RUN_METRICS
    from fs_spark.replication.replicator import Replicator

    rng = random.Random(20261202)
    home_store, replica_store = make_store(spark, tmp_path / "home"), make_store(spark, tmp_path / "replica")
    faulty = FaultyReplica(LocalObjects(str(tmp_path / "replica")), rng, rate=0.05)
    killing = KilledCatalog(replica_store._catalog, rng, rate=0.15)
    replicator = Replicator(home_store._catalog, LocalObjects(str(tmp_path / "home")), killing, faulty, "eu",
                            lambda tables, audit=True: set())
    home_catalog, stopped = home_store._catalog, 0

    def key(row):
        return (row["run_id"], row["key"], row["step"])

    for cycle in range(200):
        if rng.random() < 0.6:
            home_catalog.append(RUN_METRICS, [{"run_id": f"run-{cycle}", "key": "auc", "value": rng.random(), "step": s,
                                               "at": datetime.now(UTC)} for s in range(rng.randint(1, 3))])
        try:
            replicator.replicate()
        except Killed:
            stopped += 1
        home = [key(r) for r in home_catalog.rows(RUN_METRICS.name)]
        held = [key(r) for r in replica_store._catalog.rows(RUN_METRICS.name)]
        assert len(held) == len(set(held)), f"cycle {cycle}: a row appended twice"
        assert held == home[: len(held)], f"cycle {cycle}: the replica's rows are not the home's, in order"
    Replicator(home_catalog, LocalObjects(str(tmp_path / "home")), replica_store._catalog,
               LocalObjects(str(tmp_path / "replica")), "eu", lambda tables, audit=True: set()).replicate()
    assert replica_store._catalog.rows(RUN_METRICS.name) == home_catalog.rows(RUN_METRICS.name)
    assert stopped > 20 and killing.kills > 10 and sum(faulty.injected.values()) > 5
