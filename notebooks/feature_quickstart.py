# Databricks notebook source
# MAGIC %md
# MAGIC # fs_spark: define, ingest and time-travel features
# MAGIC Applies the definitions in `conf/features`, ingests one day of activity, has a bad batch
# MAGIC quarantined, and reads the table as of each version. Runs in Databricks (with fs_spark
# MAGIC installed and the Delta jars on the cluster) and as plain Python with a local session.

# COMMAND ----------

try:
    dbutils  # noqa: B018 (defined by Databricks)
except NameError:
    from fs_spark.notebook import local_dbutils

    dbutils = local_dbutils()
try:
    spark  # noqa: B018 (defined by Databricks)
except NameError:
    from fs_spark import get_session

    spark = get_session()

dbutils.widgets.text("store_root", "./fs_store", "Store root")
dbutils.widgets.text("definitions", "conf/features", "Definitions (YAML file or folder)")
dbutils.widgets.text("customers", "100", "Customers per batch")

# COMMAND ----------

import random
from datetime import datetime, timedelta, timezone

from fs_spark import FeatureStore, SourceInfo, load_definitions

store = FeatureStore(dbutils.widgets.get("store_root"), spark=spark)
for item in store.apply(*load_definitions(dbutils.widgets.get("definitions"))):
    print(item)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Ingest a day of activity

# COMMAND ----------

customers = int(dbutils.widgets.get("customers"))
day = datetime(2024, 6, 1, tzinfo=timezone.utc)
rng = random.Random(7)
rows = []
for customer in range(customers):
    low = round(rng.uniform(1, 20), 2)
    high = round(low + rng.uniform(0, 50), 2)
    orders = rng.randint(1, 5)
    rows.append((customer, day + timedelta(minutes=customer), orders * low, orders, low, high, "loyal"))
schema = ("customer_id long, event_ts timestamp, spend_7d double, orders_7d int, min_order_7d double, "
          "max_order_7d double, segment string")
first = store.write("customer_activity", spark.createDataFrame(rows, schema),
                    source=SourceInfo(description="notebook batch", start=day, end=day + timedelta(days=1)))
print(f"version {first.version_number}: {first.row_count} rows")

# COMMAND ----------

# MAGIC %md
# MAGIC ## A batch with bad rows goes to quarantine

# COMMAND ----------

bad_rows = [(c, day + timedelta(days=1, minutes=c), -5.0 if c < 2 else 1.0, 1, 1.0, 2.0, "loyal") for c in range(customers)]
second = store.write("customer_activity", spark.createDataFrame(bad_rows, schema), mode="quarantine")
print(f"version {second.version_number}: {second.row_count} rows, {second.quarantined_row_count} quarantined")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Every version, exactly as it was
# MAGIC A version that holds rows of a quarantined version (a store where one was quarantined, and not
# MAGIC rolled back past) is refused until it is released: the loop says so and goes on.

# COMMAND ----------

from fs_spark.errors import VersionQuarantinedError

for version in store.versions("customer_activity"):
    try:
        rows_then = store.read("customer_activity", version=version.version_id).count()
    except VersionQuarantinedError:
        print(f"as of version {version.version_number}: refused, it holds rows of a quarantined version")
        continue
    print(f"as of version {version.version_number}: {rows_then} rows")
