"""Settings are strict; a session without Delta fails at once, and a join without fs_spark's jar
fails when it starts, both naming `make setup`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fs_spark import ConfigError, DeltaJarsMissingError, JvmJarMissingError, load_settings
from fs_spark.config import SparkSettings
from fs_spark.session import FS_SPARK_JAR, find_jars, spark_conf, submit_args


def test_missing_jar_folder_names_make_setup(tmp_path):
    with pytest.raises(DeltaJarsMissingError, match="does not exist.*make setup"):
        find_jars(str(tmp_path / "nowhere"))


def test_jars_of_another_delta_release_are_refused(tmp_path):
    (tmp_path / "delta-spark_2.13-3.2.0.jar").write_bytes(b"")
    (tmp_path / "delta-storage-3.2.0.jar").write_bytes(b"")
    with pytest.raises(DeltaJarsMissingError, match="holds delta-spark 3.2 but pyspark 4.0.* needs Delta 4.0.x"):
        find_jars(str(tmp_path))


def test_delta_storage_jar_is_required(tmp_path):
    (tmp_path / "delta-spark_2.13-4.0.1.jar").write_bytes(b"")
    with pytest.raises(DeltaJarsMissingError, match="no delta-storage jar"):
        find_jars(str(tmp_path))


def test_fs_spark_jar_is_required(tmp_path):
    (tmp_path / "delta-spark_2.13-4.0.1.jar").write_bytes(b"")
    (tmp_path / "delta-storage-4.0.1.jar").write_bytes(b"")
    with pytest.raises(JvmJarMissingError, match=f"no {FS_SPARK_JAR} in .*make setup"):
        find_jars(str(tmp_path))


def test_submit_args_carry_the_jars_and_delta_conf():
    args = submit_args()
    assert args[0] == "--jars" and "delta-spark_2.13-4.0" in args[1] and FS_SPARK_JAR in args[1]
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in args


def test_spark_submit_jobs_and_the_local_session_run_with_the_same_settings(spark):
    settings = SparkSettings(shuffle_partitions=2, conf={"spark.sql.ansi.enabled": "true"})
    args = submit_args(settings)
    given = dict(a.split("=", 1) for a in args[3::2])
    assert args[2::2] == ["--conf"] * len(given)
    assert given == spark_conf(settings)  # the Delta tuning and log configuration included
    assert given["spark.databricks.delta.snapshotPartitions"] == "2" and given["spark.sql.ansi.enabled"] == "true"
    assert not any(c.isspace() for a in args for c in a)  # `$(fs-spark submit-args)` splits on spaces
    # the test session was built by build_local_session from the same source
    conf = spark.sparkContext.getConf()
    for key, value in spark_conf(SparkSettings(shuffle_partitions=2)).items():
        assert value in conf.get(key), key  # Spark adds its own JVM options to ours


@pytest.mark.slow
def test_a_session_without_delta_is_refused_at_once(tmp_path):
    code = (
        "from pyspark.sql import SparkSession\n"
        "import fs_spark\n"
        "spark = SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false').getOrCreate()\n"
        "spark.sparkContext.setLogLevel('OFF')\n"
        f"fs_spark.FeatureStore({str(tmp_path)!r}, spark=spark)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "DeltaJarsMissingError" in done.stderr and "io.delta.tables.DeltaTable cannot be loaded" in done.stderr
    assert "make setup" in done.stderr


@pytest.mark.slow
def test_a_join_in_a_session_without_the_fs_spark_jar_names_it(tmp_path):
    code = (
        "from datetime import datetime, timezone\n"
        "from pyspark.sql import SparkSession\n"
        "import fs_spark\n"
        "from fs_spark.session import DELTA_CATALOG, DELTA_EXTENSION, FS_SPARK_JAR, find_jars\n"
        "delta = [j for j in find_jars() if not j.endswith(FS_SPARK_JAR)]\n"
        "spark = (SparkSession.builder.master('local[1]').config('spark.ui.enabled', 'false')\n"
        "         .config('spark.jars', ','.join(delta)).config('spark.sql.extensions', DELTA_EXTENSION)\n"
        "         .config('spark.sql.catalog.spark_catalog', DELTA_CATALOG).getOrCreate())\n"
        "spark.sparkContext.setLogLevel('OFF')\n"
        f"store = fs_spark.FeatureStore({str(tmp_path)!r}, spark=spark)\n"
        "store.apply(fs_spark.FeatureTable(name='spend', entity=fs_spark.Entity(name='c', keys={'k': 'long'}),\n"
        "            event_time='ts', features=[fs_spark.Feature(name='amount', dtype='double')]))\n"
        "t = datetime(2024, 1, 1, tzinfo=timezone.utc)\n"
        "store.write('spend', spark.createDataFrame([(1, t, 1.0)], 'k long, ts timestamp, amount double'))\n"
        "store.create_training_set(spark.createDataFrame([(1, t)], 'k long, ts timestamp'), ['spend:amount'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "JvmJarMissingError" in done.stderr and "fs_spark.AsOfMerge cannot be loaded" in done.stderr
    assert "make setup" in done.stderr


def test_settings_are_strict(tmp_path):
    path = tmp_path / "fs.yaml"
    path.write_text("store:\n  rooot: /tmp/x\n")
    with pytest.raises(ConfigError, match="rooot"):
        load_settings(path, env={})
    with pytest.raises(ConfigError, match="shuffle_partitions"):
        load_settings(None, env={"FS_SPARK_SPARK__SHUFFLE_PARTITIONS": "many"})


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "fs.yaml"
    path.write_text("store:\n  root: /from/file\nspark:\n  shuffle_partitions: 3\n")
    settings = load_settings(None, env={"FS_SPARK_CONF": str(path), "FS_SPARK_STORE__ROOT": "/from/env"})
    assert (settings.store.root, settings.spark.shuffle_partitions) == ("/from/env", 3)


def test_the_environment_reaches_nested_sections_and_maps(tmp_path):
    path = tmp_path / "fs.yaml"
    path.write_text("quality:\n  drift:\n    ks: 0.2\nspark:\n  conf: {spark.a: '1'}\n")
    env = {"FS_SPARK_CONF": str(path), "FS_SPARK_QUALITY__DRIFT__PSI": "0.3",
           "FS_SPARK_SPARK__CONF__spark.sql.ansi.enabled": "false", "FS_SPARK_RETENTION__TABLES": '{"clicks_*": 48}'}
    settings = load_settings(None, env=env)
    assert (settings.quality.drift.psi, settings.quality.drift.ks) == (0.3, 0.2)  # the file's ks stays
    assert settings.spark.conf == {"spark.a": "1", "spark.sql.ansi.enabled": "false"}
    assert settings.retention.hours_for("clicks_eu") == 48 and settings.retention.hours_for("orders") == 168
    with pytest.raises(ConfigError, match="no setting 'quality.drift.psii'; the choices there are ks, "):
        load_settings(None, env={"FS_SPARK_QUALITY__DRIFT__PSII": "0.3"})
    with pytest.raises(ConfigError, match="no setting 'qualty'"):
        load_settings(None, env={"FS_SPARK_QUALTY__DRIFT__PSI": "0.3"})


def test_the_shipped_settings_file_is_valid():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    settings = load_settings(os.path.join(root, "conf", "fs_spark.yaml"), env={})
    assert settings.store.root == "./fs_store" and settings.spark.master == "local[2]"
