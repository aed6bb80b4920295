"""The Spark session fs_spark runs on: attach to the one that exists, or build a local Delta one.

Inside `spark-submit` or a notebook the session already exists and is used as it is (never
reconfigured behind the user's back); it must have Delta on its classpath, and fs_spark's own
jar for point-in-time joins. Elsewhere fs_spark builds a local session with the Delta jars that
`make setup` fetched and the jar it built (`fs_spark-jvm.jar`, from `jvm/`).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyspark
from pyspark.sql import SparkSession

from fs_spark.config import S3Settings, SparkSettings
from fs_spark.errors import DeltaJarsMissingError, JvmJarMissingError

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
# Delta release line that matches each Spark minor version.
DELTA_FOR_SPARK = {"4.0": "4.0"}
_JAR_RE = re.compile(r"^delta-spark_2\.13-(\d+\.\d+)\.\d+\.jar$")
FS_SPARK_JAR = "fs_spark-jvm.jar"
MERGE_CLASS = "fs_spark.AsOfMerge"
# Delta commits to s3a:// through S3's conditional writes (jvm/fs_spark/S3ConditionalLogStore.java).
S3_LOG_STORE = "fs_spark.S3ConditionalLogStore"
PROJECT_JARS_DIR = Path(__file__).resolve().parent.parent / ".jars"
LOG_CONFIG = Path(__file__).resolve().parent / "resources" / "log4j2.properties"
# Validation evaluates every rule of every feature in one generated method; past 8000 bytes of
# bytecode the JVM leaves such a method interpreted, which made validated writes 2-3x slower.
JIT_OPTIONS = "-XX:-DontCompileHugeMethods"


def _spark_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def find_jars(jars_dir: str | None = None) -> list[str]:
    """Return the Delta jars for the installed pyspark, S3A's (in `s3/`) and fs_spark's own
    jar, or raise DeltaJarsMissingError or JvmJarMissingError."""
    folder = Path(jars_dir or os.environ.get("FS_SPARK_SPARK__JARS_DIR") or PROJECT_JARS_DIR)
    if not folder.is_dir():
        raise DeltaJarsMissingError(f"the jar folder {folder} does not exist")
    jars = sorted(str(p) for p in [*folder.glob("*.jar"), *folder.glob("s3/*.jar")])
    spark_minor = _spark_minor(pyspark.__version__)
    wanted = DELTA_FOR_SPARK.get(spark_minor)
    if wanted is None:
        raise DeltaJarsMissingError(f"pyspark {pyspark.__version__} has no known matching Delta release")
    delta = [m.group(1) for p in jars if (m := _JAR_RE.match(Path(p).name))]
    if not delta:
        raise DeltaJarsMissingError(f"no delta-spark_2.13 jar in {folder}")
    if wanted not in delta:
        raise DeltaJarsMissingError(
            f"{folder} holds delta-spark {', '.join(delta)} but pyspark {pyspark.__version__} needs Delta {wanted}.x"
        )
    if not any(Path(p).name.startswith("delta-storage-") for p in jars):
        raise DeltaJarsMissingError(f"no delta-storage jar in {folder}")
    if not (folder / FS_SPARK_JAR).is_file():
        raise JvmJarMissingError(f"no {FS_SPARK_JAR} in {folder}")
    return jars


def jvm(spark: SparkSession) -> Any:
    """The session's JVM view (py4j), which PySpark types as optional: a classic session has one."""
    view = spark._jvm
    if view is None:
        raise RuntimeError("this Spark session has no JVM (a Spark Connect session); fs_spark needs a classic one")
    return view


def hadoop_conf(spark: SparkSession) -> Any:
    """The session's Hadoop configuration, for FileSystem calls."""
    return spark._jsc.hadoopConfiguration()


def _require_class(spark: SparkSession, name: str, error: type[Exception]) -> None:
    """Raise `error` when the session's JVM cannot load the class `name`."""
    try:
        jvm(spark).org.apache.spark.util.Utils.classForName(name, True, False)
    except Exception as exc:  # py4j wraps the ClassNotFoundException
        raise error(f"the class {name} cannot be loaded") from exc


def check_jvm_classes(spark: SparkSession) -> None:
    """Fail with a clear error when the session lacks fs_spark's jar (checked when a join needs
    it, so a session that only ingests does not need the jar)."""
    _require_class(spark, MERGE_CLASS, JvmJarMissingError)


def check_delta(spark: SparkSession) -> None:
    """Fail fast when the session cannot use Delta (Spark itself only logs a warning)."""
    _require_class(spark, "io.delta.tables.DeltaTable", DeltaJarsMissingError)
    extensions = spark.conf.get("spark.sql.extensions", "") or ""
    if DELTA_EXTENSION not in extensions:
        raise DeltaJarsMissingError(f"spark.sql.extensions does not include {DELTA_EXTENSION}")


def s3a_conf(s3: S3Settings) -> dict[str, str]:
    """The Hadoop settings of S3A that `s3` gives (without the `spark.hadoop.` prefix)."""
    conf = {
        "fs.s3a.endpoint": s3.endpoint,
        "fs.s3a.endpoint.region": s3.region,
        "fs.s3a.path.style.access": "true" if s3.path_style_access else None,
        "fs.s3a.connection.ssl.enabled": "false" if (s3.endpoint or "").startswith("http://") else None,
        "fs.s3a.aws.credentials.provider": s3.credentials_provider,
    }
    return {k: v for k, v in conf.items() if v is not None}


def spark_conf(settings: SparkSettings, s3: S3Settings | None = None) -> dict[str, str]:
    """The Spark settings fs_spark runs with, one source for the local session it builds and
    for `submit_args` (spark-submit jobs): Delta, UTC, the JIT option, the log configuration,
    the Delta tuning, S3A and Delta's log store for it, then the user's `spark.conf`, which wins."""
    return {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": JIT_OPTIONS,
        # log4j2 finds `log4j2.properties` first on the classpath; a folder, not a -D option,
        # so the flags carry no space and survive the shell's word splitting of $(...).
        "spark.driver.extraClassPath": str(LOG_CONFIG.parent),
        "spark.executor.extraJavaOptions": JIT_OPTIONS,
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        # Delta rebuilds table state with a Spark job of 50 tasks by default; the catalog's
        # tables are small, and 50 tasks made each catalog read cost seconds on 2 cores.
        "spark.databricks.delta.snapshotPartitions": "2",
        # VACUUM lists files with this many tasks (10000 by default): 40 s for a small table.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
        # A validated write's plan has a column per rule; past 25 fields Spark warns on every write.
        "spark.sql.debug.maxToStringFields": "1000",
        "spark.delta.logStore.s3a.impl": S3_LOG_STORE,
        # Delta's optional checksum file is written by rename: on S3 a PUT, a copy and a delete
        # per commit (0.35 s of a 1.8 s write), for a check no reader needs.
        "spark.databricks.delta.writeChecksumFile.enabled": "false",
        **{f"spark.hadoop.{k}": v for k, v in s3a_conf(s3 or S3Settings()).items()},
        **settings.conf,
    }


def build_local_session(settings: SparkSettings, s3: S3Settings | None = None) -> SparkSession:
    """Build (or reuse) a local, Delta-enabled session: UTC, few shuffle partitions, UI off."""
    jars = find_jars(settings.jars_dir)
    # Local Python workers (for any Python UDF run in this session) must run this interpreter,
    # which has pyarrow and pandas; PySpark otherwise starts whatever `python3` is on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(settings.master)
        .appName(settings.app_name)
        .config("spark.jars", ",".join(jars))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", settings.driver_memory)
    )
    for key, value in spark_conf(settings, s3).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    check_delta(spark)
    return spark


def submit_args(settings: SparkSettings | None = None, s3: S3Settings | None = None) -> list[str]:
    """The spark-submit flags that give a job Delta and fs_spark's settings (`spark_conf`).

    Example: ``spark-submit $(fs-spark submit-args) jobs/ingest.py ...``
    """
    settings = settings or SparkSettings()
    args = ["--jars", ",".join(find_jars(settings.jars_dir))]
    for key, value in spark_conf(settings, s3).items():
        args += ["--conf", f"{key}={value}"]
    return args


def get_session(settings: SparkSettings | None = None, s3: S3Settings | None = None) -> SparkSession:
    """Return the active session if there is one (checked, not changed), else a local one.

    Under spark-submit the JVM, and its configuration, come from spark-submit: the session is
    created from that configuration as it is, never overridden by fs_spark's settings.
    """
    active = SparkSession.getActiveSession()
    if active is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        active = SparkSession.builder.getOrCreate()
    if active is not None:
        check_delta(active)
        return active
    return build_local_session(settings or SparkSettings(), s3)


_interrupt_handler: Callable[[int, Any], Any] | None = None


def keep_interrupt_handler(handler: Callable[[int, Any], Any]) -> None:
    """Handle Ctrl-C with `handler`, also once a session has started: PySpark's own handler
    (cancel every job through py4j from inside the signal, then raise) prints py4j's traces
    when the signal lands inside another py4j call. For the command line, which exits at once."""
    global _interrupt_handler
    _interrupt_handler = handler
    _restore_interrupt_handler()


def _restore_interrupt_handler() -> None:
    if _interrupt_handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt_handler)


# What the parts of a store hold instead of a session: a call that gives the session, started
# on first use, so commands that only read a local store's catalog never start a JVM.
SessionSource = Callable[[], SparkSession]


class LazySession:
    """The store's Spark session: the one given, else the active or a local one on first call."""

    def __init__(self, settings: SparkSettings, given: SparkSession | None = None, s3: S3Settings | None = None):
        if given is not None:
            check_delta(given)
        self._settings = settings
        self._s3 = s3
        self._session = given
        self._lock = threading.Lock()

    def __call__(self) -> SparkSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = get_session(self._settings, self._s3)
                    _restore_interrupt_handler()
        return self._session

    @property
    def started(self) -> bool:
        return self._session is not None
