"""fs_spark writes a feature table's Delta checkpoints after its commits, not inside them: a
batch write waits for its checkpoint, a stream's micro-batch does not; and a table opened from
such a checkpoint answers as it did from the log (read back by delta-rs, a reader of its own)."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from urllib.parse import unquote

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
from delta.tables import DeltaTable

import fs_spark.storage.checkpoints as checkpoints
from fs_spark.storage.checkpoints import TABLE_CHECKPOINT_INTERVAL, Checkpointer, last_checkpoint

from conftest import activity_rows


def checkpoint_versions(path) -> list[int]:
    names = os.listdir(os.path.join(path, "_delta_log"))
    return sorted(int(n.split(".")[0]) for n in names if n.endswith(".checkpoint.parquet"))


def keys_at(path, version=None) -> list[int]:
    """The keys of the table at `version` as delta-rs lists its files (a feature table's type
    widening keeps delta-rs from reading the rows itself), read by pyarrow."""
    table = deltalake.DeltaTable(path, version=version)
    names = pa.table(table.get_add_actions(flatten=True)).column("path").to_pylist()
    files = [os.path.join(path, unquote(name)) for name in names]
    return sorted(k for f in files for k in pq.read_table(f, columns=["customer_id"]).column(0).to_pylist())


def test_batch_writes_checkpoint_every_n_commits_and_delta_does_not(store, activity, spark):
    store._checkpoints = Checkpointer(every=2)
    path = store.paths.table("customer_activity", 1)
    for i in range(5):  # Delta versions 1..5 after the table's creation (version 0)
        store.write("customer_activity", activity(activity_rows(3, start=3 * i)))

    properties = DeltaTable.forPath(spark, path).detail().first()["properties"]
    assert properties["delta.checkpointInterval"] == str(TABLE_CHECKPOINT_INTERVAL)
    assert checkpoint_versions(path) == [2, 4]  # fs_spark's, each written before its write returned
    assert last_checkpoint(spark, path) == 4

    # delta-rs opens the table from the checkpoint at 4 plus commit 5, and time travels past it.
    assert deltalake.DeltaTable(path).version() == 5
    assert keys_at(path) == list(range(15))
    assert keys_at(path, version=3) == list(range(9))
    assert sorted(r.customer_id for r in store.read("customer_activity").collect()) == list(range(15))


def test_a_background_checkpoint_does_not_hold_the_commit_and_runs_one_at_a_time(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "table")
    for i in range(4):  # versions 0..3
        spark.range(i * 10, i * 10 + 10).write.format("delta").mode("append").save(path)
    started, release, calls = threading.Event(), threading.Event(), []
    real = checkpoints.write_checkpoint

    def held(session, where):
        calls.append(where)
        started.set()
        release.wait(60)
        real(session, where)

    monkeypatch.setattr(checkpoints, "write_checkpoint", held)
    checkpointer = Checkpointer(every=3)
    checkpointer.after_commit(spark, path, 3, wait=False)
    assert started.wait(60)
    # The call returned while its checkpoint is still being written; a later commit that finds
    # it running starts no second one.
    assert checkpoint_versions(path) == []
    spark.range(40, 50).write.format("delta").mode("append").save(path)  # version 4, meanwhile
    checkpointer.after_commit(spark, path, 4, wait=False)
    assert len(calls) == 1
    release.set()
    checkpointer.wait()
    assert checkpoint_versions(path) in ([3], [4])  # Delta's latest when the thread got there
    assert last_checkpoint(spark, path) == checkpoint_versions(path)[0]
    table = deltalake.DeltaTable(path)
    assert table.version() == 4
    assert sorted(table.to_pyarrow_table().column("id").to_pylist()) == list(range(50))


def test_a_checkpoint_delta_could_not_write_is_logged_and_tried_again_at_the_next_commit(spark, tmp_path, caplog):
    path = str(tmp_path / "table")
    spark.range(3).write.format("delta").save(path)
    spark.range(3, 6).write.format("delta").mode("append").save(path)  # version 1
    shutil.rmtree(path)  # gone under the writer: Delta logs its checkpoint's failure and goes on
    checkpointer = Checkpointer(every=1)
    with caplog.at_level(logging.WARNING, logger="fs_spark.storage.checkpoints"):
        checkpointer.after_commit(spark, path, 1, wait=True)  # no error: the commit stands
    assert f"the Delta checkpoint of {path} at version 1 failed" in caplog.text
    assert not os.path.exists(os.path.join(path, "_delta_log"))

    spark.range(10, 13).write.format("delta").save(path)
    spark.range(13, 16).write.format("delta").mode("append").save(path)  # version 1 again
    checkpointer.after_commit(spark, path, 1, wait=True)
    assert checkpoint_versions(path) == [1]
    assert sorted(r.id for r in spark.read.format("delta").load(path).collect()) == list(range(10, 16))
