"""fs_spark: a feature store on Apache Spark and Delta Lake.

Everything users may import is listed here; other modules are internal and may change.
"""

from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import describe_catalog
from fs_spark.config import Settings, load_settings
from fs_spark.definitions.compatibility import Change
from fs_spark.definitions.model import CrossFeatureRule, Entity, Feature, FeatureTable, Source, Transformation
from fs_spark.definitions.types import FeatureType
from fs_spark.definitions.yaml_io import dump_definitions, load_definitions
from fs_spark.errors import (
    BreakingChangeError,
    ConfigError,
    DefinitionError,
    DeltaJarsMissingError,
    FsSparkError,
    InvalidNameError,
    SchemaMismatchError,
    TableNotFoundError,
    ValidationError,
    VersionExpiredError,
    VersionNotFoundError,
    Violation,
    WriteConflictError,
)
from fs_spark.ids import new_id
from fs_spark.provenance import NaiveTimestampError, RunRef, SourceInfo
from fs_spark.registry import PlanItem
from fs_spark.session import get_session
from fs_spark.store import FeatureStore

__version__ = "0.1.0"

__all__ = [
    "BreakingChangeError",
    "Change",
    "ConfigError",
    "CrossFeatureRule",
    "DefinitionError",
    "DeltaJarsMissingError",
    "Entity",
    "Feature",
    "FeatureStore",
    "FeatureTable",
    "FeatureType",
    "FeatureVersion",
    "FsSparkError",
    "InvalidNameError",
    "NaiveTimestampError",
    "PlanItem",
    "RunRef",
    "SchemaMismatchError",
    "Settings",
    "Source",
    "SourceInfo",
    "TableNotFoundError",
    "Transformation",
    "ValidationError",
    "VersionExpiredError",
    "VersionNotFoundError",
    "Violation",
    "WriteConflictError",
    "describe_catalog",
    "dump_definitions",
    "get_session",
    "load_definitions",
    "load_settings",
    "new_id",
]
