"""The files under one store root as objects: list, read, copy in, create once. One small
interface over a local folder and an S3 prefix, so replication moves Delta files without Spark,
and the same code is tested on both."""

from __future__ import annotations

import os
import shutil
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import fs_spark.storage.s3 as s3_api
from fs_spark.config import S3Settings
from fs_spark.storage.paths import local_path


class Objects(ABC):
    """The objects under one root, named by their path below it (`tables/spend/v1/...`)."""

    root: str

    @abstractmethod
    def sizes(self, prefix: str) -> dict[str, int]:
        """Every object under `prefix/` and its size in bytes."""

    def names_after(self, prefix: str, start: str) -> list[str]:
        """The objects under `prefix/` whose names sort after `start` (all when it is ""),
        ascending: a log's new entries without listing its whole history."""
        return sorted(n for n in self.sizes(prefix) if n > start)

    @abstractmethod
    def size(self, name: str) -> int | None:
        """The size of one object, None when it does not exist."""

    @abstractmethod
    def read(self, name: str) -> bytes: ...

    @abstractmethod
    def write(self, name: str, data: bytes) -> None:
        """Write (or replace) one object whole."""

    @abstractmethod
    def create(self, name: str, data: bytes) -> bool:
        """Write one object only if none exists by that name: False when one did (and nothing
        was written). Atomic: of two writers, one creates it."""

    @abstractmethod
    def delete(self, name: str) -> None: ...

    def copy_from(self, source: Objects, name: str) -> None:
        """Copy one object of `source` here, whole (a copy is never visible half-written)."""
        self.write(name, source.read(name))


class LocalObjects(Objects):
    def __init__(self, root: str):
        self.root = root
        self._folder = Path(root)

    def _path(self, name: str) -> Path:
        return self._folder / name

    def _temporary(self, name: str) -> tuple[Path, Path]:
        """The object's path, its folder made, and a temporary name beside it to write first."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")

    def names_after(self, prefix: str, start: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        names = (f"{prefix.rstrip('/')}/{n}" for n in os.listdir(folder))  # one level: a log folder
        return sorted(n for n in names if n > start and (folder / n.rsplit("/", 1)[-1]).is_file())

    def sizes(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix)
        if not base.is_dir():
            return {}
        out = {}
        for folder, _, names in os.walk(base):
            for file in names:
                full = Path(folder) / file
                out[str(full.relative_to(self._folder))] = full.stat().st_size
        return out

    def size(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        path, temporary = self._temporary(name)
        temporary.write_bytes(data)
        os.replace(temporary, path)  # whole or nothing

    def create(self, name: str, data: bytes) -> bool:
        path, temporary = self._temporary(name)
        temporary.write_bytes(data)
        try:
            os.link(temporary, path)  # fails when the name exists: atomic create-once
            return True
        except FileExistsError:
            return False
        finally:
            temporary.unlink()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def copy_from(self, source: Objects, name: str) -> None:
        if isinstance(source, LocalObjects):
            path, temporary = self._temporary(name)
            shutil.copyfile(source._path(name), temporary)
            os.replace(temporary, path)
        else:
            super().copy_from(source, name)


class S3Objects(Objects):
    def __init__(self, root: str, s3: S3Settings):
        self.root = root
        self.bucket, self.prefix = s3_api.split(root)
        self.s3 = s3
        self._client: Any = s3_api.client(s3)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def sizes(self, prefix: str) -> dict[str, int]:
        start = self._key(prefix).rstrip("/") + "/"
        out = {}
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                out[item["Key"][len(self.prefix) + 1 if self.prefix else 0 :]] = int(item["Size"])
        return out

    def names_after(self, prefix: str, start: str) -> list[str]:
        first = self._key(prefix).rstrip("/") + "/"
        after = self._key(start) if start else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=first, StartAfter=after
        )
        skip = len(self.prefix) + 1 if self.prefix else 0
        return [item["Key"][skip:] for page in pages for item in page.get("Contents", [])]

    def size(self, name: str) -> int | None:
        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=self._key(name))["ContentLength"])
        except Exception as exc:
            if s3_api.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def read(self, name: str) -> bytes:
        return bytes(self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read())

    def write(self, name: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)

    def create(self, name: str, data: bytes) -> bool:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*")
            return True
        except Exception as exc:
            if s3_api.error_code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise

    def delete(self, name: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=self._key(name))

    def copy_from(self, source: Objects, name: str) -> None:
        if isinstance(source, S3Objects) and source.s3 == self.s3:  # one endpoint: a server-side copy
            # boto3's managed copy: one CopyObject, or a multipart copy past 8 MB parts.
            self._client.copy({"Bucket": source.bucket, "Key": source._key(name)}, self.bucket, self._key(name))
        else:
            super().copy_from(source, name)


def objects(root: str, s3: S3Settings) -> Objects:
    """The objects under a store root: a local folder or an `s3a://` prefix."""
    local = local_path(root)
    if local is not None:
        return LocalObjects(local)
    if root.startswith(("s3a://", "s3://")):
        return S3Objects(root, s3)
    raise ValueError(f"replication reads and writes local folders and s3a:// roots, not {root!r}")
