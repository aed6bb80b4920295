"""What a write says about where its data came from and which run made it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from pydantic import BaseModel, ConfigDict, field_validator

from fs_spark.errors import FsSparkError


class NaiveTimestampError(FsSparkError):
    def __init__(self, what: str, value: datetime):
        super().__init__(
            f"{what} {value.isoformat()} has no time zone; pass an aware datetime "
            "(for example datetime(2024, 1, 1, tzinfo=timezone.utc))"
        )


@overload
def require_utc(value: datetime, what: str) -> datetime: ...
@overload
def require_utc(value: None, what: str) -> None: ...
def require_utc(value: datetime | None, what: str) -> datetime | None:
    """Return `value` in UTC; refuse naive datetimes, whose meaning depends on the machine."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise NaiveTimestampError(what, value)
    return value.astimezone(UTC)


@overload
def from_spark(value: datetime) -> datetime: ...
@overload
def from_spark(value: None) -> None: ...
def from_spark(value: datetime | None) -> datetime | None:
    """PySpark returns timestamps as naive local time; make them aware UTC."""
    if value is None:
        return None
    return value.astimezone(UTC)


class SourceInfo(BaseModel):
    """The source of a batch: a description and the time range it covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    start: datetime | None = None
    end: datetime | None = None

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("source start and end need a time zone")
        return value


class RunRef(BaseModel):
    """The experiment and run a read or write belongs to; carried into every record it makes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: str | None = None
    run_id: str | None = None
    hypothesis: str | None = None
    mlflow_run_id: str | None = None


def as_run_ref(run: object) -> RunRef | None:
    """A `RunRef` from a `Run` (anything with a `.ref`) or a `RunRef`; None stays None."""
    if run is None or isinstance(run, RunRef):
        return run
    ref = getattr(run, "ref", None)
    if not isinstance(ref, RunRef):
        raise TypeError(f"run must be a Run or a RunRef, not {type(run).__name__}")
    return ref
