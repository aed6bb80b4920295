"""The Arrow digest equals Spark's, row hash for row hash, on every type a training set holds."""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
import xxhash

from fs_spark.digest import frame_digest, row_hash
from fs_spark.digest_arrow import ArrowDigest, _hash4, _hash8, row_hashes, table_digest

SCHEMA = (
    "b boolean, t tinyint, s smallint, i int, l long, f float, d double, txt string, day date, ts timestamp, "
    "bin binary"
)


def _rows(n: int, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    specials_d = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1e-310, 2.5, -1.0]
    specials_f = [0.0, -0.0, math.nan, math.inf, -math.inf, 1.5, -3.25]
    texts = ["", "a", "é", "日本語", "x" * 33, "emoji 🎉", "tab\tnew\nline", "31 bytes ........................"]

    def maybe(value):
        return None if rng.random() < 0.15 else value

    rows = []
    for _ in range(n):
        rows.append((
            maybe(rng.random() < 0.5),
            maybe(rng.randint(-128, 127)),
            maybe(rng.randint(-(2**15), 2**15 - 1)),
            maybe(rng.choice([rng.randint(-(2**31), 2**31 - 1), 0, -1, 2**31 - 1, -(2**31)])),
            maybe(rng.choice([rng.randint(-(2**63), 2**63 - 1), 0, -1, 2**63 - 1, -(2**63)])),
            maybe(rng.choice([*specials_f, rng.uniform(-1e6, 1e6)])),
            maybe(rng.choice([*specials_d, rng.uniform(-1e12, 1e12)])),
            maybe(rng.choice([*texts, "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 40)))])),
            maybe(date(1960, 1, 1) + timedelta(days=rng.randint(0, 40_000))),
            maybe(datetime(1965, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randint(0, 2**51))),
            maybe(bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 20)))),
        ))
    return rows


def test_each_row_hash_equals_sparks_and_so_does_the_digest(spark):
    frame = spark.createDataFrame(_rows(3_000, seed=11), SCHEMA)
    columns = frame.columns
    spark_hashes = [r[0] for r in frame.select(row_hash(columns)).collect()]
    arrow = frame.toArrow()
    ours = row_hashes(arrow).view(np.int64).tolist()
    assert ours == spark_hashes
    assert table_digest(arrow) == frame_digest(frame)
    # batch by batch, in another order: the same digest
    digest = ArrowDigest()
    for batch in reversed(arrow.to_batches(max_chunksize=700)):
        digest.add(batch)
    assert digest.hexdigest() == frame_digest(frame)
    # a subset of columns, in another order
    assert table_digest(arrow, ["txt", "l", "b"]) == frame_digest(frame, ["txt", "l", "b"])


def test_one_changed_value_or_null_changes_the_digest(spark):
    rows = [(1, "a", 2.0), (2, None, 3.0), (3, "c", None)]
    schema = "k long, s string, x double"
    base = table_digest(spark.createDataFrame(rows, schema).toArrow())
    for changed in ([(1, "a", 2.0), (2, None, 3.5), (3, "c", None)],
                    [(1, "a", 2.0), (2, "", 3.0), (3, "c", None)],  # null vs empty string
                    [(1, "a", 2.0), (2, None, 3.0), (3, None, None)],
                    [(1, "a", 2.0), (2, None, 3.0)]):
        other = spark.createDataFrame(changed, schema)
        assert table_digest(other.toArrow()) == frame_digest(other) != base
    # no rows: Spark's null sums, read as 0
    empty = spark.createDataFrame([], schema)
    assert table_digest(empty.toArrow()) == frame_digest(empty)


def test_the_vectorized_hashes_equal_the_xxhash_library():
    """The oracle's own check: numpy's XXH64 of 4- and 8-byte values against the C library."""
    rng = random.Random(3)
    ints = [rng.randint(-(2**31), 2**31 - 1) for _ in range(500)]
    longs = [rng.randint(-(2**63), 2**63 - 1) for _ in range(500)]
    seeds = [rng.randint(0, 2**64 - 1) for _ in range(500)]
    seed = np.array(seeds, dtype=np.uint64)
    four = _hash4(np.array(ints, dtype=np.int32).view(np.uint32), seed)
    eight = _hash8(np.array(longs, dtype=np.int64).view(np.uint64), seed)
    assert four.tolist() == [xxhash.xxh64_intdigest(struct.pack("<i", v), s) for v, s in zip(ints, seeds, strict=True)]
    assert eight.tolist() == [xxhash.xxh64_intdigest(struct.pack("<q", v), s) for v, s in zip(longs, seeds, strict=True)]


def test_a_type_spark_must_hash_is_named():
    table = pa.table({"amount": pa.array([1, 2], pa.decimal128(10, 2))})
    with pytest.raises(TypeError, match="column 'amount' is decimal128"):
        table_digest(table)
