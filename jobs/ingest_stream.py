"""spark-submit entry point: stream a Kafka topic, a folder of JSON-lines files or a Delta table
into a feature table, each micro-batch one validated version, exactly once across restarts.

    spark-submit $(fs-spark submit-args) jobs/ingest_stream.py --root ./fs_store \\
        --table customer_activity --kafka 127.0.0.1:9092 --topic activity --trigger "10 seconds"

Kafka records are JSON objects with the table's columns (`fs_spark.ingest.sources.parse_json`).
Killed and started again with the same arguments, it resumes from its checkpoint and commits
no micro-batch twice. `--available-now` processes what the source holds, then stops.
"""

from __future__ import annotations

import argparse
import sys

from fs_spark import FeatureStore, FsSparkError
from fs_spark.ingest.sources import json_files_stream, kafka_stream, parse_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Stream into a feature table.")
    parser.add_argument("--root", required=True, help="store root")
    parser.add_argument("--table", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kafka", metavar="SERVERS", help="Kafka bootstrap servers (with --topic)")
    source.add_argument("--json-dir", help="a folder that JSON-lines files arrive in")
    source.add_argument("--delta", metavar="PATH", help="a Delta table to follow")
    parser.add_argument("--topic", help="the Kafka topic")
    parser.add_argument("--max-per-trigger", type=int, help="Kafka offsets or files per micro-batch")
    parser.add_argument("--name", help="the stream's name (default: the table's)")
    parser.add_argument("--mode", choices=("strict", "quarantine"), default="strict")
    parser.add_argument("--checkpoint", help="default: <root>/_streams/<name>/checkpoint")
    parser.add_argument("--trigger", default="1 minute", help="processing-time interval, e.g. '10 seconds'")
    parser.add_argument("--available-now", action="store_true", help="process what the source holds, then stop")
    parser.add_argument("--online", action="store_true", help="also update the online store after each batch")
    args = parser.parse_args(argv)
    if args.kafka and not args.topic:
        parser.error("--kafka needs --topic")
    store = FeatureStore(args.root)
    try:
        table = store.get_table(args.table)
        spark = store.spark
        if args.kafka:
            frame = parse_json(kafka_stream(spark, args.kafka, args.topic, max_offsets_per_trigger=args.max_per_trigger), table)
        elif args.json_dir:
            frame = json_files_stream(spark, table, args.json_dir, args.max_per_trigger)
        else:
            frame = spark.readStream.format("delta").load(args.delta)
        stream = store.write_stream(
            args.table,
            frame,
            name=args.name,
            mode=args.mode,
            checkpoint=args.checkpoint,
            trigger=args.trigger,
            available_now=args.available_now,
            online=args.online,
        )
        print(f"stream {stream.name} ({stream.id}) into {args.table} started", flush=True)
        stream.await_termination()
    except FsSparkError as exc:
        print(f"stream refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
