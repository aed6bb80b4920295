"""S3 from Python (boto3), for what Spark need not do: locks, listings, copies."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlparse

from fs_spark.config import S3Settings


def split(uri: str) -> tuple[str, str]:
    """The bucket and key of an `s3a://` or `s3://` URI, the key without a trailing slash.

    Example:
        >>> split("s3a://features/store/_locks")
        ('features', 'store/_locks')
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3a", "s3") or not parsed.netloc:
        raise ValueError(f"not an S3 URI: {uri!r}")
    return parsed.netloc, parsed.path.strip("/")


@functools.cache
def client(s3: S3Settings) -> Any:
    """A boto3 S3 client for these settings (boto3 clients are thread-safe), credentials from
    the AWS default chain."""
    import boto3
    from botocore.config import Config

    addressing = "path" if s3.path_style_access else "auto"
    config = Config(s3={"addressing_style": addressing}, retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("s3", endpoint_url=s3.endpoint, region_name=s3.region, config=config)


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ClientError ('' for other exceptions)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def latest_version(s3: S3Settings, uri: str, known: int | None = None) -> int | None:
    """The latest commit version of the Delta table at `uri`, from a listing of its log (None
    when it has none). Given a version `known` to exist, the listing starts after it, so its
    cost does not grow with the table's history."""
    bucket, key = split(uri)
    prefix = f"{key}/_delta_log/"
    start = f"{prefix}{known:020d}.json" if known is not None else ""
    latest = known
    for page in client(s3).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, StartAfter=start):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            if len(name) == 25 and name.endswith(".json") and name[:20].isdigit():
                latest = max(latest if latest is not None else -1, int(name[:20]))
    return latest
