"""The store root and every path below it.

`<root>/tables/<table>/v<definition_version>` feature data, `<root>/quarantine/<table>/v<n>` bad
rows, `<root>/training_sets/<id>/{entities,data}` training sets, `<root>/_catalog/<catalog_table>`
the catalog, `<root>/online/embedded.db` the embedded online store, `<root>/_locks` write locks. Names and IDs are validated before they reach a path,
so none can point outside the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from fs_spark.config import S3Settings
from fs_spark.errors import StoreRootError
from fs_spark.ids import is_id
from fs_spark.names import check_name


def local_path(uri: str) -> str | None:
    """The filesystem path of a plain path or `file:` URI; None for other filesystems."""
    parsed = urlparse(uri)
    if parsed.scheme == "":
        return uri
    return parsed.path if parsed.scheme == "file" else None


# Characters that do not survive the round trip through Hadoop's paths (URI-encoded: "%41" is
# read as "A", " " becomes "%20") and delta-rs's URLs ("#" and "?" end the path).
_UNSAFE_EVERYWHERE = set("%#?")


def check_root(root: str) -> None:
    """Refuse a store root whose paths Hadoop or delta-rs would read differently from the way
    they are written, before anything is written under it."""
    if not root or not root.strip():
        raise StoreRootError(root, "it is empty")
    bad = sorted({c for c in root if c in _UNSAFE_EVERYWHERE or ord(c) < 32})
    if local_path(root) is None:  # an object store's key: no blank either
        bad += sorted({c for c in root if c.isspace() and c not in bad})
    if bad:
        raise StoreRootError(root, f"it holds {', '.join(repr(c) for c in bad)}")


def absolute(path: str) -> str:
    """A URI as it is; a local path made absolute against this process's working directory,
    which Spark's JVM does not follow (a notebook's or a test's `os.chdir`)."""
    if "://" in path or path.startswith("file:"):
        return path.rstrip("/")
    return str(Path(path).expanduser().resolve())


@dataclass(frozen=True)
class StorePaths:
    root: str

    def __post_init__(self) -> None:
        check_root(self.root)
        object.__setattr__(self, "root", absolute(self.root))

    @property
    def table_root(self) -> str:
        """The folder that holds every feature table."""
        return f"{self.root}/tables"

    def table(self, name: str, definition_version: int) -> str:
        return f"{self.root}/tables/{check_name(name, 'table')}/v{int(definition_version)}"

    def quarantine(self, name: str, definition_version: int) -> str:
        return f"{self.root}/quarantine/{check_name(name, 'table')}/v{int(definition_version)}"

    def training_set(self, training_set_id: str, part: str) -> str:
        """`<root>/training_sets/<id>/<part>`: the entity rows ("entities") or the result ("data")."""
        if not is_id(training_set_id) or part not in ("entities", "data"):
            raise ValueError(f"not a training set ID and part: {training_set_id!r}, {part!r}")
        return f"{self.root}/training_sets/{training_set_id}/{part}"

    @property
    def online(self) -> str:
        """The embedded online store's database file."""
        return f"{self.root}/online/embedded.db"

    def catalog(self, name: str) -> str:
        return f"{self.root}/_catalog/{check_name(name, 'catalog table')}"

    def holds_store(self, s3: S3Settings | None = None) -> bool:
        """Whether the root holds a store (its catalog folder), seen without Spark: a folder, or
        on `s3a://` (given the settings to reach it) an object under `<root>/_catalog/`; a root
        on another filesystem is taken as one."""
        local = local_path(self.root)
        if local is not None:
            return (Path(local) / "_catalog").is_dir()
        if self.root.startswith("s3a://") and s3 is not None:
            from fs_spark.storage import s3 as s3_api

            bucket, key = s3_api.split(f"{self.root}/_catalog/")
            try:
                listed = s3_api.client(s3).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
            except Exception as exc:
                if s3_api.error_code(exc) in ("NoSuchBucket", "404"):
                    return False
                raise
            return int(listed.get("KeyCount", 0)) > 0
        return True


def sql_path(path: str) -> str:
    """The Delta table at `path` as Spark SQL names it: delta.`<path>`, backticks escaped."""
    return "delta.`" + path.replace("`", "``") + "`"
