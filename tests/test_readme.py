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
