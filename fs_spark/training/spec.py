"""Training-set specifications in YAML (`conf/training/*.yaml`), for jobs and the command line.

label: churned
feature_lookups:
  - table_name: customer_activity
    feature_names: [spend_7d, orders_7d]
    lookback_window: 30d
  - "customer_activity:segment"
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fs_spark.errors import ConfigError
from fs_spark.training.lookups import FeatureLookup


class TrainingSetSpec(BaseModel):
    """The arguments of `create_training_set` other than the entity rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feature_lookups: tuple[FeatureLookup | str, ...]
    label: str | tuple[str, ...] | None = None
    exclude_columns: tuple[str, ...] = ()
    as_of: datetime | None = None
    timezone: str | None = None
    name: str | None = None

    def options(self) -> dict:
        return {
            "label": self.label,
            "exclude_columns": self.exclude_columns,
            "as_of": self.as_of,
            "timezone": self.timezone,
            "name": self.name,
        }


def load_spec(path: str | Path) -> TrainingSetSpec:
    """Read a specification; a misspelt key or a bad lookup is a ConfigError naming the file."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
        return TrainingSetSpec.model_validate(document)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(str(path), str(exc)) from None
