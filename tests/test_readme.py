"""The README runs as written: every bash and Python block from the quickstart on, in order, in a
folder laid out like a fresh clone, so the README cannot drift from the code.

Bash blocks of `fs-spark` commands only run each command line through the command's own entry
point (`fs_spark.cli.run`) in this process, on the shared Spark session, as the installed
`fs-spark` would (its process start is tested in tests/test_cli.py); other bash blocks run in bash
with the project's virtual environment. Python blocks run in this process, one namespace for all
of them, as a notebook would. A block right after a line
`<!-- readme-test: skip (why) -->` is left out; each such block says which test runs it.
"""

from __future__ import annotations

import os
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fs_spark.cli import run

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>bash|python)\n(?P<code>.*?)\n```", re.S)
SKIP = "<!-- readme-test: skip"
QUICKSTART_RECIPE = "$(PY) jobs/quickstart.py --root ./fs_store"


def readme_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text()
    return [(m["lang"], m["code"]) for m in BLOCK.finditer(text) if not m["before"].startswith(SKIP)]


JOB = re.compile(r"^spark-submit \$\(fs-spark submit-args\) (?P<job>jobs/\w+\.py)(?P<args>.*)$")


def job_lines(code: str) -> list[tuple[str, list[str]]] | None:
    """The job and arguments of each `spark-submit $(fs-spark submit-args) jobs/<job>.py ...`
    line of a bash block, or None when the block holds anything else. Such a job runs through
    its own `main` in this process, on the shared session, as spark-submit runs it on its own
    (tests/test_cli_and_jobs.py runs jobs under spark-submit)."""
    joined = code.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    found = [JOB.match(line) for line in lines]
    if not lines or not all(found):
        return None
    return [(m["job"], shlex.split(m["args"], comments=True)) for m in found if m]


def run_job(path: str, args: list[str]) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(args)


def command_lines(code: str) -> list[list[str]] | None:
    """The arguments of each `fs-spark` command of a bash block (continuations joined, comments
    dropped), or None when the block holds anything else."""
    joined = code.replace("\\\n", " ")
    lines = [shlex.split(line, comments=True) for line in joined.splitlines()]
    lines = [words for words in lines if words]
    if not lines or any(words[0] != "fs-spark" for words in lines):
        return None
    return [words[1:] for words in lines]


def test_the_readme_blocks_are_found_and_the_skips_say_why():
    blocks = readme_blocks()
    assert [lang for lang, _ in blocks[:3]] == ["bash", "bash", "python"]
    assert blocks[0][1].startswith("make quickstart")
    skips = re.findall(r"<!-- readme-test: skip \((.+?)\) -->\n```", (ROOT / "README.md").read_text())
    assert skips and all(len(why) > 10 for why in skips)
    assert QUICKSTART_RECIPE in (ROOT / "Makefile").read_text()  # what `make quickstart` stands for below


@pytest.mark.slow
def test_every_readme_block_runs_in_order(spark, tmp_path, monkeypatch, capsys):
    for name in ("conf", "data", "jobs", ".venv", ".jars"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    # `make quickstart` is the Makefile's recipe, without the set-up it depends on (done already)
    prelude = f"set -euo pipefail\nmake() {{ {sys.executable} jobs/quickstart.py --root ./fs_store; }}\n"
    namespace: dict = {"__name__": "readme"}
    for index, (lang, code) in enumerate(readme_blocks()):
        if lang == "python":
            exec(compile(code, f"README block {index}", "exec"), namespace)
            continue
        jobs = job_lines(code)
        if jobs is not None:
            for job, args in jobs:
                assert run_job(job, args) == 0, f"README block {index}: {job} {' '.join(args)}\n{capsys.readouterr()}"
            continue
        commands = command_lines(code)
        if commands is not None:
            out = io.StringIO()
            for argv in commands:
                assert run(argv, out=out) == 0, f"README block {index}: fs-spark {' '.join(argv)}\n{out.getvalue()[-3000:]}"
            stdout = out.getvalue()
        else:
            done = subprocess.run(["bash", "-c", prelude + code], capture_output=True, text=True, env=env, timeout=900)
            assert done.returncode == 0, f"README block {index} failed:\n{code}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            stdout = done.stdout
        if index == 1:  # the command-line tour: three versions, the third from the sample file
            versions = [line for line in stdout.splitlines() if line.startswith("v1 #")]
            assert [line.split()[1] for line in versions] == ["#1", "#2", "#3"] and "rows=50" in versions[2]
    store = namespace["store"]
    assert [v.version_number for v in store.versions("customer_activity")] == [1, 2, 3, 4]
    assert store.versions("customer_activity")[-1].restores_version == 2  # the rollback
    assert store.read("customer_profile").count() == 3
    assert namespace["training_set"].manifest.row_count == 200
    assert (tmp_path / "lineage.html").is_file() and (tmp_path / "exports" / "activity").is_dir()
    # online serving: both tables materialized, the feature service applied from YAML and served
    assert namespace["vector"] == {"customer_id": [2], "tenure_days": [12], "segment": ["new"]}
    assert {r["table_name"] for r in store.catalog.rows("materializations")} == {"customer_profile", "customer_activity"}
    assert store.feature_service("churn_inputs").lookups[0].default_values == {"orders_7d": 0}
    # a training set and a table read on a laptop, without Spark
    assert len(namespace["frame"]) == namespace["training_set"].manifest.row_count
    assert len(namespace["spend"]) == store.read("customer_activity", version=2).count()
    # the notebook the README points to, run next on the README's store (its quarantine and
    # rollback included), as a reader following the README would
    import runpy

    from fs_spark.notebook import local_dbutils

    capsys.readouterr()
    widgets = {"store_root": "./fs_store", "definitions": "conf/features", "customers": "20"}
    runpy.run_path(str(ROOT / "notebooks" / "feature_quickstart.py"),
                   init_globals={"spark": spark, "dbutils": local_dbutils(widgets)})
    said = capsys.readouterr().out
    assert "as of version 3: refused, it holds rows of a quarantined version" in said
    assert "as of version 4:" in said and "as of version 6:" in said
