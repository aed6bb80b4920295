"""One exact Delta version as an Arrow dataset, through delta-rs: no Spark, no JVM.

delta-rs reads the log (JSON commits and checkpoints) and lists the version's data files;
pyarrow reads those files against the table's own schema, so files written before a column
was added or widened read as the table is now (a missing column is null, an `int` file reads
as `long`). Local files are read by pyarrow's own filesystem, not delta-rs's dataset, whose
filesystem handler can abort the interpreter at exit (delta-io/delta-rs#2184).
"""

from __future__ import annotations

from collections.abc import Callable

import deltalake
import pyarrow as pa
import pyarrow.dataset as ds

from fs_spark.storage.delta_log import local_latest_version
from fs_spark.storage.paths import local_path


def version_dataset(
    path: str,
    delta_version: int,
    missing: Callable[[str], Exception],
    storage_options: dict[str, str] | None = None,
) -> ds.Dataset:
    """The rows of the Delta table at `path` as of `delta_version`; `missing(detail)` is raised
    when the log no longer holds that version or a data file it lists is gone."""
    local = local_path(path)
    try:
        table = deltalake.DeltaTable(local or path, version=delta_version, storage_options=storage_options)
    except Exception as error:  # delta-rs raises its own kinds for a missing log or version
        raise missing(f"the Delta log no longer holds version {delta_version} ({_first_line(error)})") from None
    schema = pa.schema(table.schema().to_arrow())
    if local is None:
        return table.to_pyarrow_dataset()
    files = [uri.removeprefix("file://") for uri in table.file_uris()]
    try:
        return ds.dataset(files, schema=schema, format="parquet") if files else ds.dataset(schema.empty_table())
    except FileNotFoundError as error:
        raise missing(f"a data file is missing (Delta version {delta_version}): {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n")[0][:300]


def latest_delta_version(path: str, storage_options: dict[str, str] | None = None) -> int | None:
    """The table's latest Delta version, None where there is no table: a listing of the log
    where the folder is local, else delta-rs."""
    local = local_path(path)
    if local is not None:
        return local_latest_version(local)
    try:
        return deltalake.DeltaTable(path, storage_options=storage_options).version()
    except deltalake.exceptions.TableNotFoundError:
        return None
