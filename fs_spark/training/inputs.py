"""Reading the entity rows a job or the command line is given: a Delta or Parquet path, a CSV or
JSON file, or a table name in the session's catalog."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from fs_spark.session import hadoop_conf, jvm

ENTITY_FORMATS = ("auto", "delta", "parquet", "csv", "json", "table")


def read_entities(spark: SparkSession, source: str, fmt: str = "auto") -> DataFrame:
    """`auto`: a folder with `_delta_log` is Delta, another path is Parquet, a bare name a table."""
    if fmt == "auto":
        if "/" not in source and "." not in source:
            fmt = "table"
        else:
            has_log = jvm(spark).org.apache.hadoop.fs.Path(f"{source.rstrip('/')}/_delta_log")
            fs = has_log.getFileSystem(hadoop_conf(spark))
            fmt = "delta" if fs.exists(has_log) else "parquet"
    if fmt == "table":
        return spark.table(source)
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    return reader.load(source)
