"""The bytes of the online stores: one key and one value per (table, definition version, entity
key), the same in every store, so a store can be read by any fs_spark of the same format.

Key: ``fs:<table>:v<definition version>:`` then each key part in the declared order, an integral
part as ``i<decimal>;`` (every integral type alike: keys match as longs, as in training sets) and
a string part as ``s<length in UTF-8 bytes>:<UTF-8>``; the length makes the key unambiguous.

Value (big-endian):
    u8      format (2)
    u32     the definition revision the value was encoded with: a compatible change (a feature
            added, a type widened) makes a new revision, and a reader decodes each value by its
            own revision, whatever revision it knows as the latest
    u32     the feature version number whose row this is (`_fs_version`)
    i64     the row's event time, microseconds since the epoch (UTC)
    then, per feature in the definition's order: u8 0 for null, or u8 1 and the value:
      bool u8 · int i32 · long i64 · float f32 · double f64 · date i32 days since the epoch ·
      timestamp i64 microseconds since the epoch (UTC) · string u32 length, UTF-8

Format 1 (fs_spark before revisions were stored) has no revision field; its values are decoded by
the revision the table's online state names.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from fs_spark.definitions.model import FeatureTable
from fs_spark.definitions.types import FeatureType
from fs_spark.errors import FsSparkError

FORMAT = 2
_HEADER = struct.Struct(">BIIq")
_HEADER_V1 = struct.Struct(">BIq")
_FIXED = {
    FeatureType.BOOL: struct.Struct(">?"),
    FeatureType.INT: struct.Struct(">i"),
    FeatureType.LONG: struct.Struct(">q"),
    FeatureType.FLOAT: struct.Struct(">f"),
    FeatureType.DOUBLE: struct.Struct(">d"),
    FeatureType.DATE: struct.Struct(">i"),
    FeatureType.TIMESTAMP: struct.Struct(">q"),
}
_LENGTH = struct.Struct(">I")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)


class OnlineEncodingError(FsSparkError):
    """A value or key that the online encoding cannot hold, or bytes it did not write."""


class Vector(NamedTuple):
    """One entity's features as stored online: the row's version, event time and values.
    (A tuple: `tuple(vector)` holds only values the garbage collector need not track, which
    keeps a cache of many vectors from making its full collections long.)"""

    version_number: int
    event_time: datetime
    values: tuple[Any, ...]


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise OnlineEncodingError(f"timestamp {moment.isoformat()} has no time zone")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def key_prefix(table: str, definition_version: int) -> bytes:
    return f"fs:{table}:v{definition_version}:".encode()


def encode_key_after(prefix: bytes, key: Sequence[Any], table: str = "") -> bytes:
    """The key of `key`'s parts after a table's `key_prefix`."""
    parts = [prefix]
    for part in key:
        if isinstance(part, bool) or not isinstance(part, int | str):
            raise OnlineEncodingError(f"key part {part!r} of {table} is neither an integer nor a string")
        if isinstance(part, int):
            parts.append(b"i%d;" % part)
        else:
            raw = part.encode()
            parts.append(b"s%d:" % len(raw) + raw)
    return b"".join(parts)


def encode_key(table: str, definition_version: int, key: Sequence[Any]) -> bytes:
    return encode_key_after(key_prefix(table, definition_version), key, table)


def encode_value(
    table: FeatureTable, version_number: int, event_time: datetime, values: Sequence[Any], revision: int = 1
) -> bytes:
    """The value of one row, times as aware datetimes (see `make_encoder` for many rows)."""
    if len(values) != len(table.features):
        raise OnlineEncodingError(
            f"{table.name} has {len(table.features)} features, the row gives {len(values)} values"
        )
    raw = [
        _micros(v) if v is not None and f.dtype is FeatureType.TIMESTAMP else v
        for f, v in zip(table.features, values, strict=True)
    ]
    return make_encoder(table, revision)(version_number, _micros(event_time), raw)


def make_encoder(table: FeatureTable, revision: int) -> Callable[[int, int, Sequence[Any]], bytes]:
    """An encoder of `table`'s rows at definition `revision`, worked out once:
    `encode(version, event micros, values)` with timestamps as microseconds since the epoch (as
    they leave Spark) and dates as dates. A row of fixed-width features, all present, is one pack."""
    features = table.features
    count = len(features)
    fixed = all(f.dtype is not FeatureType.STRING for f in features)
    whole = struct.Struct(
        ">BIIq" + ("".join("B" + _FIXED[f.dtype].format.lstrip(">") for f in features) if fixed else "")
    )
    dates = [5 + 2 * i for i, f in enumerate(features) if f.dtype is FeatureType.DATE]
    template: list[Any] = [FORMAT, revision, 0, 0] + [1, None] * count

    def encode(version_number: int, micros: int, values: Sequence[Any]) -> bytes:
        if len(values) != count:
            raise OnlineEncodingError(f"{table.name} has {count} features, the row gives {len(values)} values")
        if fixed and None not in values:
            args = template.copy()
            args[2], args[3] = version_number, micros
            args[5::2] = values
            try:
                for i in dates:
                    args[i] = (args[i] - _EPOCH_DAY).days
                return whole.pack(*args)
            except (struct.error, TypeError, AttributeError):
                pass  # the step-by-step path names the feature and the value
        out = [_HEADER.pack(FORMAT, revision, version_number, micros)]
        for feature, value in zip(features, values, strict=True):
            if value is None:
                out.append(b"\x00")
                continue
            out.append(b"\x01")
            dtype = feature.dtype
            try:
                if dtype is FeatureType.STRING:
                    raw = str(value).encode()
                    out.append(_LENGTH.pack(len(raw)) + raw)
                elif dtype is FeatureType.DATE:
                    out.append(_FIXED[dtype].pack((value - _EPOCH_DAY).days))
                else:
                    out.append(_FIXED[dtype].pack(value))
            except (struct.error, TypeError, AttributeError) as exc:
                raise OnlineEncodingError(
                    f"{table.name}.{feature.name}: {value!r} is not a {dtype.value}: {exc}"
                ) from None
        return b"".join(out)

    return encode


def value_order(data: bytes) -> tuple[int, int]:
    """(event time in microseconds, version number) of a stored value: the greater pair is the
    later row, as the training side orders them."""
    if data[0] == 1:
        _, number, micros = _HEADER_V1.unpack_from(data)
    else:
        _, _, number, micros = _HEADER.unpack_from(data)
    return micros, number


def value_revision(data: bytes) -> int | None:
    """The definition revision a value was encoded with (None: format 1, which has none)."""
    if len(data) < _HEADER.size or data[0] != FORMAT:
        return None
    return _LENGTH.unpack_from(data, 1)[0]


def decode_value(table: FeatureTable, data: bytes) -> Vector:
    return make_decoder(table)(data)


def translated(
    stored: FeatureTable, latest: FeatureTable, decode: Callable[[bytes], Vector]
) -> Callable[[bytes], Vector]:
    """`decode` (of values written under `stored`) giving values in `latest`'s feature order: a
    feature `stored` lacks (added since) is None, as in the Delta table's older rows, and an
    integer of a type widened to float or double is a float."""
    if [(f.name, f.dtype) for f in stored.features] == [(f.name, f.dtype) for f in latest.features]:
        return decode
    position = {f.name: i for i, f in enumerate(stored.features)}
    kinds = {f.name: f.dtype for f in stored.features}
    picks = [(position.get(f.name), f.dtype in _FLOATS and kinds.get(f.name) not in _FLOATS) for f in latest.features]

    def decode_latest(data: bytes) -> Vector:
        vector = decode(data)
        values = vector.values
        out = tuple(
            None if i is None or values[i] is None else float(values[i]) if widen else values[i] for i, widen in picks
        )
        return Vector(vector.version_number, vector.event_time, out)

    return decode_latest


_FLOATS = frozenset({FeatureType.FLOAT, FeatureType.DOUBLE})


_PLAIN, _STRING, _TIMESTAMP, _DATE = range(4)


def make_decoder(table: FeatureTable) -> Callable[[bytes], Vector]:
    """A decoder of `table`'s values, its per-feature steps worked out once (online reads
    decode thousands of values a second with the same one)."""
    steps = []
    for feature in table.features:
        dtype = feature.dtype
        if dtype is FeatureType.STRING:
            steps.append((_STRING, _LENGTH.unpack_from, _LENGTH.size))
        else:
            kind = {FeatureType.TIMESTAMP: _TIMESTAMP, FeatureType.DATE: _DATE}.get(dtype, _PLAIN)
            steps.append((kind, _FIXED[dtype].unpack_from, _FIXED[dtype].size))
    header, header_size, name = _HEADER.unpack_from, _HEADER.size, table.name
    header_v1, header_v1_size = _HEADER_V1.unpack_from, _HEADER_V1.size
    # The common case, every feature of fixed width and present, is one unpack.
    fixed = all(kind != _STRING for kind, _, _ in steps)
    whole = struct.Struct(
        ">BIIq" + ("".join("B" + _FIXED[f.dtype].format.lstrip(">") for f in table.features) if fixed else "")
    )
    converted = [(i, kind) for i, (kind, _, _) in enumerate(steps) if kind in (_TIMESTAMP, _DATE)]
    every = len(steps)

    def decode(data: bytes) -> Vector:
        if len(data) >= header_size and data[0] == FORMAT:
            if fixed and len(data) == whole.size:
                unpacked = whole.unpack(data)
                if unpacked[4::2].count(1) == every:
                    row = list(unpacked[5::2])
                    for i, kind in converted:
                        row[i] = (
                            _EPOCH + timedelta(microseconds=row[i])
                            if kind == _TIMESTAMP
                            else _EPOCH_DAY + timedelta(days=row[i])
                        )
                    return Vector(unpacked[2], _EPOCH + timedelta(microseconds=unpacked[3]), tuple(row))
            _, _, number, micros = header(data)
            return rest(data, header_size, number, micros)
        if len(data) >= header_v1_size and data[0] == 1:
            _, number, micros = header_v1(data)
            return rest(data, header_v1_size, number, micros)
        raise OnlineEncodingError(f"{name}: not an fs_spark online value of format {FORMAT}")

    def rest(data: bytes, offset: int, number: int, micros: int) -> Vector:
        """The features after the header, one by one."""
        values: list[Any] = []
        append = values.append
        for kind, unpack, size in steps:
            present = data[offset]
            offset += 1
            if not present:
                append(None)
                continue
            (raw,) = unpack(data, offset)
            offset += size
            if kind == _STRING:
                append(data[offset : offset + raw].decode())
                offset += raw
            elif kind == _PLAIN:
                append(raw)
            elif kind == _TIMESTAMP:
                append(_EPOCH + timedelta(microseconds=raw))
            else:
                append(_EPOCH_DAY + timedelta(days=raw))
        if offset != len(data):
            raise OnlineEncodingError(f"{name}: {len(data) - offset} byte(s) left over: written by another definition?")
        return Vector(number, _EPOCH + timedelta(microseconds=micros), tuple(values))

    return decode
