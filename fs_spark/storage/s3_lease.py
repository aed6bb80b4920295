"""Write locks shared by every host that writes one `s3a://` root: lease objects created with
S3's conditional writes.

A lock is the object `<root>/_locks/<name>.lock`. Taking it is a PUT with `If-None-Match: *`,
which exactly one writer wins. The holder renews its lease (a PUT with `If-Match` on its own
ETag) every third of the lease while it holds the lock, and releases it with a DELETE on that
ETag. A lock whose object has not been renewed for a whole lease, by the S3 server's own clock
(no host's clock is trusted), belongs to a writer that died: the next writer takes it over with
a PUT on the stale ETag, which again only one can win.

What a lease cannot give alone: a holder that stalls for longer than its lease (a long GC pause,
a partition) may find the lock taken over when it resumes. It learns this at its next renewal or
at release (a conditional write that fails, or finds the lease object gone), and the write ends
with LockLostError. A feature-table write is also fenced at its commit (`fs_spark.storage.fence`):
it may take only the Delta version after the last one it saw under the lease, so a stalled writer
whose lock another writer took over and committed under commits nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import fs_spark.storage.s3 as s3_api
from fs_spark.config import S3Settings
from fs_spark.errors import LockLostError, LockTimeoutError

log = logging.getLogger(__name__)
_TAKEN = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
# A conditional write or delete on a lease object that is gone: it was taken over, then released.
_GONE = ("NoSuchKey", "404", "NotFound")


class _Lease:
    """One held lock: its ETag, renewed by a daemon thread until released."""

    def __init__(self, client: Any, bucket: str, key: str, etag: str, seconds: float, metadata: dict[str, str]):
        self._client = client
        self._metadata = metadata
        self.bucket = bucket
        self.key = key
        self.etag = etag
        self.seconds = seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_released, name=f"lease:{key}", daemon=True)
        self._thread.start()

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                body = _body(self.seconds)
                response = self._client.put_object(
                    Bucket=self.bucket, Key=self.key, Body=body, Metadata=self._metadata, IfMatch=self.etag
                )
                self.etag = response["ETag"]
            except Exception as exc:
                if s3_api.error_code(exc) in (*_TAKEN, *_GONE):
                    self.lost = True
                    return
                log.warning("could not renew the lease %s (will retry): %s", self.key, exc)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if self.lost:
            return
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as exc:
            if s3_api.error_code(exc) in (*_TAKEN, *_GONE):
                self.lost = True
            else:
                raise


def _body(seconds: float) -> bytes:
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "id": uuid.uuid4().hex, "lease_seconds": seconds}
    return json.dumps(holder).encode()


def _server_time(response: dict[str, Any]) -> datetime:
    return parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])


class S3Leases:
    """The lease locks under one `s3a://` prefix."""

    def __init__(self, prefix: str, s3: S3Settings):
        self.bucket, self.prefix = s3_api.split(prefix)
        self.seconds = s3.lock_lease_seconds
        self._client = s3_api.client(s3)
        self._metadata = {"lease-seconds": str(self.seconds)}

    @contextmanager
    def hold(self, name: str, timeout: float) -> Iterator[None]:
        lease = self._take(f"{self.prefix}/{name}.lock", name, timeout)
        try:
            yield
        finally:
            lease.release()
        if lease.lost:
            raise LockLostError(name, f"s3a://{self.bucket}/{lease.key}")

    def _take(self, key: str, name: str, timeout: float) -> _Lease:
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            etag = self._put(key, IfNoneMatch="*") or self._take_over_if_stale(key)
            if etag is not None:
                return _Lease(self._client, self.bucket, key, etag, self.seconds, self._metadata)
            if time.monotonic() + pause > deadline:
                raise LockTimeoutError(name, timeout)
            time.sleep(pause)
            pause = min(pause * 2, 0.25)  # a waiter polls often enough to get its turn

    def _put(self, key: str, **condition: str) -> str | None:
        """Write the lease object under `condition`; its ETag, or None when another writer won."""
        try:
            response = self._client.put_object(
                Bucket=self.bucket, Key=key, Body=_body(self.seconds), Metadata=self._metadata, **condition
            )
            return str(response["ETag"])
        except Exception as exc:
            if s3_api.error_code(exc) in _TAKEN:
                return None
            raise

    def _take_over_if_stale(self, key: str) -> str | None:
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if s3_api.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None  # released meanwhile: the next PUT may win it
            raise
        idle = (_server_time(head) - head["LastModified"]).total_seconds()
        if idle <= float(head.get("Metadata", {}).get("lease-seconds", self.seconds)):  # the holder's lease
            return None
        etag = self._put(key, IfMatch=head["ETag"])
        if etag is not None:
            log.warning("took over the write lock %s, not renewed for %.0f s (its writer died)", key, idle)
        return etag
