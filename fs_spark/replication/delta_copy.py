"""Copying one Delta table to another root in commit order, so that every snapshot a reader can
see there is whole.

For each commit after the replica's watermark, in order: every data file the commit adds is
copied (and checked by size) first, then the commit's log entry, created once (a log entry
already there must be byte for byte the same: the replicator died after copying it), then the
watermark advances to that commit. A reader of the replica therefore never meets a log entry
whose files are missing, whatever step a copy stops at, and the next run resumes after the
watermark. Checkpoints follow the log entries they summarise; a table whose first commits were
already cleaned from the home log starts from its newest checkpoint.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

import pyarrow.parquet as pq

from fs_spark.errors import ReplicationError
from fs_spark.replication.objects import Objects

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
WATERMARKS = "_replication"


@dataclass(frozen=True)
class TableCopy:
    """What one pass did for one table."""

    table: str
    watermark: int | None  # the replica's newest whole commit after the pass
    commits: int  # log entries copied (one the replica already held, byte for byte, is not counted)
    files: int
    bytes: int


def watermark_name(table: str) -> str:
    return f"{WATERMARKS}/{table}/watermark.json"


def read_watermark(replica: Objects, table: str) -> int | None:
    """The newest commit of `table` the replica holds whole, None before the first."""
    if replica.size(watermark_name(table)) is None:
        return None
    return int(json.loads(replica.read(watermark_name(table)))["version"])


def advance_watermark(replica: Objects, table: str, version: int) -> None:
    record = {"version": version, "at": datetime.now(UTC).isoformat()}
    replica.write(watermark_name(table), json.dumps(record).encode())


def _log(table: str, name: str) -> str:
    return f"{table}/_delta_log/{name}"


def commit_versions(home: Objects, table: str, after: int | None = None) -> tuple[list[int], list[int]]:
    """The commit versions and checkpoint versions in the home table's log (those after
    `after`, listed from there on), ascending."""
    start = _log(table, f"{after:020d}.json") if after is not None else ""
    names = [n.rsplit("/", 1)[-1] for n in home.names_after(f"{table}/_delta_log", start)]
    commits = sorted(int(m.group(1)) for n in names if (m := _COMMIT.match(n)))
    checkpoints = sorted(int(m.group(1)) for n in names if (m := _CHECKPOINT.match(n)))
    return commits, checkpoints


def files_of_commit(table: str, text: bytes) -> dict[str, int]:
    """The data files one commit adds (adds and change data), as object names, with the size
    the commit records for each."""
    files = {}
    for line in text.decode().splitlines():
        action = json.loads(line)
        for kind in ("add", "cdc"):
            entry = action.get(kind)
            if entry is None:
                continue
            if "://" in entry["path"] or entry.get("deletionVector", {}).get("storageType", "i") != "i":
                raise ReplicationError(table, f"a file outside the table or a deletion vector file: {entry['path']}")
            files[f"{table}/{unquote(entry['path'])}"] = int(entry["size"])
    return files


def _files_of_checkpoint(table: str, data: bytes) -> dict[str, int]:
    adds = pq.read_table(io.BytesIO(data), columns=["add"]).column("add").to_pylist()
    return {f"{table}/{unquote(a['path'])}": int(a["size"]) for a in adds if a is not None}


def _copy_files(
    home: Objects, replica: Objects, wanted: dict[str, int | None], present: dict[str, int]
) -> tuple[int, int]:
    """Copy each file the replica lacks or holds at another size (`present`: what a listing
    of the replica found), and check each copy by its size: a dropped or truncated copy stops
    the pass before the log entry that needs it."""
    copied = size_sum = 0
    for name, recorded in wanted.items():
        size = home.size(name) if recorded is None else recorded
        if size is None:
            raise ReplicationError(name.split("/_delta_log")[0], f"the home region lost {name}")
        if present.get(name) == size:
            continue
        try:
            replica.copy_from(home, name)
        except Exception as exc:
            if home.size(name) is None:
                raise ReplicationError(name.split("/_delta_log")[0], f"the home region lost {name} (VACUUM?)") from exc
            raise
        got = replica.size(name)
        if got is None or got != size:
            raise ReplicationError(name, f"copied {got} bytes of {size}")
        present[name] = got
        copied, size_sum = copied + 1, size_sum + got
    return copied, size_sum


def _copy_checkpoint(home: Objects, replica: Objects, table: str, version: int, present: dict[str, int]) -> None:
    """Copy checkpoint `version`, and the home's pointer to it when it still points there (a
    reader without the pointer lists the log instead)."""
    checkpoint = _log(table, f"{version:020d}.checkpoint.parquet")
    _copy_files(home, replica, {checkpoint: None}, present)  # checked before it is pointed at
    pointer = _log(table, "_last_checkpoint")
    if home.size(pointer) is not None:
        text = home.read(pointer)
        if json.loads(text).get("version") == version:
            replica.write(pointer, text)


def replicate_table(home: Objects, replica: Objects, table: str, upto: int | None = None) -> TableCopy:
    """Copy `table`'s commits after the replica's watermark (up to `upto`), in commit order."""
    mark = read_watermark(replica, table)
    commits, checkpoints = commit_versions(home, table, mark)
    pending = [v for v in commits if (mark is None or v > mark) and (upto is None or v <= upto)]
    done = files = size_sum = 0
    present = replica.sizes(table) if pending else {}  # one listing, not a request per file
    if mark is None and pending and pending[0] != 0:  # the first commits were cleaned: start at a checkpoint
        start = max((c for c in checkpoints if c <= pending[0]), default=None)
        if start is None:
            raise ReplicationError(table, f"the home log starts at commit {pending[0]} and has no checkpoint")
        name = _log(table, f"{start:020d}.checkpoint.parquet")
        data = home.read(name)
        copied, size = _copy_files(home, replica, dict(_files_of_checkpoint(table, data)), present)
        _copy_checkpoint(home, replica, table, start, present)
        advance_watermark(replica, table, start)
        pending = [v for v in pending if v > start]
        files, size_sum = files + copied, size_sum + size
    for version in pending:
        name = _log(table, f"{version:020d}.json")
        text = home.read(name)
        copied, size = _copy_files(home, replica, dict(files_of_commit(table, text)), present)
        created = replica.create(name, text)
        if not created and replica.read(name) != text:
            raise ReplicationError(table, f"the replica's commit {version} differs from the home region's")
        if version in checkpoints:
            _copy_checkpoint(home, replica, table, version, present)
        advance_watermark(replica, table, version)
        done, files, size_sum = done + created, files + copied, size_sum + size
    return TableCopy(table, read_watermark(replica, table), done, files, size_sum)
