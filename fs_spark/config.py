"""Strict settings: `conf/fs_spark.yaml`, then `FS_SPARK_<SECTION>__<KEY>[__<KEY>...]`
environment overrides, read by pydantic-settings into any depth of the file.

A misspelt key is an error, never a silent default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from fs_spark.errors import ConfigError

ENV_PREFIX = "FS_SPARK_"
DEFAULT_CONF_FILE = Path("conf") / "fs_spark.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Strict):
    root: str = "./fs_store"
    user: str | None = Field(default=None, description="Principal recorded in provenance; default: OS user")
    lock_timeout_seconds: float = 600.0
    regions_file: str | None = Field(
        default=None, description="The regions of this store and its home (conf/regions.yaml); none: one region"
    )
    duplicate_batches: Literal["skip", "refuse"] = Field(
        default="skip",
        description="A write with no write_id whose rows equal an earlier version's: skip it (warn, return that "
        "version) or refuse it",
    )


class SparkSettings(_Strict):
    master: str = "local[2]"
    app_name: str = "fs_spark"
    shuffle_partitions: int = 4
    jars_dir: str | None = Field(default=None, description="Folder with the Delta jars; default: .jars/")
    driver_memory: str = "4g"
    conf: dict[str, str] = Field(default_factory=dict)


class S3Settings(_Strict):
    """How Spark (S3A), boto3 and delta-rs reach `s3a://` roots. Credentials come from the AWS
    default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, an instance role) unless
    `credentials_provider` names S3A's provider classes; none are written in settings."""

    endpoint: str | None = Field(default=None, description="S3 endpoint URL; default: AWS's for the region")
    region: str | None = Field(default=None, description="Signing region, e.g. eu-west-1")
    path_style_access: bool = Field(
        default=False, description="bucket in the path, not the host name (S3-compatible servers)"
    )
    credentials_provider: str | None = Field(
        default=None, description="fs.s3a.aws.credentials.provider: S3A's provider classes, comma-separated"
    )
    lock_lease_seconds: float = Field(
        default=60.0,
        gt=1,
        description="Lease of a write lock on an object store, renewed while held; a crashed writer's lock "
        "is taken over after it",
    )


class TrainingSettings(_Strict):
    partitions: int | None = Field(
        default=None,
        ge=1,
        description="Partitions of the point-in-time join's shuffle; default: the session's "
        "spark.sql.shuffle.partitions",
    )


class MlflowSettings(_Strict):
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI, e.g. sqlite:///mlflow.db; default: MLflow's own (MLFLOW_TRACKING_URI)",
    )
    follow_active_run: bool = Field(
        default=True,
        description="Link to the MLflow run active in this thread, if mlflow is imported",
    )
    start_runs: bool = Field(
        default=False,
        description="Start an MLflow run for every fs_spark run that has none",
    )


class LineageSettings(_Strict):
    namespace: str = Field(default="fs_spark", description="OpenLineage job namespace")
    openlineage: dict[str, Any] | None = Field(
        default=None,
        description="openlineage-python client config, e.g. {transport: {type: file, "
        "log_file_path: lineage.jsonl, append: true}}; default: the client's own (OPENLINEAGE_URL, "
        "OPENLINEAGE_CONFIG) when set, else no events",
    )


class DriftThresholds(_Strict):
    """A drift check breaches when a distance is above its threshold (None: not checked)."""

    psi: float | None = Field(default=0.2, description="Population stability index")
    ks: float | None = Field(default=0.1, description="Kolmogorov-Smirnov distance (numbers)")
    wasserstein: float | None = Field(default=0.25, description="Wasserstein-1 in baseline interquartile ranges")
    null_rate: float | None = Field(default=0.05, description="Change of the share of nulls")
    nan_rate: float | None = Field(default=0.05, description="Change of the share of NaNs")
    new_categories: float | None = Field(default=0, description="Values never seen in the baseline")
    missing_categories: float | None = Field(default=None, description="Baseline values not seen any more")
    schema_changes: bool = Field(default=True, description="Alert on added, removed or retyped columns")
    min_key_coverage: float = Field(
        default=0.0, description="Least share of the population's keys a training set covers"
    )
    min_time_coverage: float = Field(default=0.0, description="Least share of the population's time range it covers")


class AlertSettings(_Strict):
    kind: Literal["log", "file", "webhook"] = "log"
    path: str | None = Field(default=None, description="JSON-lines file, for kind file")
    url: str | None = Field(default=None, description="Endpoint that takes a JSON POST, for kind webhook")
    timeout_seconds: float = 10.0


class AnomalySettings(_Strict):
    """Anomalies over a table's history of versions (`fs_spark.quality.anomalies`)."""

    window: int = Field(default=20, ge=1, description="How many earlier versions form the baseline")
    min_history: int = Field(default=5, ge=2, description="Fewest earlier versions a figure is judged against")
    threshold: float = Field(default=3.5, gt=0, description="Largest robust z-score that is not an anomaly")
    season_versions: int | None = Field(
        default=None, ge=2, description="Versions per season (7: daily writes, weekly rhythm); None: no season"
    )
    after_write: bool = Field(default=False, description="Check each new version after its write")


class QualitySettings(_Strict):
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    quarantine_on_breach: bool = Field(default=False, description="Quarantine a version whose drift check breaches")
    anomalies: AnomalySettings = Field(default_factory=AnomalySettings)


class GovernanceSettings(_Strict):
    policy_file: str | None = Field(
        default=None, description="Access policy YAML (e.g. conf/policies.yaml); none: access control off"
    )
    region: str | None = Field(default=None, description="Region this process runs in, for the policy's regions")
    locations: dict[str, str] = Field(
        default_factory=dict,
        description="Region of storage locations, by path pattern (s3a://eu-data/* : eu-west-1); "
        "a path no pattern matches is in `region`",
    )


class RetentionSettings(_Strict):
    """The scheduled retention pass (`fs-spark vacuum --all`, jobs/retention.py)."""

    hours: float = Field(
        default=168.0, description="Delta retention of removed files, in hours (Delta's default: 7 days)"
    )
    tables: dict[str, float] = Field(
        default_factory=dict,
        description="Retention hours by table-name pattern (first match wins), e.g. {'clicks_*': 48}",
    )

    def hours_for(self, table: str) -> float:
        return next((h for pattern, h in self.tables.items() if fnmatchcase(table, pattern)), self.hours)


class OptimizeSettings(_Strict):
    """`optimize`: laying a feature table's files out by key and event time, off the write path."""

    target_file_mb: int = Field(default=64, ge=1, description="Size of the files OPTIMIZE writes, in MiB")
    cube_mb: int = Field(
        default=1024,
        ge=0,
        description="Liquid clustering: a cluster this large is left alone by later runs, which lay out only "
        "newer data and smaller clusters (MiB)",
    )


class CacheSettings(_Strict):
    """The in-process cache in front of the online store."""

    enabled: bool = True
    max_entries: int = Field(default=100_000, ge=1)
    ttl_seconds: float = Field(default=60.0, gt=0, description="Longest an entry is served without a store read")
    check_interval_ms: float = Field(
        default=100.0, ge=0, description="How often the store's table state is checked for a newer materialization"
    )
    definition_check_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often a served table's latest definition revision (its tags, which access is decided on) "
        "is read again",
    )


class ServerSettings(_Strict):
    """`fs-spark serve`: the HTTP feature server."""

    host: str = "127.0.0.1"
    port: int = 6580  # not on the browsers' bad-port list (6566 is: Chromium refuses it)
    tokens: dict[str, str] = Field(
        default_factory=dict,
        description="Bearer token -> principal; required when a policy file is set (no anonymous access)",
    )
    max_entities: int = Field(default=1_000, ge=1, description="Most entity rows one request may ask for")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="Largest request body; a larger one is refused (413) before it is parsed"
    )


class OnlineSettings(_Strict):
    kind: Literal["embedded", "redis"] = Field(
        default="embedded", description="embedded: a SQLite file under the store root; redis: a Redis server"
    )
    redis_url: str = "redis://127.0.0.1:6379/0"
    timeout_seconds: float = Field(default=1.0, gt=0, description="Socket timeout of every online store call")
    cache: CacheSettings = Field(default_factory=CacheSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)


class HealthThresholds(_Strict):
    """Where a health figure turns the store from ok to degraded."""

    online_staleness_seconds: float = Field(
        default=3600.0, gt=0, description="Oldest materialization an online table may serve"
    )
    replication_lag_seconds: float = Field(default=900.0, gt=0, description="Largest replica lag, in seconds")
    replication_lag_versions: int = Field(default=100, ge=0, description="Largest replica lag, in versions")
    min_lineage_completeness: float = Field(
        default=1.0, ge=0, le=1, description="Least share of model versions and deployments traced to their sources"
    )
    min_cache_hit_rate: float = Field(default=0.0, ge=0, le=1, description="Least online cache hit rate")
    failed_job_window_hours: float = Field(
        default=24.0, gt=0, description="A failed operation this recent degrades the store"
    )


class NotifySettings(_Strict):
    """The rules of `fs-spark watch` beyond health's thresholds."""

    churn_max_versions: int = Field(default=1000, ge=1, description="Most versions of a table in the window")
    churn_window_hours: float = Field(default=24.0, gt=0)
    renotify_hours: float = Field(default=24.0, ge=0, description="The same alert is not sent again within this")


class ObservabilitySettings(_Strict):
    """Metrics, health and their thresholds."""

    metrics_table: bool = Field(default=True, description="Record each operation as a row of the `metrics` table")
    pushgateway: str | None = Field(
        default=None, description="Pushgateway address (host:port or URL); the registry is pushed after each operation"
    )
    push_job: str = Field(default="fs_spark", description="The Pushgateway job name")
    push_timeout_seconds: float = Field(default=5.0, gt=0)
    write_probe: bool = Field(default=True, description="Health writes and deletes one small object under the root")
    health: HealthThresholds = Field(default_factory=HealthThresholds)
    notify: NotifySettings = Field(default_factory=NotifySettings)


class Settings(_Strict):
    store: StoreSettings = Field(default_factory=StoreSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    lineage: LineageSettings = Field(default_factory=LineageSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    optimize: OptimizeSettings = Field(default_factory=OptimizeSettings)
    online: OnlineSettings = Field(default_factory=OnlineSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)


class _Environment(BaseSettings, Settings):
    """Settings as pydantic-settings reads them from FS_SPARK_* variables: `__` goes one level
    down, into sections, nested sections and maps (FS_SPARK_QUALITY__DRIFT__PSI=0.3,
    FS_SPARK_SPARK__CONF__spark.sql.ansi.enabled=false), and a JSON value fills a whole section
    or map (FS_SPARK_SPARK__CONF='{"spark.sql.ansi.enabled": "false"}')."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, env: Mapping[str, str]):
        self._given = env
        super().__init__(_Environment)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _check_name(key: str) -> None:
    """A FS_SPARK_* variable must name a setting: pydantic-settings would ignore a misspelt one."""
    model: type[BaseModel] = Settings
    parts = key[len(ENV_PREFIX) :].lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            known = ", ".join(sorted(model.model_fields))
            raise ConfigError(key, f"no setting {'.'.join(parts[: depth + 1])!r}; the choices there are {known}")
        inner = field.annotation
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return  # a value, or a map whose keys are free
        model = inner


# Not settings: the file of settings, and notebook widget values (`fs_spark.notebook`).
_NOT_SETTINGS = (f"{ENV_PREFIX}CONF", f"{ENV_PREFIX}WIDGET_")


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    names = [
        k
        for k in env
        if k.upper().startswith(ENV_PREFIX)
        and k.upper() != _NOT_SETTINGS[0]
        and not k.upper().startswith(_NOT_SETTINGS[1])
    ]
    for key in names:
        _check_name(key)
    if not names:
        return {}
    try:
        return _EnvironmentSource({k: env[k] for k in names})()
    except Exception as exc:  # a JSON value that does not parse
        raise ConfigError("environment", str(exc)) from exc


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_settings(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read settings from `path` (or FS_SPARK_CONF, or ./conf/fs_spark.yaml when present).

    Example:
        >>> load_settings(env={"FS_SPARK_STORE__ROOT": "/tmp/x"}).store.root
        '/tmp/x'
    """
    env = dict(os.environ) if env is None else env
    chosen = path or env.get(f"{ENV_PREFIX}CONF")
    data: dict[str, Any] = {}
    source = "defaults"
    if chosen is None and DEFAULT_CONF_FILE.is_file():
        chosen = DEFAULT_CONF_FILE
    if chosen is not None:
        source = str(chosen)
        try:
            data = yaml.safe_load(Path(chosen).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(source, str(exc)) from exc
        if not isinstance(data, dict):
            raise ConfigError(source, "the top level must be a mapping")
    overrides = _environment(env)
    if overrides:
        data = _merged(data, overrides)
        source = f"{source} + environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, str(exc)) from exc
