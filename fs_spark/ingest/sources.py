"""Streaming sources shaped into a feature table's columns: Kafka topics of JSON records, and
folders of JSON files. Delta tables need nothing of their own (`spark.readStream.format("delta")`).

A record that is not valid JSON, or lacks a key, parses to nulls, which validation then refuses
by its rules (a null key breaks `not_null`); a value present but of the wrong JSON type ("abc"
for a double, "12x" or 2.5 for a long) breaks the rule `json[<type>]` of its column. So a bad
record is quarantined or stops a strict stream with the rule it broke; it is never dropped or
stored as nulls silently.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.definitions.model import FeatureTable
from fs_spark.ingest.conform import PARSE_ERRORS
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
    schema = record_schema(table)
    typed = F.from_json(text, schema, {"mode": "PERMISSIVE"})
    # Each field as its JSON text (Spark's parser keeps any token as text for a string field):
    # present there and null in `typed` is a value of the wrong type.
    as_text = T.StructType([T.StructField(f.name, T.StringType(), True) for f in schema.fields])
    raw = F.from_json(text, as_text, {"mode": "PERMISSIVE"})
    wrong = F.map_filter(
        F.create_map(
            *[part for f in schema.fields for part in (F.lit(f.name), F.when(typed[f.name].isNull(), raw[f.name]))]
        ),
        lambda _, value: value.isNotNull(),
    )
    parsed = F.struct(typed.alias("record"), wrong.alias(PARSE_ERRORS))
    return frame.select(parsed.alias("p")).select("p.record.*", f"p.{PARSE_ERRORS}")


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
    """A streaming DataFrame of the JSON-lines files arriving in a folder, as the table's columns
    (parsed as `parse_json` parses a Kafka record, wrong types included)."""
    reader = spark.readStream
    if max_files_per_trigger is not None:
        reader = reader.option("maxFilesPerTrigger", str(max_files_per_trigger))
    return parse_json(reader.text(path), table)
