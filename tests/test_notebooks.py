"""The notebooks run top to bottom (small configuration) and are stored without outputs.

Each notebook executes in a fresh `python3` kernel of this interpreter, in a
temporary working directory, with `TFREC_NOTEBOOK_SMALL=1`. The Online Retail
notebook needs the real data file and skips where it is absent.
"""

import json
import pathlib
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_the_three_notebooks_exist_and_are_stripped():
    assert ALL == [
        "01_simulated_train_evaluate.ipynb",
        "02_export_serve_grpc.ipynb",
        "03_online_retail_user_value.ipynb",
    ]
    for name in ALL:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not stripped"


def test_notebooks_match_their_generator(tmp_path, monkeypatch):
    """The .ipynb files are what notebooks/make_notebooks.py writes (edit the generator, then regenerate)."""
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    monkeypatch.setattr(make_notebooks, "HERE", tmp_path)
    make_notebooks.main()
    for name in ALL:
        stored = json.loads((NOTEBOOKS / name).read_text())
        fresh = json.loads((tmp_path / name).read_text())
        assert [c["source"] for c in stored["cells"]] == [c["source"] for c in fresh["cells"]], name


def _kernel_python():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    return spec.argv[0]


def _execute(name, tmp_path, monkeypatch):
    # jupyter_client starts a kernelspec whose argv[0] is "python" with
    # sys.executable, so the kernel runs in this interpreter (where tfrec is).
    assert _kernel_python() in ("python", "python3", sys.executable), (
        f"the python3 kernelspec runs {_kernel_python()}, not this interpreter {sys.executable}"
    )
    monkeypatch.setenv("TFREC_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    return nb


def _text(nb):
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + json.dumps(o.get("data", {})))
    return "\n".join(out)


def test_notebook_01_simulated_train_evaluate(tmp_path, monkeypatch):
    nb = _execute("01_simulated_train_evaluate.ipynb", tmp_path, monkeypatch)
    # The quickstart job the notebook runs writes the HTML report with every section.
    report = (tmp_path / "runs" / "notebook01" / "report.html").read_text()
    for section in ("ctr", "value", "retrieval", "business"):
        assert f'<section id="{section}">' in report
    assert report.count("data:image/png;base64,") >= 6
    text = _text(nb)
    assert "Expected revenue@" in text and "image/png" in text


def test_notebook_02_export_serve_grpc(tmp_path, monkeypatch):
    nb = _execute("02_export_serve_grpc.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "runs" / "notebook02" / "models" / "tfrec" / "1" / "saved_model.pb").exists()
    text = _text(nb)
    assert "AVAILABLE" in text and "user_value" in text and "rank" in text


def test_notebook_03_online_retail_user_value(tmp_path, monkeypatch, online_retail_path):
    monkeypatch.setenv("TFREC_ONLINE_RETAIL", str(online_retail_path))
    nb = _execute("03_online_retail_user_value.ipynb", tmp_path, monkeypatch)
    assert (tmp_path / "runs" / "notebook03" / "report.html").exists()
    assert "rfm_regression" in _text(nb)
