"""Imports flow one way: each folder of tfrec imports only folders below it (ARCHITECTURE.md)."""

from test_architecture import ROOT, _runtime_imports

# Lowest first; a module may import its own folder and any folder of a lower rank.
RANK = {
    "schema": 0,
    "config_validation": 0,
    "console": 0,
    "lazy_exports": 0,
    "data": 1,
    "layers": 2,
    "losses": 2,
    "baselines": 3,
    "towers": 3,
    "tasks": 3,
    "models": 4,
    "training": 5,
    "evaluation": 6,
    "export": 6,
    "serving": 7,
    "jobs": 8,
    "tuning": 9,
    "cli": 10,
}


def _violations(root):
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        me = rel.parts[0].removesuffix(".py")
        if me == "__init__":
            continue
        for line, name in _runtime_imports(path):
            parts = name.split(".")
            if parts[0] != "tfrec" or len(parts) < 2 or parts[1] == me:
                continue
            other = parts[1]
            if other not in RANK or RANK[other] >= RANK[me]:
                found.append(f"{rel}:{line} ({me}) imports {name}")
    return found


def test_every_folder_is_ranked():
    folders = {
        p.name.removesuffix(".py")
        for p in ROOT.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")
    }
    assert folders == set(RANK), sorted(folders ^ set(RANK))


def test_imports_flow_downward():
    assert _violations(ROOT) == []


def test_the_rank_check_catches_an_upward_import(tmp_path, monkeypatch):
    import test_architecture

    root = tmp_path / "tfrec"
    (root / "layers").mkdir(parents=True)
    (root / "layers" / "bad.py").write_text("from tfrec.models import build_model\n")
    (root / "export").mkdir()
    (root / "export" / "peer.py").write_text("import tfrec.evaluation.metrics\n")  # same rank: not allowed
    monkeypatch.setattr(test_architecture, "ROOT", root)
    assert {v.split(" ")[0] for v in _violations(root)} == {"layers/bad.py:1", "export/peer.py:1"}


def _private_attribute_uses(root):
    """`obj._name` where `obj` is not `self`/`cls` (or an object of our own, named in ALLOWED)."""
    import ast

    allowed = {"outer._handler"}  # serving/server.py: the server's own request handler
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                use = f"{ast.unparse(node.value)}.{node.attr}"
                if ast.unparse(node.value) not in ("self", "cls") and use not in allowed:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {use}")
    return found


def test_no_private_attributes_of_other_objects():
    """No private Keras (or other library) API: e.g. `model._flatten_layers`, `optimizer._get_variable_index`."""
    assert _private_attribute_uses(ROOT) == []
