"""Streaming sources shaped into a feature table's columns: Kafka topics of JSON records, and
folders of JSON files. Delta tables need nothing of their own (`spark.readStream.format("delta")`).

A record that is not valid JSON, or lacks a key, parses to nulls, which validation then refuses
by its rules (a null key breaks `not_null`), so a bad record is quarantined or stops a strict
stream with the rule it broke; it is never dropped silently.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.definitions.model import FeatureTable
from fs_spark.storage.layout import VERSION_COLUMN, data_columns


def record_schema(table: FeatureTable) -> T.StructType:
    """The columns a write supplies (keys, event time, features), as one record's schema."""
    return T.StructType(
        [T.StructField(name, dtype, True) for name, dtype in data_columns(table) if name != VERSION_COLUMN]
    )


def parse_json(frame: DataFrame, table: FeatureTable, column: str | Column = "value") -> DataFrame:
    """`frame`'s JSON text (or bytes, as Kafka's `value`) as the table's columns. Times are read
    as ISO-8601 with a zone ("2024-01-01T10:00:00Z") or as the session's zone when they have none.

    Example:
        >>> events = spark.readStream.format("kafka").option("subscribe", "activity").load()  # doctest: +SKIP
        >>> store.write_stream("customer_activity", parse_json(events, table))               # doctest: +SKIP
    """
    text = (F.col(column) if isinstance(column, str) else column).cast("string")
    parsed = F.from_json(text, record_schema(table), {"mode": "PERMISSIVE"}).alias("record")
    return frame.select(parsed).select("record.*")


def kafka_stream(
    spark: SparkSession,
    bootstrap_servers: str,
    topic: str,
    *,
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    options: dict[str, str] | None = None,
) -> DataFrame:
    """A streaming DataFrame of a Kafka topic (Spark's own Kafka source): key, value, topic,
    partition, offset, timestamp. `options` are further `kafka.*` or source options."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
    )
    if max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    for key, value in (options or {}).items():
        reader = reader.option(key, value)
    return reader.load()


def json_files_stream(
    spark: SparkSession, table: FeatureTable, path: str, max_files_per_trigger: int | None = None
) -> DataFrame:
    """A streaming DataFrame of the JSON-lines files arriving in a folder, as the table's columns."""
    reader = spark.readStream.schema(record_schema(table))
    if max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", str(max_files_per_trigger))
    return reader.json(path)
