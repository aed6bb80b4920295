"""Quickstart: define a table, ingest two batches (one with bad rows), read back, time travel.

python jobs/quickstart.py --root ./fs_store          (or: make quickstart)
spark-submit jobs/quickstart.py --root ./fs_store
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fs_spark import FeatureStore, SourceInfo, ValidationError, load_definitions

CONF = Path(__file__).resolve().parent.parent / "conf" / "features"
SCHEMA = (
    "customer_id long, event_ts timestamp, spend_7d double, orders_7d int, "
    "min_order_7d double, max_order_7d double, segment string"
)


def make_batch(spark, day: datetime, customers: int, seed: int, bad_rows: int = 0):
    rng = random.Random(seed)
    rows = []
    for customer in range(customers):
        low = round(rng.uniform(1, 20), 2)
        high = round(low + rng.uniform(0, 80), 2)
        orders = rng.randint(1, 9)
        rows.append(
            (
                customer,
                day + timedelta(minutes=customer),
                round(orders * (low + high) / 2, 2),
                orders,
                low,
                high,
                rng.choice(["new", "loyal", "lapsed"]),
            )
        )
    for i in range(bad_rows):  # negative spend and an unknown segment
        rows[i] = (rows[i][0], rows[i][1], -1.0, rows[i][3], rows[i][4], rows[i][5], "vip")
    return spark.createDataFrame(rows, SCHEMA)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="./fs_store")
    parser.add_argument("--customers", type=int, default=1000)
    args = parser.parse_args(argv)

    store = FeatureStore(args.root)
    for item in store.apply(*load_definitions(CONF)):
        print("apply:", item)
    spark = store.spark
    day1 = datetime(2024, 5, 1, tzinfo=UTC)
    first = store.write(
        "customer_activity",
        make_batch(spark, day1, args.customers, seed=1),
        source=SourceInfo(description="orders 2024-05-01", start=day1, end=day1 + timedelta(days=1)),
    )
    print(f"version {first.version_number}: {first.row_count} rows (delta commit {first.delta_version})")

    day2 = day1 + timedelta(days=1)
    second_batch = make_batch(spark, day2, args.customers, seed=2, bad_rows=3)
    try:
        store.write("customer_activity", second_batch)
    except ValidationError as refused:
        print(f"strict mode refused the batch:\n{refused}")
    second = store.write("customer_activity", second_batch, mode="quarantine")
    print(f"version {second.version_number}: {second.row_count} rows, {second.quarantined_row_count} quarantined")

    print("latest:", store.read("customer_activity").count(), "rows")
    print("as of version 1:", store.read("customer_activity", version=1).count(), "rows")
    print(
        "as of",
        first.committed_at.isoformat(),
        ":",
        store.read("customer_activity", as_of=first.committed_at).count(),
        "rows",
    )
    store.read("customer_activity", version=second.version_id).where("customer_id < 3").orderBy(
        "customer_id", "event_ts"
    ).show(truncate=False)
    for v in store.versions("customer_activity"):
        print(
            f"#{v.version_number} {v.version_id} delta={v.delta_version} rows={v.row_count} "
            f"quarantined={v.quarantined_row_count} source={v.source_description!r}"
        )


if __name__ == "__main__":
    main()
