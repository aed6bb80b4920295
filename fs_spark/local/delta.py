"""One exact Delta version as an Arrow dataset, through delta-rs: no Spark, no JVM.

delta-rs reads the log (JSON commits and checkpoints) and lists the version's data files;
pyarrow reads those files against the table's own schema, so files written before a column
was added or widened read as the table is now (a missing column is null, an `int` file reads
as `long`). Files are read by pyarrow's own filesystems (local, S3), not delta-rs's dataset, whose
filesystem handler can abort the interpreter at exit (delta-io/delta-rs#2184).
"""

from __future__ import annotations

from collections.abc import Callable

import deltalake
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from fs_spark.config import S3Settings
from fs_spark.errors import first_line
from fs_spark.storage.delta_log import local_latest_version
from fs_spark.storage.paths import local_path


def storage_options(s3: S3Settings) -> dict[str, str]:
    """delta-rs's options for the store's S3 settings (the same endpoint, region and path
    style as S3A); credentials come from the same AWS default chain."""
    options: dict[str, str] = {}
    if s3.endpoint:
        options["AWS_ENDPOINT_URL"] = s3.endpoint
        if s3.endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if s3.region:
        options["AWS_REGION"] = s3.region
    options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false" if s3.path_style_access else "true"
    return options


def version_dataset(
    path: str,
    delta_version: int,
    missing: Callable[[str], Exception],
    s3: S3Settings | None = None,
) -> ds.Dataset:
    """The rows of the Delta table at `path` as of `delta_version`; `missing(detail)` is raised
    when the log no longer holds that version or a data file it lists is gone. delta-rs lists
    the files; pyarrow reads them (delta-rs's own dataset refuses reader features it lacks, such
    as type widening, which a file list does not need)."""
    local = local_path(path)
    options = storage_options(s3) if s3 is not None and local is None else None
    try:
        table = deltalake.DeltaTable(local or path, version=delta_version, storage_options=options)
    except Exception as error:  # delta-rs raises its own kinds for a missing log or version
        raise missing(f"the Delta log no longer holds version {delta_version} ({first_line(error)})") from None
    schema = pa.schema(table.schema().to_arrow())
    if local is not None:
        files, filesystem = [uri.removeprefix("file://") for uri in table.file_uris()], None
    else:
        files, filesystem = [uri.split("://", 1)[1] for uri in table.file_uris()], s3_filesystem(s3 or S3Settings())
    try:
        if not files:
            return ds.dataset(schema.empty_table())
        return ds.dataset(files, schema=schema, format="parquet", filesystem=filesystem)
    except FileNotFoundError as error:
        raise missing(f"a data file is missing (Delta version {delta_version}): {first_line(error)}") from None


def s3_filesystem(s3: S3Settings) -> pafs.S3FileSystem:
    """pyarrow's S3 client for the store's S3 settings, credentials from the AWS default chain."""
    endpoint = s3.endpoint
    scheme = "http" if endpoint and endpoint.startswith("http://") else "https"
    return pafs.S3FileSystem(
        region=s3.region,
        endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
        scheme=scheme,
        force_virtual_addressing=not s3.path_style_access,
    )


def latest_delta_version(path: str, s3: S3Settings | None = None) -> int | None:
    """The table's latest Delta version, None where there is no table: a listing of the log
    where the folder is local, else delta-rs."""
    local = local_path(path)
    if local is not None:
        return local_latest_version(local)
    try:
        return deltalake.DeltaTable(path, storage_options=storage_options(s3 or S3Settings())).version()
    except deltalake.exceptions.TableNotFoundError:
        return None
