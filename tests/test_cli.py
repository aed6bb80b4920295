"""The command line as a newcomer meets it: help by section, --version, "did you mean", one-line
failures, times without a zone, and answers about the catalog that start no Spark at all."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from fs_spark import FeatureNotFoundError, TableNotFoundError, VersionNotFoundError
from fs_spark.cli import main, run
from fs_spark.version import __version__

from conftest import activity_rows

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def cli(*argv: str) -> str:
    out = io.StringIO()
    assert run(list(argv), out=out) == 0
    return out.getvalue()


def test_help_lists_every_command_by_section_and_every_argument_has_help(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    sections = ["Definitions:", "Data:", "Online:", "Training sets:", "Experiments and lineage:", "Governance and quality:",
                "Set-up:"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    from fs_spark.cli.app import cli as group

    for name, command in group.commands.items():
        assert command.help, name
        for param in command.params:
            assert param.help or param.name == "help", f"{name} {param.name}"
    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"fs-spark {__version__}"


def test_a_mistyped_command_is_answered_with_the_closest_one(capsys):
    assert main(["verions", "x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "fs-spark: no command 'verions'. Did you mean 'versions'? `fs-spark --help` lists them.")


@pytest.fixture
def written(store, activity):
    store.write("customer_activity", activity(activity_rows(10)))
    store.write("customer_activity", activity(activity_rows(5, start=10)))
    return store


def test_failures_are_one_line_and_debug_adds_the_trace(written, tmp_path, capsys):
    root = written.root
    assert main(["--root", root, "ingest", "customer_activity", str(tmp_path / "missing.parquet")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("fs-spark: InputNotFoundError: no input at ")
    assert main(["--root", root, "read", "customer_activty"]) == 2
    assert "Did you mean 'customer_activity'?" in capsys.readouterr().err
    assert main(["--root", root, "read", "customer_activity", "--features", "spend_7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FeatureNotFoundError" in err and "Did you mean 'spend_7d'?" in err
    assert main(["--debug", "--root", root, "read", "customer_activity", "--features", "spend_7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.strip().splitlines()[-1].startswith("fs-spark: FeatureNotFoundError")
    with pytest.raises(FeatureNotFoundError):  # run() hands the error itself to a caller
        run(["--root", root, "read", "customer_activity", "--features", "spend_7"], out=io.StringIO())


def test_times_without_a_zone_are_read_in_the_given_zone(written):
    second = written.versions("customer_activity")[1].committed_at
    naive = (second + timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    in_utc = cli("--root", written.root, "read", "customer_activity", "--as-of", naive, "--limit", "100")
    with_zone = cli("--root", written.root, "read", "customer_activity", "--as-of", naive + "+00:00", "--limit", "100")
    assert in_utc == with_zone and len(in_utc.splitlines()) == 16
    with pytest.raises(VersionNotFoundError, match=r"as of .*\+00:00"):  # nine hours earlier: before the first write
        run(["--root", written.root, "read", "customer_activity", "--as-of", naive, "--timezone", "Asia/Tokyo"],
            out=io.StringIO())


def test_a_deprecation_must_name_a_replacement_that_exists(written):
    args = ["--root", written.root, "deprecate", "customer_activity", "--feature", "segment", "--announce",
            "2030-01-01", "--end", "2030-06-01", "--reason", "moved"]
    with pytest.raises(TableNotFoundError, match="customer_segments"):
        run([*args, "--replacement", "customer_segments:segment"], out=io.StringIO())
    with pytest.raises(FeatureNotFoundError, match="Did you mean 'segment'"):
        run([*args, "--replacement", "customer_activity:segmnt"], out=io.StringIO())
    out = cli(*args, "--replacement", "customer_activity:spend_7d")
    assert out.strip() == ("customer_activity.segment: deprecated from 2030-01-01T00:00:00+00:00, "
                           "retired from 2030-06-01T00:00:00+00:00")
    assert [d.replacement for d in written.deprecations()] == ["customer_activity:spend_7d"]


@pytest.mark.slow
def test_questions_about_the_catalog_start_no_spark(written, spark):
    """In a process where Spark cannot start (no jars), metadata commands still answer, right."""
    labels = spark.createDataFrame([(1, T0 + timedelta(days=30))], "customer_id long, event_ts timestamp")
    built = written.create_training_set(labels, ["customer_activity:spend_7d"])
    versions = written.versions("customer_activity")
    env = {**os.environ, "FS_SPARK_SPARK__JARS_DIR": os.devnull}

    def answer(*argv: str, status: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "fs_spark.cli", "--root", written.root, *argv],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == status, done.stderr
        return done

    listed = [json.loads(line) for line in answer("versions", "customer_activity", "--json").stdout.splitlines()]
    assert [(v["version_id"], v["row_count"]) for v in listed] == [(v.version_id, v.row_count) for v in versions]
    assert answer("tables").stdout.split() == ["customer_activity"]
    assert answer("training-sets").stdout.split()[0] == built.id
    assert built.id[-8:] in answer("lineage", versions[0].version_id).stdout
    assert answer("recall", "customer_activity", "1").stdout.startswith("customer_activity #1")
    assert "2 ok" in " ".join(answer("quality").stdout.split())
    typo = answer("versions", "customer_activty", status=2)
    assert "Did you mean 'customer_activity'?" in typo.stderr and "DeltaJarsMissing" not in typo.stderr
    # refusals of commands that read data are decided from the catalog and the path, before Spark
    refusals = {
        ("read", "customer_activty"): "TableNotFoundError",
        ("read", "customer_activity", "--features", "spend_7"): "FeatureNotFoundError",
        ("read", "customer_activity", "--version", "9"): "VersionNotFoundError",
        ("read", "customer_activity", "--as-of", "2000-01-01T00:00:00Z"): "VersionNotFoundError",
        ("ingest", "customer_activity", "/nowhere/batch.csv"): "InputNotFoundError",
        ("ingest", "customer_activity", __file__): "InputFormatError",
    }
    for argv, error in refusals.items():
        said = answer(*argv, status=2).stderr
        assert error in said and "DeltaJarsMissing" not in said, (argv, said)
    assert "--format" in answer("ingest", "customer_activity", __file__, status=2).stderr
    # the same process refuses, as it should, a command that needs Spark
    assert "DeltaJarsMissingError" in answer("read", "customer_activity", status=2).stderr


@pytest.mark.slow
def test_ctrl_c_says_one_line_and_exits_130(written, tmp_path):
    """Interrupted in the middle of a Spark job (after its first plain progress line): one line
    on stderr, no trace of py4j's or Spark's, exit status 130, and no version half-written."""
    import signal
    import time

    big = tmp_path / "big.csv"
    with big.open("w") as out:
        out.write("customer_id,event_ts,spend_7d,min_7d,max_7d,visits,segment\n")
        for i in range(400_000):
            out.write(f"{i},2024-01-0{1 + i % 9}T00:00:00Z,1.0,1.0,2.0,{i % 100},new\n")
    process = subprocess.Popen([sys.executable, "-m", "fs_spark.cli", "--root", written.root, "ingest",
                                "customer_activity", str(big)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    seen = []
    while not any(line.startswith("fs_spark: ") for line in seen):  # a step is under way
        assert time.monotonic() < deadline and process.poll() is None, seen
        seen.append(process.stderr.readline())
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130, rest
    said = [line for line in rest.splitlines() if line.strip() and not line.startswith("fs_spark: ")]
    assert len(said) == 1 and said[0].startswith("fs-spark: interrupted"), rest
    assert "Traceback" not in rest and "Py4J" not in rest
    assert [v.version_number for v in written.versions("customer_activity")] == [1, 2]


def test_ingesting_the_same_rows_again_says_in_one_line_that_nothing_was_written(store, activity, tmp_path, capsys):
    path = tmp_path / "batch.parquet"
    activity(activity_rows(6)).write.parquet(str(path))
    first = cli("--root", store.root, "ingest", "customer_activity", str(path))  # the format from the extension
    assert "version 1" in first and "6 rows written" in first
    again = cli("--root", store.root, "ingest", "customer_activity", str(path))
    version = store.versions("customer_activity")[0]
    assert again.strip() == (f"customer_activity: nothing written: these rows are already version 1 "
                             f"({version.version_id}), 6 rows")
    assert "DuplicateBatchWarning" not in capsys.readouterr().err
    assert len(store.versions("customer_activity")) == 1
    csv = tmp_path / "batch.csv"
    csv.write_text("customer_id,event_ts,spend_7d,min_7d,max_7d,visits,segment\n"
                   "100,2024-03-01T00:00:00Z,1.0,1.0,2.0,3,new\n")
    assert "version 2" in cli("--root", store.root, "ingest", "customer_activity", str(csv))  # no --format csv
