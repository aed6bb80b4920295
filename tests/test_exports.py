"""Exports: a table's rows as of a version, or a stored training set, copied out of the store,
recorded in the catalog and the lineage; bad requests refused before anything is written."""

from __future__ import annotations

import io

import pytest

from conftest import activity_rows, activity_table, batch_maker, make_store
from fs_spark import ExportError
from fs_spark.catalog.schema import EXPORTS
from fs_spark.cli import run

pytestmark = pytest.mark.slow  # exports: every format, end to end


@pytest.fixture(scope="module")
def exported(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    store = make_store(spark, folder / "store")
    store.apply(activity_table())
    batch = batch_maker(spark)
    store.write("customer_activity", batch(activity_rows(40)))
    store.write("customer_activity", batch(activity_rows(10, start=40)))
    return store, folder


def _rows(frame, columns):
    return sorted(tuple(r) for r in frame.select(*columns).collect())


@pytest.mark.parametrize("format", ["parquet", "delta", "csv", "json"])
def test_a_version_is_exported_exactly_in_each_format(exported, spark, format):
    store, folder = exported
    path = str(folder / f"v1.{format}")
    made = store.export("customer_activity", path, version=1, features=["spend_7d", "segment"], format=format)
    expected = store.read("customer_activity", version=1, features=["spend_7d", "segment"])
    reader = spark.read.format(format).options(**({"header": "true"} if format == "csv" else {}))
    if format in ("csv", "json"):
        reader = reader.schema(expected.schema)
    assert made.row_count == 40 and made.format == format
    assert _rows(reader.load(path), expected.columns) == _rows(expected, expected.columns)


def test_an_export_is_recorded_and_in_the_lineage(exported):
    store, folder = exported
    path = str(folder / "latest")
    made = store.export("customer_activity", path)
    latest = store.version("customer_activity")
    [row] = [r for r in store.catalog.rows(EXPORTS.name) if r["export_id"] == made.export_id]
    assert (row["source_kind"], row["source_id"], row["table_name"], row["row_count"], row["user"]) == (
        "feature_version", latest.version_id, "customer_activity", 50, "tester")
    assert row["delta_version"] == latest.delta_version and "spend_7d" in row["features"]
    downstream = store.lineage.downstream(latest.version_id)
    assert f"export:{made.export_id}" in downstream.nodes
    assert downstream.nodes[f"export:{made.export_id}"].attrs["path"] == path


def test_an_existing_destination_is_refused_unless_overwritten(exported):
    store, folder = exported
    path = str(folder / "twice")
    store.export("customer_activity", path, version=1)
    before = len(store.catalog.rows(EXPORTS.name))
    with pytest.raises(ExportError, match="twice.*already exists; pass mode='overwrite'"):
        store.export("customer_activity", path, version=2)
    assert len(store.catalog.rows(EXPORTS.name)) == before  # a refused export is not recorded
    assert store.export("customer_activity", path, version=2, mode="overwrite").row_count == 50


def test_bad_export_requests_are_refused_before_reading(exported):
    store, folder = exported
    with pytest.raises(ExportError, match="format 'xlsx' is not one of parquet, delta, csv, json"):
        store.export("customer_activity", str(folder / "x"), format="xlsx")
    with pytest.raises(ExportError, match="mode 'append'"):
        store.export("customer_activity", str(folder / "x"), mode="append")
    assert not (folder / "x").exists()


def test_a_training_set_is_exported_with_its_rows(exported, spark):
    store, folder = exported
    entities = spark.createDataFrame([(1, activity_rows(2)[1][1])], "customer_id long, event_ts timestamp")
    built = store.create_training_set(entities, ["customer_activity:spend_7d"])
    path = str(folder / "training_set")
    made = store.export_training_set(built.id, path)
    assert made.source == f"training_set:{built.id}" and made.row_count == 1
    assert spark.read.parquet(path).first()["spend_7d"] == built.load_df().first()["spend_7d"]


def test_cli_exports_a_version(exported):
    store, folder = exported
    out = io.StringIO()
    assert run(["--root", store.root, "--user", "tester", "export", "customer_activity", str(folder / "cli"),
                "--version", "1", "--features", "visits", "--format", "json"], out=out) == 0
    assert "40 rows of feature_version:" in out.getvalue()


def test_an_export_emits_openlineage_events_from_the_version_read_to_the_destination(spark, tmp_path):
    import json

    from fs_spark import FeatureStore
    from fs_spark.config import LineageSettings, Settings, StoreSettings

    events = tmp_path / "openlineage.jsonl"
    lineage = LineageSettings(openlineage={"transport": {"type": "file", "log_file_path": str(events), "append": True}})
    store = FeatureStore(spark=spark, settings=Settings(store=StoreSettings(root=str(tmp_path / "store"), user="tester"),
                                                        lineage=lineage))
    store.apply(activity_table())
    version = store.write("customer_activity", batch_maker(spark)(activity_rows(5)))
    made = store.export("customer_activity", str(tmp_path / "out"))
    exported = [e for e in map(json.loads, events.read_text().splitlines()) if e["job"]["name"].endswith("export.customer_activity")]
    assert [e["eventType"] for e in exported] == ["START", "COMPLETE"]
    [read] = exported[-1]["inputs"]
    assert read["name"].endswith(version.storage_path.split("://")[-1])
    assert read["facets"]["version"]["datasetVersion"] == str(version.delta_version)
    assert exported[-1]["outputs"][0]["name"] == made.path
    tags = {t["key"]: t["value"] for t in exported[-1]["run"]["facets"]["tags"]["tags"]}
    assert tags["fs_spark.source"] == f"feature_version:{version.version_id}"


def test_the_commit_read_from_the_log_file_matches_delta_history(exported, spark):
    from delta.tables import DeltaTable

    from fs_spark.storage.delta_log import latest_commit

    store, _ = exported
    path = store.version("customer_activity").storage_path
    history = DeltaTable.forPath(spark, path).history(1).first()
    commit = latest_commit(spark, path)
    assert (commit.version, commit.timestamp, commit.user_metadata) == (
        history.version, history.timestamp.astimezone(commit.timestamp.tzinfo), history.userMetadata)
