"""The content digest of `fs_spark.digest`, computed over Arrow data without Spark or a JVM.

Spark's `xxhash64(c1, ..., cn, isnull(c1), ..., isnull(cn))` is XXH64 chained over the
columns: the seed starts at 42 and each non-null value's hash becomes the next value's seed. A
4-byte value (int, date, bool, float bits) and an 8-byte value (long, timestamp micros, double
bits) are hashed by XXH64's short-input path, vectorized here with numpy over whole columns
(unsigned 64-bit arithmetic wraps as Java's longs do); strings and binaries by the `xxhash`
package, value by value. Floating values are hashed as Spark does: -0.0 as 0.0 and every NaN
as the one canonical NaN.

The digest is the row count and the sums of each row hash's high and low 32 bits, so the same
rows give the same digest in any order, batch or file: `ArrowDigest` adds batches as they come.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from fs_spark.digest import digest_of

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_SEED = 42
_LOW = np.uint64(0xFFFFFFFF)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _avalanche(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h = h * _P2
    h = h ^ (h >> np.uint64(29))
    h = h * _P3
    return h ^ (h >> np.uint64(32))


def _hash4(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """XXH64 of each 4-byte value (as uint32) with its row's seed."""
    h = seed + _P5 + np.uint64(4)
    h = h ^ (values.astype(np.uint64) * _P1)
    return _avalanche(_rotl(h, 23) * _P2 + _P3)


def _hash8(values: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """XXH64 of each 8-byte value (as uint64) with its row's seed."""
    h = seed + _P5 + np.uint64(8)
    h = h ^ (_rotl(values * _P2, 31) * _P1)
    return _avalanche(_rotl(h, 27) * _P1 + _P4)


def _bits(column: pa.Array) -> tuple[np.ndarray, int]:
    """The value bits Spark hashes, as unsigned integers, and their width in bytes."""
    kind = column.type
    if pa.types.is_boolean(kind):
        return column.cast(pa.uint8()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.uint32), 4
    if pa.types.is_floating(kind):
        wide = pa.types.is_float64(kind)
        values = column.fill_null(0).to_numpy(zero_copy_only=False).copy()
        values[values == 0] = 0.0  # -0.0 hashes as 0.0
        bits = values.view(np.uint64 if wide else np.uint32)
        bits[np.isnan(values)] = 0x7FF8000000000000 if wide else 0x7FC00000  # Java's canonical NaN
        return bits, 8 if wide else 4
    if pa.types.is_timestamp(kind):
        column = column.cast(pa.timestamp("us", tz=kind.tz))  # Spark hashes microseconds
    if pa.types.is_integer(kind) or pa.types.is_date32(kind) or pa.types.is_timestamp(kind):
        width = 8 if kind.bit_width == 64 else 4
        signed = column.cast(pa.int64() if width == 8 else pa.int32()).fill_null(0)
        return signed.to_numpy(zero_copy_only=False).view(np.uint64 if width == 8 else np.uint32), width
    raise TypeError(f"{kind}")


def _hash_column(column: pa.Array, seed: np.ndarray) -> np.ndarray:
    valid = np.ones(len(column), dtype=bool) if column.null_count == 0 else column.is_valid().to_numpy(False)
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        out = seed.copy()
        for i, value in enumerate(column.to_pylist()):
            if value is not None:
                raw = value.encode() if isinstance(value, str) else value
                out[i] = xxhash.xxh64_intdigest(raw, int(seed[i]))
        return out
    bits, width = _bits(column)
    hashed = _hash4(bits, seed) if width == 4 else _hash8(bits, seed)
    return np.where(valid, hashed, seed)


def row_hashes(batch: pa.RecordBatch | pa.Table, columns: list[str] | None = None) -> np.ndarray:
    """Spark's `row_hash` of each row, as uint64 (the bits of Spark's signed long)."""
    names = columns or batch.schema.names
    seed = np.full(batch.num_rows, _SEED, dtype=np.uint64)
    arrays = [_combined(batch.column(name)) for name in names]
    for name, array in zip(names, arrays, strict=True):
        try:
            seed = _hash_column(array, seed)
        except TypeError:
            raise TypeError(
                f"column {name!r} is {array.type}: its digest needs Spark (check it with the Spark path)"
            ) from None
    for array in arrays:  # then each column's null flag, a boolean
        flags = np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=np.uint32)
        seed = _hash4(flags, seed)
    return seed


def _combined(column: Any) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class ArrowDigest:
    """The digest of rows added batch by batch, equal to `fs_spark.digest.frame_digest` of them."""

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns
        self.rows = 0
        self.high = 0
        self.low = 0

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        hashes = row_hashes(batch, self.columns)
        self.rows += batch.num_rows
        self.high += int((hashes >> np.uint64(32)).sum(dtype=np.uint64))
        self.low += int((hashes & _LOW).sum(dtype=np.uint64))

    def hexdigest(self) -> str:
        # Spark's sums of no rows are null, which `digest_of` reads as 0, as here
        return digest_of({"rows": self.rows, "hash_high": self.high, "hash_low": self.low})


def table_digest(table: pa.Table, columns: list[str] | None = None) -> str:
    """The digest of `table` over `columns` (default: all)."""
    digest = ArrowDigest(columns)
    for batch in table.to_batches(max_chunksize=1 << 20):
        digest.add(batch)
    return digest.hexdigest()
