"""fs_spark: a feature store on Apache Spark and Delta Lake.

Everything users may import is listed here; other modules are internal and may change.
"""

from fs_spark.catalog.records import FeatureVersion
from fs_spark.catalog.schema import describe_catalog
from fs_spark.config import Settings, load_settings
from fs_spark.definitions.compatibility import Change
from fs_spark.definitions.model import CrossFeatureRule, Entity, Feature, FeatureTable, Source, Transformation
from fs_spark.definitions.registry import PlanItem
from fs_spark.definitions.types import FeatureType
from fs_spark.definitions.yaml_io import dump_definitions, load_definitions
from fs_spark.errors import (
    AccessDeniedError,
    BreakingChangeError,
    ConfigError,
    DefinitionError,
    DeltaJarsMissingError,
    DeprecatedFeatureError,
    DriftBaselineError,
    DuplicateBatchError,
    DuplicateBatchWarning,
    EntityColumnError,
    ExportError,
    FeatureLookupError,
    FeatureNotFoundError,
    FeatureServiceMismatchError,
    FeatureServiceNotFoundError,
    FsSparkError,
    InputNotFoundError,
    InvalidNameError,
    JvmJarMissingError,
    LineageNodeNotFoundError,
    LockLostError,
    LockTimeoutError,
    ModelNotFoundError,
    NaiveEntityTimeError,
    NotMaterializedError,
    OnlineRequestError,
    PromotionError,
    ReplayMismatchError,
    ReplicationError,
    ReplicaWriteError,
    RetentionGuardError,
    RetentionPeriodError,
    RetiredFeatureError,
    RollbackError,
    RunNotFoundError,
    RunStateError,
    SchemaMismatchError,
    StoreNotFoundError,
    TableNotFoundError,
    TimestampPrecisionError,
    TrainingSetInputExpiredError,
    TrainingSetNotFoundError,
    UnknownRegionError,
    ValidationError,
    VersionExpiredError,
    VersionNotFoundError,
    VersionQuarantinedError,
    Violation,
    WriteConflictError,
)
from fs_spark.governance.deprecation import DeprecatedFeatureWarning, Deprecation
from fs_spark.governance.exports import Export
from fs_spark.ids import new_id
from fs_spark.lineage.graph import LineageGraph
from fs_spark.lineage.reconcile import DanglingLink, ReconcileReport
from fs_spark.local.open import open_table, open_training_set
from fs_spark.local.rows import TableRows, TrainingSetRows
from fs_spark.online.base import OnlineStoreError
from fs_spark.online.feature_service import FeatureService, load_feature_services
from fs_spark.online.serving import Materialization
from fs_spark.provenance import NaiveTimestampError, RunRef, SourceInfo
from fs_spark.quality.checks import DriftReport
from fs_spark.quality.recovery import Recall
from fs_spark.quality.scoreboard import Scoreboard
from fs_spark.session import get_session
from fs_spark.storage.retention import VacuumResult
from fs_spark.store import FeatureStore
from fs_spark.tracking.records import Deployment, Experiment, Model, ModelVersion, RunInfo
from fs_spark.tracking.runs import Run
from fs_spark.training.lookups import FeatureLookup
from fs_spark.training.manifest import ResolvedLookup, TrainingSetManifest
from fs_spark.training.training_set import TrainingSet
from fs_spark.version import __version__

__all__ = [
    "AccessDeniedError",
    "BreakingChangeError",
    "Change",
    "ConfigError",
    "CrossFeatureRule",
    "DanglingLink",
    "DefinitionError",
    "DeltaJarsMissingError",
    "JvmJarMissingError",
    "Deployment",
    "DeprecatedFeatureError",
    "DeprecatedFeatureWarning",
    "Deprecation",
    "DriftBaselineError",
    "DuplicateBatchError",
    "DuplicateBatchWarning",
    "DriftReport",
    "Entity",
    "EntityColumnError",
    "Export",
    "ExportError",
    "Experiment",
    "Feature",
    "FeatureLookup",
    "FeatureService",
    "Materialization",
    "OnlineStoreError",
    "load_feature_services",
    "FeatureLookupError",
    "FeatureNotFoundError",
    "FeatureServiceMismatchError",
    "FeatureServiceNotFoundError",
    "NotMaterializedError",
    "OnlineRequestError",
    "RetiredFeatureError",
    "FeatureStore",
    "FeatureTable",
    "FeatureType",
    "FeatureVersion",
    "FsSparkError",
    "LockLostError",
    "LockTimeoutError",
    "PromotionError",
    "ReplicaWriteError",
    "ReplicationError",
    "InputNotFoundError",
    "InvalidNameError",
    "LineageGraph",
    "LineageNodeNotFoundError",
    "Model",
    "ModelNotFoundError",
    "ModelVersion",
    "NaiveEntityTimeError",
    "NaiveTimestampError",
    "PlanItem",
    "Recall",
    "ReconcileReport",
    "ReplayMismatchError",
    "ResolvedLookup",
    "RetentionGuardError",
    "RetentionPeriodError",
    "RollbackError",
    "Run",
    "RunInfo",
    "RunNotFoundError",
    "RunRef",
    "RunStateError",
    "SchemaMismatchError",
    "StoreNotFoundError",
    "Scoreboard",
    "Settings",
    "Source",
    "SourceInfo",
    "TableNotFoundError",
    "TableRows",
    "TimestampPrecisionError",
    "TrainingSet",
    "TrainingSetInputExpiredError",
    "TrainingSetManifest",
    "TrainingSetNotFoundError",
    "UnknownRegionError",
    "TrainingSetRows",
    "Transformation",
    "VacuumResult",
    "ValidationError",
    "VersionExpiredError",
    "VersionNotFoundError",
    "VersionQuarantinedError",
    "Violation",
    "WriteConflictError",
    "__version__",
    "describe_catalog",
    "dump_definitions",
    "get_session",
    "load_definitions",
    "load_settings",
    "new_id",
    "open_table",
    "open_training_set",
]
