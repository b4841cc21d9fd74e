"""End-to-end jobs on small simulated data (CPU, about a minute each)."""

import json
import os

import pytest

from tfrec.jobs.config import JobConfig

SMALL = {
    "simulator": {"num_users": 1500, "num_items": 400, "num_sessions": 6000, "seed": 2},
    "model": {
        "embedding_dim": 32,
        "id_embedding_dim": 16,
        "tower_units": [64],
        "expert_units": [32],
        "text": {
            "vocabulary_size": 400,
            "hidden_dim": 32,
            "num_layers": 1,
            "num_heads": 2,
            "query_sequence_length": 8,
            "item_sequence_length": 10,
        },
    },
    "training": {"epochs": 2, "batch_size": 256, "verbose": 0},
    "evaluation": {"ks": [10, 50], "max_queries": 1000},
}


def test_config_rejects_unknown_keys_by_name():
    with pytest.raises(ValueError, match="'epoch'"):
        JobConfig.from_dict({"training": {"epoch": 3}})
    with pytest.raises(ValueError, match="'embeding_dim'"):
        JobConfig.from_dict({"model": {"embeding_dim": 3}})
    with pytest.raises(ValueError, match="'presets'"):
        JobConfig.from_dict({"model": {"text": {"presets": "x"}}})
    with pytest.raises(ValueError, match="'simulatr'"):
        JobConfig.from_dict({"simulatr": {}})


def test_quickstart_config_file_loads():
    config = JobConfig.from_yaml("training/configs/quickstart.yaml")
    assert config.model.text.preset is None and config.training.epochs >= 1


def test_simulated_job_end_to_end(tmp_path):
    from tfrec.jobs.simulated import run

    config = JobConfig.from_dict({**SMALL, "output_dir": str(tmp_path / "run")})
    result = run(config)
    m = result["metrics"]
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["retrieval"]["model"]["recall@50"] == pytest.approx(m["retrieval"]["model"]["recall@50"])
    assert (tmp_path / "run" / "model.keras").exists() and (tmp_path / "run" / "config.yaml").exists()
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and "val_loss" in history[0] and len(history) == 1 + 2
    assert m["rows"]["rows_read"] == m["rows"]["rows_used"] == 60000
    # Even briefly trained, the model beats popularity by far and learns CTR.
    assert m["retrieval"]["model"]["recall@50"] > 2 * m["retrieval"]["popularity"]["recall@50"]
    assert m["ctr"]["model"]["auc"] > 0.7
    assert m["ctr"]["oracle"]["auc"] >= m["ctr"]["model"]["auc"] - 0.01
    assert m["value"]["model"]["normalized_gini"] > 0.2
    # The job exports a servable version and keeps what `tfrec export` needs.
    export = result["export"]
    assert export.path == str(tmp_path / "run" / "models" / "tfrec" / "1")
    assert (tmp_path / "run" / "models" / "tfrec" / "1" / "saved_model.pb").exists()
    assert (tmp_path / "run" / "catalog.parquet").exists() and (tmp_path / "run" / "examples.parquet").exists()
    # ... then serves it over gRPC and gets the in-process answers back.
    assert m["serving"]["version"] == 1 and m["serving"]["max_abs_diff"] < 1e-5
    assert m["serving"]["rest_max_abs_diff"] < 1e-5  # TF Serving's REST API, columnar format
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["serving"]["version"] == 1

    from tfrec.cli import main

    code = main(
        [
            "export",
            "--model",
            str(tmp_path / "run" / "model.keras"),
            "--catalog",
            str(tmp_path / "run" / "catalog.parquet"),
            "--examples",
            str(tmp_path / "run" / "examples.parquet"),
            "--base-dir",
            str(tmp_path / "run" / "models"),
            "--max-k",
            "20",
            "--retrieval-index",
            "partitioned",
            "--clusters",
            "8",
            "--probe",
            "2",
        ]
    )
    assert code == 0
    assert sorted(os.listdir(tmp_path / "run" / "models" / "tfrec")) == ["1", "2"]
    manifest = json.loads(
        (tmp_path / "run" / "models" / "tfrec" / "2" / "assets.extra" / "tfrec_manifest.json").read_text()
    )
    assert manifest["retrieval_index"]["kind"] == "partitioned"
    assert manifest["retrieval_index"]["clusters"] == 8 and manifest["retrieval_index"]["probe"] == 2
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "run" / "model.keras"),
                "--catalog",
                str(tmp_path / "run" / "catalog.parquet"),
                "--base-dir",
                str(tmp_path / "run" / "models"),
                "--version",
                "2",
            ]
        )
        == 2
    )
    # The run directory alone is enough: model, catalog, examples and metrics come from it.
    assert main(["export", str(tmp_path / "run"), "--max-k", "20"]) == 0
    assert sorted(os.listdir(tmp_path / "run" / "models" / "tfrec")) == ["1", "2", "3"]
    manifest = json.loads(
        (tmp_path / "run" / "models" / "tfrec" / "3" / "assets.extra" / "tfrec_manifest.json").read_text()
    )
    assert manifest["catalog_size"] == 400 and "retrieval" in manifest["metrics"]
    assert main(["export", str(tmp_path / "no-such-run")]) == 2


def test_text_makes_never_seen_items_retrievable():
    from tfrec.jobs.cold_start import run

    # 1,000 items: recall@50 by chance is 5%, so the id-only model (which
    # sees new items only through category, brand and price) stays near it
    # and the ratio is stable across seeds (400 items gave 1.9x to 4x).
    small = json.loads(json.dumps(SMALL))
    small["simulator"]["num_items"] = 1000
    result = run(JobConfig.from_dict(small), held_out_fraction=0.2, k=50)
    assert result["queries"] > 50
    assert result["text"]["recall@50"] >= 3 * result["id_only"]["recall@50"], result


def test_a_task_weighted_zero_is_neither_built_nor_evaluated(tmp_path):
    """loss_weights.ctr = 0 and value = 0: no CTR or value head, and the job evaluates and reports the rest."""
    from tfrec.jobs.simulated import run

    small = json.loads(json.dumps(SMALL))
    small["simulator"].update(num_users=300, num_items=100, num_sessions=600)
    small["model"]["loss_weights"] = {"ctr": 0.0, "value": 0.0}
    small["training"]["epochs"] = 1
    small["export"] = {"enabled": False}
    result = run(JobConfig.from_dict({**small, "output_dir": str(tmp_path / "run")}))
    assert sorted(result["model"].task_names) == ["intent", "relevance", "retrieval"]
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "ctr" not in m and "value" not in m and m["retrieval"]["model"]["recall@50"] > 0
    assert "Not evaluated" in (tmp_path / "run" / "report.html").read_text()
