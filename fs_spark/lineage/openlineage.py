"""OpenLineage events for every write, training-set build and model registration.

Each operation is one OpenLineage run: START when it begins, COMPLETE with its input and output
datasets (each with its Delta version as the dataset version facet) when it succeeds, FAIL with
the error when it does not. fs_spark IDs travel as run tags, and the fs_spark run an operation
belongs to is its parent run. The transport is openlineage-python's own (file, console, HTTP for
Marquez, ...), configured in `lineage.openlineage` or by the client's OPENLINEAGE_* environment.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from fs_spark.config import LineageSettings
from fs_spark.errors import FsSparkError
from fs_spark.ids import new_id
from fs_spark.provenance import RunRef
from fs_spark.version import __version__

PRODUCER = f"https://github.com/fs-spark/fs_spark/tree/{__version__}"


def dataset_name(path: str) -> tuple[str, str]:
    """OpenLineage's naming of a storage location: (namespace, name), e.g. ("file", "/data/x")
    or ("s3://bucket", "path/x")."""
    parsed = urlparse(path)
    if parsed.scheme in ("", "file"):
        return "file", os.path.abspath(parsed.path if parsed.scheme else path)
    scheme = "s3" if parsed.scheme in ("s3a", "s3n") else parsed.scheme
    return f"{scheme}://{parsed.netloc}", parsed.path.lstrip("/")


class _Job:
    """The datasets of one operation, filled in as it goes."""

    def __init__(self, inputs: Sequence[tuple[str, int | None]]):
        self.inputs: list[tuple[str, int | None]] = list(inputs)
        self.outputs: list[tuple[str, int | None]] = []
        self.tags: dict[str, str] = {}
        self.emit_seconds = 0.0

    def input(self, path: str, version: int | None) -> None:
        self.inputs.append((path, version))

    def output(self, path: str, version: int | None, tags: dict[str, str] | None = None) -> None:
        """An output dataset at its Delta version, and fs_spark IDs to tag the run with."""
        self.outputs.append((path, version))
        self.tags.update(tags or {})


class LineageEvents:
    """Emits OpenLineage events through a configured client; does nothing when none is configured."""

    def __init__(self, settings: LineageSettings, store_root: str):
        self.namespace = settings.namespace
        self.store_root = store_root
        self._config = settings.openlineage
        self._client: Any = None
        self.enabled = self._config is not None or bool(
            os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG")
        )

    def _get_client(self):
        if self._client is None:
            from openlineage.client import OpenLineageClient

            self._client = OpenLineageClient(config=self._config) if self._config is not None else OpenLineageClient()
        return self._client

    def _path(self, path: str) -> str:
        """Paths of models are relative to the store root; storage paths are absolute already."""
        return (
            path if "/" in path and (path.startswith("/") or "://" in path) else f"{self.store_root.rstrip('/')}/{path}"
        )

    @contextmanager
    def job(
        self, name: str, *, run: RunRef | None = None, inputs: Sequence[tuple[str, int | None]] = ()
    ) -> Iterator[_Job]:
        """Wrap one operation: START now, then COMPLETE or FAIL.

        Example:
            >>> with store.events.job("write.customer_activity", run=None) as job:   # doctest: +SKIP
            ...     job.output(path, delta_version)
        """
        job = _Job(inputs)
        if not self.enabled:
            yield job
            return
        run_id = new_id()
        self._emit("START", name, run_id, run, job)
        try:
            yield job
        except BaseException as error:
            self._emit("FAIL", name, run_id, run, job, error)
            raise
        self._emit("COMPLETE", name, run_id, run, job)

    def _emit(
        self, state: str, name: str, run_id: str, parent: RunRef | None, job: _Job, error: BaseException | None = None
    ) -> None:
        started = time.perf_counter()
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import (
            dataset_version_dataset,
            error_message_run,
            job_type_job,
            parent_run,
            tags_run,
        )

        facets: dict[str, Any] = {}
        tags = dict(job.tags)
        if parent is not None and parent.run_id:
            tags.update({"fs_spark.run_id": parent.run_id, "fs_spark.experiment_id": parent.experiment_id or ""})
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent.run_id),
                job=parent_run.Job(namespace=self.namespace, name=f"experiment.{parent.experiment_id}"),
            )
        if tags:
            facets["tags"] = tags_run.TagsRunFacet(
                tags=[tags_run.TagsRunFacetFields(k, v, "fs_spark") for k, v in sorted(tags.items())]
            )
        if error is not None:
            message, trace = _described(error)
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=message, programmingLanguage="python", stackTrace=trace[-8000:]
            )

        def dataset(cls, path: str, version: int | None):
            namespace, ds_name = dataset_name(self._path(path))
            ds_facets = {}
            if version is not None:
                ds_facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(version))
            return cls(namespace=namespace, name=ds_name, facets=ds_facets)

        done = state != "START"
        event = RunEvent(
            eventType=getattr(RunState, state),
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=run_id, facets=facets),
            job=Job(
                namespace=self.namespace,
                name=f"fs_spark.{name}",
                facets={
                    "jobType": job_type_job.JobTypeJobFacet(
                        processingType="BATCH", integration="FS_SPARK", jobType="JOB"
                    ),
                },
            ),
            inputs=[dataset(InputDataset, p, v) for p, v in job.inputs],
            outputs=[dataset(OutputDataset, p, v) for p, v in job.outputs] if done else [],
            producer=PRODUCER,
        )
        self._get_client().emit(event)
        job.emit_seconds += time.perf_counter() - started


def _described(error: BaseException) -> tuple[str, str]:
    """The error's message and stack trace for a lineage event. fs_spark's own errors are told
    without feature values (a validation error's examples): lineage carries names and IDs only."""
    if not isinstance(error, FsSparkError):
        return str(error), "".join(traceback.format_exception(error))
    message = error.without_values()
    frames = "".join(traceback.format_tb(error.__traceback__))
    return (
        message,
        f"Traceback (most recent call last):\n{frames}{type(error).__module__}.{type(error).__name__}: {message}\n",
    )
