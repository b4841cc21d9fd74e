"""The layering of the package: evaluation and data never import the jobs that use them."""

import ast
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "tfrec"


def _runtime_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path` outside `if TYPE_CHECKING:` blocks, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    type_checking = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _offenders(layer: str, forbidden: str) -> list[str]:
    modules = sorted((ROOT / layer).rglob("*.py"))
    assert modules, f"no modules under tfrec/{layer}"
    return [
        f"{m.relative_to(ROOT.parent)}:{line} imports {name}"
        for m in modules
        for line, name in _runtime_imports(m)
        if name == forbidden or name.startswith(forbidden + ".")
    ]


@pytest.mark.parametrize("layer", ["evaluation", "data"])
def test_lower_layers_never_import_jobs(layer):
    assert _offenders(layer, "tfrec.jobs") == []


def test_the_import_scan_sees_imports_of_every_form(tmp_path, monkeypatch):
    # The scan itself: absolute, from-, relative and function-local imports count; TYPE_CHECKING ones do not.
    pkg = tmp_path / "tfrec" / "evaluation"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tfrec.jobs.config import JobConfig\n"
        "def f():\n    from ..jobs import simulated\n"
        "import tfrec.jobs.files\n"
        "from tfrec import jobs\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "tfrec")
    found = _offenders("evaluation", "tfrec.jobs")
    assert sorted({int(f.split(":")[1].split()[0]) for f in found}) == [5, 6, 7], found


def test_metrics_are_defined_once():
    # The metric functions live in tfrec.evaluation.metrics only; no copy of NDCG or AUC elsewhere.
    names = {
        "auc",
        "log_loss",
        "ndcg_at_k",
        "grouped_ndcg",
        "recall_at_k",
        "mrr",
        "gini",
        "normalized_gini",
        "spearman",
        "expected_calibration_error",
        "decile_mape",
        "rmse",
    }
    defined = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name in names:
                defined.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert defined == {name: ["evaluation/metrics.py"] for name in names}
    assert not (ROOT / "metrics.py").exists() and not (ROOT / "jobs" / "tables.py").exists()
