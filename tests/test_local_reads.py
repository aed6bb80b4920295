"""Reads without Spark: a training set and a feature table through delta-rs, equal to the Spark
path value for value, checked against the manifest's digest, and never starting a JVM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from fs_spark import (
    Entity,
    Feature,
    FeatureTable,
    ReplayMismatchError,
    TrainingSetInputExpiredError,
    VersionQuarantinedError,
)
from fs_spark.digest_arrow import ArrowDigest

from conftest import T0

pytestmark = pytest.mark.slow  # reads without Spark end to end, against the Spark path

DAY = timedelta(days=1)
# A composite key of mixed types, declared (region, account) while the data lists account first.
USAGE = FeatureTable(
    name="usage",
    entity=Entity(name="account", keys={"region": "string", "account": "int"}),
    event_time="ts",
    features=[
        Feature(name="minutes", dtype="double", allow_nan=True),
        Feature(name="plan", dtype="string"),
        Feature(name="active", dtype="bool"),
        Feature(name="seats", dtype="int"),
        Feature(name="since", dtype="date"),
        Feature(name="seen", dtype="timestamp"),
        Feature(name="ratio", dtype="float", allow_nan=True),
        Feature(name="bytes", dtype="long"),
    ],
)
USAGE_SCHEMA = ("account int, region string, ts timestamp, minutes double, plan string, active boolean, seats int, "
                "since date, seen timestamp, ratio float, bytes long")
ENTITY_SCHEMA = "region string, account int, ts timestamp, label double"


def _usage(i: int, shift: int = 0) -> tuple:
    """Row i, with a null in a different column for each i."""
    row = [i % 50, ["eu", "us", "日本"][i % 3], T0 + timedelta(hours=i % 40 + shift), i * 1.5 - 3 if i % 7 else -0.0,
           f"p{i % 4}", i % 2 == 0, i % 9, (T0 + timedelta(days=i % 30)).date(), T0 + timedelta(minutes=i),
           float("nan") if i % 11 == 0 else i / 3, (i * 2**40) * (-1) ** i]
    hole = i % 12
    if 3 <= hole < 11:
        row[hole] = None
    return tuple(row)


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """A store with two writes of `usage`, a training set over it, then a later write."""
    from conftest import make_store

    store = make_store(spark, tmp_path_factory.mktemp("local") / "store")
    store.apply(USAGE)
    store.write("usage", spark.createDataFrame([_usage(i) for i in range(300)], USAGE_SCHEMA))
    store.write("usage", spark.createDataFrame([_usage(i, shift=30) for i in range(0, 300, 4)], USAGE_SCHEMA))
    entities = spark.createDataFrame(
        [(["eu", "us", "日本", None][i % 4], i % 55, T0 + timedelta(hours=i % 80), i / 10) for i in range(400)],
        ENTITY_SCHEMA)
    training = store.create_training_set(entities, ["usage:minutes", "usage:plan", "usage:active", "usage:seats",
                                                    "usage:since", "usage:seen", "usage:ratio", "usage:bytes"],
                                         label="label")
    store.write("usage", spark.createDataFrame([_usage(i, shift=60) for i in range(0, 300, 5)], USAGE_SCHEMA))
    return store, training


def _rows(table: pa.Table) -> list[tuple]:
    """Rows as tuples, NaN as a string so that equal rows compare equal."""
    return [tuple("NaN" if v != v else v for v in row.values()) for row in table.to_pylist()]


def test_a_training_set_read_without_spark_equals_the_spark_read(built):
    store, training = built
    spark_rows = store.training_set(training.id).to_arrow()
    local = store.open_training_set(training.id)
    arrow = local.to_arrow()
    assert arrow.schema.names == spark_rows.schema.names
    assert arrow.num_rows == training.manifest.row_count == 400
    assert _rows(arrow) == _rows(spark_rows)  # the entity rows' order, value for value
    pandas = local.to_pandas()
    assert list(pandas.columns) == arrow.schema.names and str(pandas["ts"].dt.tz) == "UTC"
    polars = local.to_polars()
    assert polars.shape == (400, len(arrow.schema.names)) and polars["label"].to_list() == arrow["label"].to_pylist()


def test_batches_stream_every_row_once_and_carry_the_entity_row_number(built):
    store, training = built
    local = store.open_training_set(training.id)
    batches = list(local.to_batches(batch_rows=64))
    assert all(b.num_rows <= 64 for b in batches) and len(batches) >= 7
    numbers = sorted(n for b in batches for n in b.column("_fs_row").to_pylist())
    assert numbers == sorted(set(numbers)) and len(numbers) == 400
    digest = ArrowDigest()
    for batch in batches:
        digest.add(batch)
    assert digest.hexdigest() == training.manifest.content_digest


def test_a_changed_file_is_a_digest_mismatch_and_a_missing_one_is_named(built, tmp_path):
    store, training = built
    folder = Path(training.manifest.output_path.removeprefix("file:"))
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    try:
        part = sorted(folder.glob("*.parquet"))[0]
        data = pq.read_table(part)
        label = data.column("label").to_pylist()
        label[0] = (label[0] or 0) + 1  # one value, same schema, same row count
        pq.write_table(data.set_column(data.schema.get_field_index("label"), "label", pa.array(label)), part)
        with pytest.raises(ReplayMismatchError, match=f"training set '{training.id}' read without Spark has digest"):
            store.open_training_set(training.id).to_arrow()
        with pytest.raises(ReplayMismatchError):
            list(store.open_training_set(training.id).to_batches())
        with pytest.raises(ReplayMismatchError):  # checked before sharded readers each see a part
            store.open_training_set(training.id).to_torch()
        assert store.open_training_set(training.id, verify=False).to_arrow().num_rows == 400
        part.unlink()
        with pytest.raises(TrainingSetInputExpiredError, match="a data file is missing"):
            store.open_training_set(training.id, verify=False).to_arrow()
    finally:
        shutil.rmtree(folder)
        shutil.copytree(saved, folder)


def test_a_table_read_without_spark_equals_the_spark_read_at_every_version(built):
    store, _ = built
    for version in (1, 2, 3, None):
        for features in (None, ["plan", "seen"]):
            spark_rows = store.read("usage", version=version, features=features, include_version_column=True)
            local = store.read_arrow("usage", version=version, features=features, include_version_column=True)
            expected = sorted(_rows(spark_rows.toArrow()), key=repr)
            assert sorted(_rows(local.to_arrow()), key=repr) == expected
            assert local.schema.names == spark_rows.columns


def test_rolled_back_and_quarantined_versions_read_as_through_spark(spark, store):
    table = USAGE.with_(name="usage_rb")
    store.apply(table)
    for shift in (0, 30, 60):
        store.write("usage_rb", spark.createDataFrame([_usage(i, shift) for i in range(0, 60, 1 + shift // 30)],
                                                      USAGE_SCHEMA))
    store.rollback("usage_rb", 1, reason="bad batches")
    store.write("usage_rb", spark.createDataFrame([_usage(i, 90) for i in range(5)], USAGE_SCHEMA))
    local = store.read_arrow("usage_rb", include_version_column=True).to_arrow()
    assert set(local.column("_fs_version").to_pylist()) == {1, 5}  # 2 and 3 were rolled over
    assert sorted(_rows(local), key=repr) == sorted(
        _rows(store.read("usage_rb", include_version_column=True).toArrow()), key=repr)
    store.quarantine_version("usage_rb", 5, reason="suspect")
    with pytest.raises(VersionQuarantinedError):
        store.read_arrow("usage_rb")
    assert store.read_arrow("usage_rb", allow_quarantined=True).to_arrow().num_rows == local.num_rows


_NO_JVM = """
import json, sys
import fs_spark
from pyspark import SparkContext
rows = fs_spark.open_training_set(sys.argv[1], root=sys.argv[2], user="laptop")
table = rows.to_arrow()
usage = fs_spark.open_table("usage", root=sys.argv[2], version=2, features=["plan"], user="laptop").to_arrow()
assert SparkContext._active_spark_context is None and SparkContext._gateway is None
print(json.dumps({"rows": table.num_rows, "label": sum(v or 0 for v in table["label"].to_pylist()),
                  "usage": usage.num_rows}))
"""


def test_reading_needs_no_java_at_all(built, tmp_path):
    """In a process where no Java can be found, a training set and a table still read."""
    store, training = built
    no_java = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME", "PYSPARK_SUBMIT_ARGS")}
    no_java["PATH"] = os.path.dirname(sys.executable)  # no java on the path
    no_java["JAVA_HOME"] = str(tmp_path / "no-java")
    out = subprocess.run([sys.executable, "-c", _NO_JVM, training.id, store.paths.root], env=no_java,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    labels = store.training_set(training.id).to_arrow()["label"].to_pylist()
    assert found == {"rows": 400, "label": sum(v or 0 for v in labels),
                     "usage": store.read("usage", version=2).count()}


def test_a_torch_dataset_shards_every_row_to_exactly_one_worker_and_rank(built):
    from torch.utils.data import DataLoader

    from fs_spark.local.torch_dataset import TensorConversionError

    store, training = built
    rows = store.open_training_set(training.id)
    expected = rows.to_arrow()  # itself checked against the Spark read above
    epoch = T0.replace(year=1970, month=1, day=1, hour=0)
    oracle = sorted(
        (a, (t - epoch) // timedelta(microseconds=1), label, "NaN" if m is None else m, p)
        for a, t, label, m, p in zip(*(expected.column(c).to_pylist() for c in ("account", "ts", "label", "minutes", "plan")),
                                     strict=True))
    columns = ["account", "ts", "label", "minutes", "plan"]

    def read(loader) -> list[tuple]:
        got = []
        for batch in loader:
            assert set(batch) == set(columns) and len(batch["account"]) <= 32
            assert (batch["account"].dtype, batch["ts"].dtype, batch["label"].dtype) == (torch.int32, torch.int64, torch.float64)
            minutes = ["NaN" if m != m else m for m in batch["minutes"].tolist()]  # a null double is NaN
            got += zip(batch["account"].tolist(), batch["ts"].tolist(), batch["label"].tolist(), minutes, batch["plan"],
                       strict=True)
        return got

    assert len(oracle) == 400 and len(rows.to_torch(columns=columns).units) >= 2  # row groups to share out
    assert sorted(read(rows.to_torch(batch_size=32, columns=columns))) == oracle  # one process: all of it
    # two ranks: each reads a part, no row twice, every row once
    ranks = [read(rows.to_torch(batch_size=32, columns=columns, rank=r, world_size=2)) for r in (0, 1)]
    assert ranks[0] and ranks[1] and sorted(ranks[0] + ranks[1]) == oracle
    # two ranks of two DataLoader workers each (spawned processes): four shards, every row once
    workers = []
    for rank in (0, 1):
        dataset = rows.to_torch(batch_size=32, columns=columns, rank=rank, world_size=2)
        workers += read(DataLoader(dataset, batch_size=None, num_workers=2, multiprocessing_context="spawn"))
    assert sorted(workers) == oracle

    # a null in an int column has no tensor value: refused, naming the column; unknown columns too
    with pytest.raises(TensorConversionError, match="column 'seats' holds .* null"):
        list(rows.to_torch(columns=["seats"]))
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        rows.to_torch(columns=["nope"])
