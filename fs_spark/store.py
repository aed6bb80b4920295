"""`FeatureStore`: the object users hold. It ties one store root to one Spark session.

Example:
    >>> store = FeatureStore("./fs_store")                        # doctest: +SKIP
    >>> store.apply(customer_activity)                            # doctest: +SKIP
    >>> version = store.write("customer_activity", batch_df)      # doctest: +SKIP
    >>> store.read("customer_activity", version=version.version_id).show()  # doctest: +SKIP
"""

from __future__ import annotations

import getpass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from fs_spark.catalog.catalog import Catalog
from fs_spark.catalog.records import FeatureVersion
from fs_spark.config import Settings, load_settings
from fs_spark.definitions.model import FeatureTable
from fs_spark.errors import VersionNotFoundError
from fs_spark.ids import is_id
from fs_spark.ingest.writer import FeatureWriter, Mode
from fs_spark.provenance import RunRef, SourceInfo, require_utc
from fs_spark.registry import PlanItem, Registry
from fs_spark.session import check_delta, get_session
from fs_spark.storage.paths import StorePaths
from fs_spark.storage.reader import read_version, readable_delta_version


class FeatureStore:
    """A feature store rooted at one folder (local path or URI), on one Spark session.

    Args:
        root: the store root; default: `store.root` from settings.
        spark: a session to use as it is (it must have Delta); default: the active session, or
            a local Delta session built from settings.
        settings: default: `load_settings()` (conf/fs_spark.yaml plus FS_SPARK_* overrides).
        user: the principal recorded in provenance; default: settings, then the OS user.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        spark: SparkSession | None = None,
        settings: Settings | None = None,
        user: str | None = None,
    ):
        self.settings = settings or load_settings()
        if spark is not None:
            check_delta(spark)
        self.spark = spark or get_session(self.settings.spark)
        self.paths = StorePaths(root or self.settings.store.root)
        self.user = user or self.settings.store.user or getpass.getuser()
        timeout = self.settings.store.lock_timeout_seconds
        self.catalog = Catalog(self.spark, self.paths, timeout)
        self.registry = Registry(self.spark, self.paths, self.catalog, self.user, timeout)
        self._writer = FeatureWriter(self.spark, self.paths, self.catalog, self.user, timeout)

    @property
    def root(self) -> str:
        return self.paths.root

    def init(self) -> FeatureStore:
        """Create the catalog tables (also done on first use)."""
        self.catalog.ensure()
        return self

    # --- definitions --------------------------------------------------------------------------

    def plan(self, *tables: FeatureTable) -> list[PlanItem]:
        """What `apply` would do, changing nothing."""
        return self.registry.plan(list(tables))

    def apply(self, *tables: FeatureTable) -> list[PlanItem]:
        """Create or update definitions; a breaking change needs a new definition_version."""
        return self.registry.apply(list(tables))

    def get_table(self, name: str) -> FeatureTable:
        return self.registry.current(name).definition

    def list_tables(self) -> list[str]:
        return self.registry.names()

    # --- writing ------------------------------------------------------------------------------

    def write(
        self,
        table: str,
        df: DataFrame,
        *,
        mode: Mode = "strict",
        write_id: str | None = None,
        source: SourceInfo | None = None,
        run: RunRef | None = None,
    ) -> FeatureVersion:
        """Validate `df` and commit it as one new feature version.

        Args:
            mode: "strict" refuses the whole batch if any row breaks a rule; "quarantine" writes
                the good rows and sends the bad ones, with the rules they broke, to quarantine.
            write_id: the identity of this write. A retry with the same identity and the same
                data returns the first version; with different data it raises
                WriteConflictError. Default: the batch's content digest (one extra pass).
            source: where the batch came from and the time range it covers.
            run: the experiment and run making the write.
        """
        applied = self.registry.current(table)
        return self._writer.write(
            applied.definition, applied.revision, df, mode=mode, write_id=write_id, source=source, run=run
        )

    # --- reading ------------------------------------------------------------------------------

    def versions(self, table: str) -> list[FeatureVersion]:
        """Every version of `table`, oldest first."""
        self.registry.current(table)
        return self.catalog.versions(table)

    def version(self, table: str, version: int | str | None = None, as_of: datetime | None = None) -> FeatureVersion | None:
        """Resolve a version number, version ID or point in time to one feature version.

        Numbers count within the current definition version; IDs are global. With neither,
        the latest version (None when nothing was written yet).
        """
        return self._resolve(table, version, as_of)[0]

    def _resolve(self, table: str, version, as_of) -> tuple[FeatureVersion | None, FeatureVersion | None]:
        """The version asked for, and the next version of the same table and definition version."""
        applied = self.registry.current(table)
        current = applied.definition.definition_version
        if version is not None and as_of is not None:
            raise ValueError("pass either version or as_of, not both")
        every = self.catalog.versions(table)
        if isinstance(version, str):
            if not is_id(version):
                raise VersionNotFoundError(table, version, "a version ID is a UUIDv7 string")
            found = [v for v in every if v.version_id == version]
            if not found:
                raise VersionNotFoundError(table, version, f"it has {len(every)} version(s)")
            chosen = found[0]
        else:
            candidates = [v for v in every if v.definition_version == current]
            if isinstance(version, int) and not isinstance(version, bool):
                found = [v for v in candidates if v.version_number == version]
                if not found:
                    numbers = f"versions 1..{len(candidates)}" if candidates else "no versions yet"
                    raise VersionNotFoundError(table, version, f"definition version {current} has {numbers}")
                chosen = found[0]
            elif version is not None:
                raise VersionNotFoundError(table, version, "a version is a number or a version ID")
            elif as_of is not None:
                moment = require_utc(as_of, "as_of")
                before = [v for v in candidates if v.committed_at <= moment]
                if not before:
                    first = candidates[0].committed_at.isoformat() if candidates else "never"
                    raise VersionNotFoundError(table, f"as of {moment.isoformat()}", f"its first commit was {first}")
                chosen = before[-1]
            else:
                chosen = candidates[-1] if candidates else None
        if chosen is None:
            return None, None
        later = [v for v in every if v.definition_version == chosen.definition_version
                 and v.version_number > chosen.version_number]
        return chosen, (later[0] if later else None)

    def read(
        self,
        table: str,
        *,
        version: int | str | None = None,
        as_of: datetime | None = None,
        features: list[str] | None = None,
        include_version_column: bool = False,
    ) -> DataFrame:
        """The table's rows exactly as of one version: every row committed up to and including it.

        Args:
            version: a version number (within the current definition version) or a version ID.
            as_of: an aware datetime; the latest version committed at or before it.
            features: the features to return (default: all); keys and event time always come.
        """
        resolved, following = self._resolve(table, version, as_of)
        if resolved is None:
            applied = self.registry.current(table)
        else:
            applied = self.registry.at_version(table, resolved.definition_version)
        delta_version = readable_delta_version(self.spark, applied.storage_path, resolved, following)
        return read_version(self.spark, applied.definition, resolved, delta_version, applied.storage_path,
                            features, include_version_column)
