"""A stored training set as a PyTorch `IterableDataset`, read without Spark (`fs_spark[torch]`).

The set's Parquet row groups are the units of work: each DataLoader worker of each rank reads
every `shards`-th one, so that together they read every row exactly once and no two read the
same row. The rank and world size come from `torch.distributed` when it is initialized, or are
given. Each item is one batch, a dict of column name to tensor (strings stay lists of str), so
the DataLoader takes `batch_size=None`:

>>> rows = fs_spark.open_training_set("ts-...", root="./fs_store")              # doctest: +SKIP
>>> loader = DataLoader(rows.to_torch(batch_size=512), batch_size=None, num_workers=2)  # doctest: +SKIP

Types: integers, floats and booleans keep their width; timestamps are int64 microseconds since
the epoch (UTC) and dates int32 days. A null float is NaN; a null in any other column has no
tensor value, so the batch that holds it is refused with the column named (choose `columns`, or
fill the feature in the training set).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info


class TensorConversionError(ValueError):
    def __init__(self, training_set_id: str, column: str, why: str):
        super().__init__(f"training set {training_set_id}: column {column!r} {why}")
        self.column = column


class TrainingSetDataset(IterableDataset):
    """Batches of a training set's rows as tensors, sharded by DataLoader worker and rank.

    Args:
        training_set_id: for error messages.
        dataset: the set's files at the Delta version its manifest records.
        columns: the columns to hand over, in order (default: all but `_fs_row`).
        batch_size: rows per batch (the last of each row group may be shorter).
        rank, world_size: this process's place among distributed trainers (default: from
            `torch.distributed` when initialized, else one process).
    """

    def __init__(
        self,
        training_set_id: str,
        dataset: ds.Dataset,
        columns: Sequence[str],
        batch_size: int = 1024,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.training_set_id = training_set_id
        self.columns = list(columns)
        self.batch_size = batch_size
        self._rank, self._world_size = rank, world_size
        fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
        self.units = [unit for fragment in fragments for unit in fragment.split_by_row_group()]

    def placement(self) -> tuple[int, int]:
        """(this reader's shard, the number of shards): one per worker of each rank."""
        rank, world = self._rank, self._world_size
        if rank is None or world is None:
            distributed = dist.is_available() and dist.is_initialized()
            rank = rank if rank is not None else dist.get_rank() if distributed else 0
            world = world if world is not None else dist.get_world_size() if distributed else 1
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside a world of {world}")
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        return rank * workers + worker_id, world * workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        shard, shards = self.placement()
        for unit in self.units[shard::shards]:
            for batch in unit.to_batches(columns=self.columns, batch_size=self.batch_size):
                if batch.num_rows:
                    yield {name: self._tensor(name, batch.column(name)) for name in self.columns}

    def _tensor(self, name: str, column: pa.Array) -> Any:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return column.to_pylist()
        if pa.types.is_floating(kind):
            return torch.from_numpy(column.fill_null(float("nan")).to_numpy(zero_copy_only=False, writable=True))
        if column.null_count:
            raise TensorConversionError(
                self.training_set_id, name, f"holds {column.null_count} null(s): no tensor value"
            )
        if pa.types.is_timestamp(kind):
            column = pc.cast(column, pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
        elif pa.types.is_date32(kind):
            column = column.cast(pa.int32())
        elif not (pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
            raise TensorConversionError(self.training_set_id, name, f"is of type {kind}, which has no tensor type")
        return torch.from_numpy(column.to_numpy(zero_copy_only=False, writable=True))
