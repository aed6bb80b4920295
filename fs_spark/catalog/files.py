"""A catalog table's files, through delta-rs (the `deltalake` package) and pyarrow: on a local
folder or on S3, a commit or a read in milliseconds, where a Spark job costs a tenth of a
second or more (and a snapshot on S3, seconds).

Rows keep the order they were appended in: every append is one new file whose add action
carries a modification time later than every file before it (taken under the catalog lock,
and never earlier than the newest file, whatever a host's clock says), and a read orders files
by it. A long history of one-row files is compacted, rows in commit order, in a commit that
changes no data (which an append-only table allows). Compaction is tiered: it merges the newest
files and leaves an older file alone while it holds more than twice their rows, so a row is
rewritten a few times in the table's life (about log2 of its rows), not at every compaction,
and a table keeps a few files per doubling of its history.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake.transaction import AddAction, RemoveAction

import fs_spark.storage.s3 as s3_api
from fs_spark.config import S3Settings
from fs_spark.storage.paths import local_path


@dataclass(frozen=True)
class TableFiles:
    """Where one catalog table is, for delta-rs (`uri`, `options`) and for pyarrow
    (`filesystem`, `folder`)."""

    uri: str
    folder: str
    filesystem: pafs.FileSystem = field(compare=False)
    options: dict[str, str] | None = None

    def file(self, name: str) -> str:
        return f"{self.folder}/{unquote(name)}"


def table_files(path: str, s3: S3Settings) -> TableFiles | None:
    """The files of the table at `path`; None where the catalog is read through Spark instead
    (filesystems other than local and S3)."""
    local = local_path(path)
    if local is not None:
        return TableFiles(local, local, pafs.LocalFileSystem())
    if urlparse(path).scheme not in ("s3a", "s3"):
        return None
    bucket, key = s3_api.split(path)
    endpoint = urlparse(s3.endpoint) if s3.endpoint else None
    filesystem = pafs.S3FileSystem(
        region=s3.region,
        endpoint_override=endpoint.netloc if endpoint else None,
        scheme=endpoint.scheme if endpoint else "https",
        force_virtual_addressing=not s3.path_style_access and endpoint is None,
    )
    return TableFiles(f"s3://{bucket}/{key}", f"{bucket}/{key}", filesystem, delta_rs_options(s3))


def delta_rs_options(s3: S3Settings) -> dict[str, str]:
    """delta-rs's storage options for `s3` (credentials from the AWS default chain). delta-rs
    commits to S3 with conditional writes, as fs_spark's log store does for Spark."""
    options = {"AWS_REGION": s3.region} if s3.region else {}
    if s3.endpoint:
        options["AWS_ENDPOINT_URL"] = s3.endpoint
        options["AWS_ALLOW_HTTP"] = "true" if s3.endpoint.startswith("http://") else "false"
    if s3.path_style_access:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


def open_table(files: TableFiles, version: int | None = None) -> deltalake.DeltaTable:
    return deltalake.DeltaTable(files.uri, version=version, storage_options=files.options)


def create(files: TableFiles, schema: pa.Schema, description: str) -> None:
    deltalake.DeltaTable.create(
        files.uri,
        schema=deltalake.Schema.from_arrow(schema),
        mode="ignore",
        description=description,
        # A checkpoint every 10 commits: opening a table reads at most 10 commit files (GETs on S3).
        configuration={"delta.appendOnly": "true", "delta.checkpointInterval": "10"},
        storage_options=files.options,
    )


def _added(table: deltalake.DeltaTable) -> list[dict[str, Any]]:
    columns = ["path", "size_bytes", "modification_time", "num_records"]
    return pa.table(table.get_add_actions(flatten=True)).select(columns).to_pylist()


def _in_commit_order(added: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Files in the order their rows were appended: by the time they were added. Ties within a
    millisecond (files of an older fs_spark) keep the log's order, newest file first, reversed."""
    return [added[i] for i in sorted(range(len(added)), key=lambda i: (added[i]["modification_time"], -i))]


def _dataset(files: TableFiles, table: deltalake.DeltaTable, paths: list[str]) -> ds.Dataset:
    """The table's files `paths` as one pyarrow dataset. Read by pyarrow, not through
    delta-rs's dataset, whose filesystem handler can abort the interpreter at exit
    (delta-io/delta-rs#2184)."""
    schema = pa.schema(table.schema().to_arrow())
    return ds.dataset([files.file(p) for p in paths], schema=schema, format="parquet", filesystem=files.filesystem)


def select(files: TableFiles, table: deltalake.DeltaTable, columns: list[str], where: pc.Expression) -> pa.Table:
    """The `columns` of the rows of `table` (as loaded) that match `where`, in no set order.
    The filter and the projection go to the Parquet reader, which skips row groups by their
    statistics: a question about a few rows of a long history reads little of it."""
    return _dataset(files, table, [a["path"] for a in _added(table)]).to_table(columns=columns, filter=where)


def rows_in_commit_order(files: TableFiles, table: deltalake.DeltaTable) -> pa.Table:
    """The rows of `table` (as loaded, at some version) in the order they were appended: files
    in commit order, rows in file order."""
    return _rows_of(files, table, _in_commit_order(_added(table)))


def _rows_of(files: TableFiles, table: deltalake.DeltaTable, ranked: list[dict[str, Any]]) -> pa.Table:
    """The rows of the files `ranked`, in that order, each file's rows in file order."""
    dataset = _dataset(files, table, [a["path"] for a in ranked])
    rows = dataset.to_table(columns=[*dataset.schema.names, "__fragment_index"])
    order = pc.sort_indices(rows, sort_keys=[("__fragment_index", "ascending")])  # stable: rows keep file order
    return rows.take(order).drop_columns(["__fragment_index"])


def append(files: TableFiles, table: deltalake.DeltaTable, data: pa.Table) -> None:
    """Append `data` to `table` (loaded at its latest version) as one new file, timed after
    every file before it. Run under the catalog lock."""
    newest = max((a["modification_time"] for a in _added(table)), default=0)
    _commit_file(files, table, data, max(int(time.time() * 1000), newest + 1), removes=[])


def compact(files: TableFiles, table: deltalake.DeltaTable, limit: int) -> None:
    """Once a table holds `limit` files, rewrite its newest files as one, rows in commit order,
    committed with dataChange=false (the same rows: append-only allows it). Going back from the
    newest file, an older file joins while it holds at most twice the rows of those already
    taken (see the module's docstring). The new file takes the time of the newest file it
    replaces: it follows every file it does not replace, and rows appended later sort after it.
    Run under the catalog lock."""
    ranked = _in_commit_order(_added(table))
    if len(ranked) < limit:
        return
    start, rows_taken = len(ranked) - 1, _rows_in(ranked[-1])
    while start > 0 and _rows_in(ranked[start - 1]) <= 2 * rows_taken:
        start -= 1
        rows_taken += _rows_in(ranked[start])
    merged = ranked[min(start, len(ranked) - 2) :]
    now = int(time.time() * 1000)
    removes = [RemoveAction(a["path"], False, now, a["size_bytes"]) for a in merged]
    _commit_file(files, table, _rows_of(files, table, merged), merged[-1]["modification_time"], removes)


def _rows_in(added: dict[str, Any]) -> int:
    """A file's rows, from its add action's statistics (at least 1: an empty file costs a file)."""
    return max(added["num_records"] or 0, 1)


def replace_rows(files: TableFiles, table: deltalake.DeltaTable, rows: pa.Table) -> None:
    """Replace every row of `table` (loaded at its latest version) with `rows`, in one file
    timed after every file before it: a data change, for which the table's append-only
    property is lifted for that one commit and set again. Only a region rejoining after a
    forced promotion removes catalog rows (those it wrote alone). Run under the catalog lock."""
    added = _added(table)
    newest = max((a["modification_time"] for a in added), default=0)
    now = int(time.time() * 1000)
    removes = [RemoveAction(a["path"], True, now, a["size_bytes"]) for a in added]
    table.alter.set_table_properties({"delta.appendOnly": "false"})
    try:
        _commit_file(files, table, rows, max(now, newest + 1), removes, data_change=True)
    finally:
        table.alter.set_table_properties({"delta.appendOnly": "true"})
        table.update_incremental()


def _commit_file(
    files: TableFiles,
    table: deltalake.DeltaTable,
    rows: pa.Table,
    millis: int,
    removes: list[RemoveAction],
    data_change: bool | None = None,
) -> None:
    """Commit `rows` as one new file, removing `removes`; a data change unless it only
    rewrites files (a compaction)."""
    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    pq.write_table(rows, files.file(name), filesystem=files.filesystem)
    size = files.filesystem.get_file_info(files.file(name)).size
    stats = json.dumps({"numRecords": rows.num_rows})
    data_change = not removes if data_change is None else data_change
    actions: list[AddAction | RemoveAction] = [AddAction(name, size, {}, millis, data_change, stats), *removes]
    table.create_write_transaction(actions, "append", rows.schema)
    table.update_incremental()
