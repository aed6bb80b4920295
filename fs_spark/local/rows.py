"""Rows read without Spark, handed over as Arrow, pandas, polars or a stream of batches.

`TableRows` is a feature table at one version; `TrainingSetRows` a stored training set, checked
against the digest its manifest records (the digest Spark observed when it wrote the rows), so
a laptop read is the same data as the build, byte for byte, or an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from fs_spark.catalog.records import FeatureVersion
from fs_spark.definitions.model import FeatureTable
from fs_spark.digest_arrow import ArrowDigest
from fs_spark.errors import FeatureNotFoundError, ReplayMismatchError
from fs_spark.storage.layout import VERSION_COLUMN
from fs_spark.training.manifest import TrainingSetManifest
from fs_spark.training.pit_join import ROW_COLUMN

if TYPE_CHECKING:
    import pandas as pd

    from fs_spark.local.torch_dataset import TrainingSetDataset

BATCH_ROWS = 65_536


class ArrowRows:
    """Rows of one dataset, with an optional row filter and a projection."""

    def __init__(self, dataset: ds.Dataset, columns: dict[str, Any] | None = None, where: Any = None):
        self._dataset = dataset
        self._columns = columns
        self._where = where

    @property
    def schema(self) -> pa.Schema:
        return self._scanner(1).projected_schema

    def _scanner(self, batch_rows: int) -> ds.Scanner:
        return self._dataset.scanner(columns=self._columns, filter=self._where, batch_size=batch_rows)

    def to_batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Batches of at most `batch_rows` rows, file by file: data larger than memory."""
        for batch in self._scanner(batch_rows).to_batches():
            if batch.num_rows:
                yield batch

    def to_arrow(self) -> pa.Table:
        return self._scanner(BATCH_ROWS).to_table()

    def to_pandas(self) -> pd.DataFrame:
        """A pandas DataFrame; timestamps are aware UTC, as Spark's `toPandas` with Arrow."""
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """A polars DataFrame (`pip install fs_spark[polars]`)."""
        try:
            import polars
        except ImportError:
            raise ImportError("to_polars needs polars: pip install 'fs_spark[polars]'") from None
        return polars.from_arrow(self.to_arrow())


class TableRows(ArrowRows):
    """A feature table's rows as of one feature version (`FeatureStore.read_arrow`)."""

    def __init__(self, table: str, version_id: str | None, delta_version: int, dataset, columns, where):
        super().__init__(dataset, columns, where)
        self.table = table
        self.version_id = version_id
        self.delta_version = delta_version

    def __repr__(self) -> str:
        return f"TableRows(table={self.table!r}, version_id={self.version_id!r}, delta_version={self.delta_version})"


class TrainingSetRows(ArrowRows):
    """A stored training set read without Spark (`fs_spark.open_training_set`).

    `to_arrow` (and the conversions built on it) gives the rows in the entity rows' order and
    checks the digest before handing anything over. `to_batches` streams in storage order,
    each batch keeping `_fs_row`, the entity row's number, to put rows back in order; with
    `verify` it checks the digest when the stream ends and raises there on a mismatch.
    """

    def __init__(self, manifest: TrainingSetManifest, dataset: ds.Dataset, verify: bool = True):
        super().__init__(dataset)
        self.manifest = manifest
        self.verify = verify

    @property
    def id(self) -> str:
        return self.manifest.training_set_id

    def _check(self, digest: ArrowDigest) -> None:
        found = digest.hexdigest()
        if found != self.manifest.content_digest:
            raise ReplayMismatchError(
                self.id, self.manifest.content_digest, found, "read without Spark", "its files changed outside fs_spark"
            )

    def to_batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        digest = ArrowDigest()
        for batch in super().to_batches(batch_rows):
            if self.verify:
                digest.add(batch)
            yield batch
        if self.verify:
            self._check(digest)

    def to_arrow(self) -> pa.Table:
        rows = super().to_arrow()
        if self.verify:
            digest = ArrowDigest()
            digest.add(rows)
            self._check(digest)
        ordered = rows.take(pc.sort_indices(rows, sort_keys=[(ROW_COLUMN, "ascending")]))
        return ordered.drop_columns([ROW_COLUMN])

    def to_torch(
        self,
        batch_size: int = 1024,
        columns: list[str] | None = None,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> TrainingSetDataset:
        """A PyTorch IterableDataset of batches of tensors, sharded by DataLoader worker and
        rank (`pip install 'fs_spark[torch]'`; see `fs_spark.local.torch_dataset`). With
        `verify`, the digest is checked here, in one pass before training: sharded readers
        each see only a part of the set."""
        try:
            from fs_spark.local.torch_dataset import TrainingSetDataset
        except ImportError:
            raise ImportError("to_torch needs PyTorch: pip install 'fs_spark[torch]'") from None
        names = [n for n in self.schema.names if n != ROW_COLUMN]
        unknown = [c for c in columns or [] if c not in names]
        if unknown:
            raise ValueError(f"training set {self.id} has no column(s) {unknown}; it has {names}")
        if self.verify:  # one streaming pass: `to_batches` checks the digest when it ends
            for _ in self.to_batches():
                pass
        return TrainingSetDataset(self.id, self._dataset, columns or names, batch_size, rank, world_size)

    def __repr__(self) -> str:
        return f"TrainingSetRows(id={self.id!r}, rows={self.manifest.row_count})"


def table_rows(
    table: FeatureTable,
    version: FeatureVersion | None,
    delta_version: int,
    dataset: ds.Dataset,
    features: list[str] | None,
    include_version_column: bool,
    excluded_versions: tuple[int, ...],
) -> TableRows:
    """`fs_spark.storage.reader.read_version` over Arrow: the rows of versions 1..n less the
    excluded, the keys, event time and features, each as its declared type (a column added
    after the rows were written reads as null)."""
    wanted = list(features) if features is not None else list(table.feature_names)
    unknown = [name for name in wanted if name not in table.feature_names]
    if unknown:
        raise FeatureNotFoundError(table.name, unknown, table.feature_names)
    present = set(dataset.schema.names)
    number = version.version_number if version is not None else 0
    where = pc.field(VERSION_COLUMN) <= number
    if excluded_versions:
        where = where & ~pc.field(VERSION_COLUMN).isin(list(excluded_versions))
    names = [*table.keys, table.event_time] + ([VERSION_COLUMN] if include_version_column else [])
    columns: dict[str, Any] = {name: pc.field(name) for name in names}
    for name in wanted:
        kind = table.feature(name).dtype.arrow_type
        columns[name] = pc.field(name).cast(kind) if name in present else pc.scalar(None).cast(kind)
    return TableRows(table.name, version.version_id if version else None, delta_version, dataset, columns, where)
