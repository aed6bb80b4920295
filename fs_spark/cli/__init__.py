"""`fs-spark`: the command line over FeatureStore (`fs-spark --help` lists the commands).

fs-spark apply conf/features
fs-spark ingest customer_activity data/customer_activity.parquet --mode quarantine
fs-spark versions customer_activity
fs-spark read customer_activity --version 1
"""

from fs_spark.cli.app import cli, main, run

__all__ = ["cli", "main", "run"]
