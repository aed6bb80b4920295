"""Dependencies inside fs_spark point one way: from the facade and the command line down to the
foundations (docs/architecture.md). A module imports, when it loads, only modules of its own
layer or below; imports for type hints alone (under TYPE_CHECKING) are free."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fs_spark"

# Lowest first. A module's layer is that of its longest listed prefix.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "names", "ids", "version", "config", "provenance", "session", "spark_jobs", "digest", "observability.metrics",
     "digest_arrow", "progress", "notebook"),
    ("definitions.types", "definitions.model", "definitions.compatibility", "definitions.yaml_io", "online",
     "discovery", "definitions.inference"),
    ("storage.paths", "storage.s3", "storage.s3_lease", "storage.fence", "locks", "replication.objects",
     "replication.delta_copy", "replication.regions", "replication.replicator", "replication.rejoin", "storage.delta_log",
     "storage.checkpoints", "storage.layout", "storage.optimize", "catalog",
     "storage.orphans", "storage.reader", "inputs", "online.factory", "local.delta"),
    ("governance.policies", "governance.access", "store_part", "definitions.registry", "versions",
     "governance.deprecation", "online.state"),
    ("ingest", "training", "online.materialize", "online.reader", "online.feature_service", "integrations", "lineage.graph", "lineage.openlineage", "lineage.render", "local"),
    ("storage.retention", "replication.service", "governance.exports", "tracking", "lineage", "quality", "online.serving", "online.server", "scoring", "observability.health", "observability.watch", "ui"),
    ("store",),
    ("__init__", "cli", "local.open"),
]


def layer_of(module: str) -> int:
    best, found = -1, None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, found = len(name), index
    assert found is not None, f"fs_spark.{module} is in no layer of docs/architecture.md"
    return found


def runtime_imports(path: Path) -> list[str]:
    """fs_spark modules `path` imports when it loads (not under `if TYPE_CHECKING:`, not in functions)."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
            if isinstance(inner, ast.ImportFrom) and inner.module and inner.module.startswith("fs_spark"):
                base = inner.module.removeprefix("fs_spark").lstrip(".")
                if not base:  # `from fs_spark import digest`
                    found += [alias.name for alias in inner.names]
                else:
                    found.append(base)
    return found


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        out[name.removesuffix(".__init__") or "__init__"] = path
    return out


def test_every_module_imports_only_its_own_layer_or_below():
    upward = []
    for name, path in sorted(modules().items()):
        for target in runtime_imports(path):
            if layer_of(target) > layer_of(name):
                upward.append(f"fs_spark.{name} (layer {layer_of(name)}) imports fs_spark.{target} (layer {layer_of(target)})")
    assert upward == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check itself can fail: a foundation importing the facade is reported."""
    bad = tmp_path / "errors.py"
    bad.write_text("from fs_spark.store import FeatureStore\n")
    assert runtime_imports(bad) == ["store"] and layer_of("store") > layer_of("errors")
