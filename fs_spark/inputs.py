"""What users hand fs_spark, made into Spark DataFrames without loss: files (Delta, Parquet, CSV,
JSON, a table name), pandas DataFrames and Arrow tables.

pandas writes timestamps with nanoseconds, which Spark cannot hold (it keeps microseconds) and
which Spark 4 refuses to read from Parquet at all. Such columns are accepted when every value is
a whole microsecond, and refused, naming the column and an example, when digits would be lost.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fs_spark.errors import InputFormatError, InputNotFoundError, TimestampPrecisionError
from fs_spark.session import hadoop_conf, jvm
from fs_spark.storage.paths import local_path

FILE_FORMATS = ("parquet", "csv", "json", "delta")
_EXTENSIONS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}
ENTITY_FORMATS = ("auto", *FILE_FORMATS, "table")
# Spark reads Parquet TIMESTAMP(NANOS) columns as their raw int64 under this setting.
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"


def _exists(spark: SparkSession, path: str) -> bool:
    local = local_path(path)
    if local is not None:
        return os.path.exists(local)
    hadoop_path = jvm(spark).org.apache.hadoop.fs.Path(path)
    return bool(hadoop_path.getFileSystem(hadoop_conf(spark)).exists(hadoop_path))


def _parquet_nanos(path: str) -> dict[str, bool]:
    """The top-level INT64 nanosecond timestamp columns of a local Parquet file or folder (its
    first file), each with whether it is an instant. INT96, Spark's own legacy timestamps, are
    not among them: Spark reads those."""
    local = local_path(path)
    if local is None:
        return {}
    files = [local] if os.path.isfile(local) else sorted(_data_files(local))
    if not files:
        return {}
    schema = pq.ParquetFile(files[0]).schema
    found = {}
    for index in range(len(schema)):
        column = schema.column(index)
        logical = json.loads(column.logical_type.to_json())
        if column.physical_type == "INT64" and "." not in column.path and logical.get("timeUnit") == "nanoseconds":
            found[column.name] = bool(logical.get("isAdjustedToUTC"))
    return found


def _data_files(folder: str) -> list[str]:
    """The Parquet files under a folder, as Spark sees them (names starting with _ or . are not data)."""
    found = []
    for parent, folders, names in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(("_", "."))]
        found += [os.path.join(parent, n) for n in names if n.endswith(".parquet") and not n.startswith(("_", "."))]
    return found


def _micros_from_nanos(df: DataFrame, nanos: dict[str, bool], source: str) -> DataFrame:
    """Turn int64 nanosecond columns into timestamps, after checking in one job that no value
    has digits below the microsecond."""
    checks = [F.min(F.when(F.col(c) % 1000 != 0, F.col(c))).alias(c) for c in nanos]
    lossy = df.agg(*checks).first()
    for column in nanos:
        if lossy is not None and lossy[column] is not None:
            raise TimestampPrecisionError(column, str(lossy[column]), source)
    for column, instant in nanos.items():
        micros = F.expr(f"`{column}` div 1000")
        if instant:
            converted = F.timestamp_micros(micros)
        else:  # wall-clock time: add to the epoch's wall clock, whatever the session's zone
            converted = F.expr(f"timestampadd(MICROSECOND, `{column}` div 1000, timestamp_ntz'1970-01-01 00:00:00')")
        df = df.withColumn(column, converted)
    return df


def input_format(path: str, given: str = "auto") -> str:
    """The format of an input: `given`, or with "auto", by its name: a folder with `_delta_log`
    is Delta, a file (or a folder's data files) by its extension. Refused, naming the `--format`
    to pass, when unknown; a missing local path is `InputNotFoundError`. Asks no Spark, so these
    refusals answer at once."""
    local = local_path(path)
    if local is not None and not os.path.exists(local):
        raise InputNotFoundError(path)
    if given != "auto":
        return given
    if local is None:  # an object store: by the name alone
        suffix = os.path.splitext(path.rstrip("/"))[1].lower()
        return _EXTENSIONS.get(suffix, "parquet")
    if os.path.isdir(local):
        if os.path.isdir(os.path.join(local, "_delta_log")):
            return "delta"
        kinds = {
            _EXTENSIONS.get(os.path.splitext(name)[1].lower())
            for parent, folders, names in os.walk(local)
            for name in names
            if not name.startswith(("_", "."))
        } - {None}
        if len(kinds) == 1:
            return kinds.pop()  # type: ignore[return-value]
        found = sorted(k for k in kinds if k) or ["none"]
        raise InputFormatError(path, f"its files are of formats {found}")
    suffix = os.path.splitext(local)[1].lower()
    if suffix not in _EXTENSIONS:
        raise InputFormatError(path, f"its extension {suffix or '(none)'!r} names no format")
    return _EXTENSIONS[suffix]


def read_file(spark: SparkSession, path: str, fmt: str = "parquet") -> DataFrame:
    """A file or folder as a DataFrame; a missing path is `InputNotFoundError`, not a Spark trace."""
    if fmt not in FILE_FORMATS:
        raise ValueError(f"unknown input format {fmt!r}; use one of {FILE_FORMATS}")
    if not _exists(spark, path):
        raise InputNotFoundError(path)
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    nanos = _parquet_nanos(path) if fmt == "parquet" else {}
    if not nanos:
        return reader.load(path)
    spark.conf.set(NANOS_AS_LONG, "true")  # read at plan time and when the job runs: left on
    return _micros_from_nanos(reader.load(path), nanos, path)


def read_entities(spark: SparkSession, source: str, fmt: str = "auto") -> DataFrame:
    """`auto`: a folder with `_delta_log` is Delta, another path is Parquet, a bare name a table."""
    if fmt == "table" or (fmt == "auto" and "/" not in source and "." not in source):
        return spark.table(source)
    if fmt == "auto":
        fmt = "delta" if _exists(spark, f"{source.rstrip('/')}/_delta_log") else "parquet"
    return read_file(spark, source, fmt)


def _arrow_micros(table: pa.Table, source: str) -> pa.Table:
    """Arrow timestamps in microseconds, refused where that would drop digits."""
    for index, field in enumerate(table.schema):
        if not pa.types.is_timestamp(field.type) or field.type.unit != "ns":
            continue
        column = table.column(index)
        raw = pc.cast(column, pa.int64())
        lossy = pc.filter(raw, pc.not_equal(pc.multiply(pc.divide(raw, 1000), 1000), raw))  # integer division
        if len(lossy):
            raise TimestampPrecisionError(field.name, str(lossy[0].as_py()), source)
        wanted = pa.timestamp("us", tz=field.type.tz)
        table = table.set_column(index, field.with_type(wanted), pc.cast(column, wanted))
    return table


def _spark_type(arrow: pa.DataType) -> T.DataType:
    """Spark's type for an Arrow one; a timestamp without a zone stays zone-less (timestamp_ntz),
    so the rules about zone-less times apply to it as to any other."""
    from pyspark.sql.pandas.types import from_arrow_type

    if pa.types.is_timestamp(arrow) and arrow.tz is None:
        return T.TimestampNTZType()
    return from_arrow_type(arrow)


def as_spark_frame(spark: SparkSession, frame: Any, what: str = "the input") -> DataFrame:
    """A Spark DataFrame as it is, or a pandas DataFrame or Arrow table made into one through
    Arrow (types kept, nanoseconds checked)."""
    if isinstance(frame, DataFrame):
        return frame
    if isinstance(frame, pa.RecordBatch):
        frame = pa.Table.from_batches([frame])
    if not isinstance(frame, pa.Table):
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"{what} must be a Spark DataFrame, a pandas DataFrame or an Arrow table, not {type(frame).__name__}"
            )
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    table = _arrow_micros(frame, what)
    schema = T.StructType([T.StructField(f.name, _spark_type(f.type), f.nullable) for f in table.schema])
    return spark.createDataFrame(table, schema=schema)
