"""Export size and cold-load time of the TF Serving SavedModel.

Exports a trained model (the quickstart run's `model.keras` and catalog when
`--run-dir` has them; otherwise, or with `--quick`, a small model trained for a
few steps on simulated data), then measures, each in a fresh Python process
(nothing cached, as a server starting up): the time to import TensorFlow +
TF Text, `tf.saved_model.load`, and the first answer of `score`, `retrieve` and
`encode_query` (graph warm-up), plus the export's size on disk by part.

Usage:
    python benchmarks/export.py [--run-dir runs/quickstart] [--repeats 3] [--out FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import emit, machine_info  # noqa: E402


def _small_model():
    # The job's own training path (tfrec.training.train_model) on a tiny config.
    from tfrec.data.simulator import simulate
    from tfrec.data.validation import validate
    from tfrec.jobs.config import JobConfig
    from tfrec.training import train_model

    config = JobConfig.from_dict(
        {
            "simulator": {"num_users": 400, "num_items": 300, "num_sessions": 400, "seed": 4},
            "model": {
                "embedding_dim": 16,
                "id_embedding_dim": 8,
                "tower_units": [32],
                "expert_units": [16],
                "text": {
                    "vocabulary_size": 300,
                    "hidden_dim": 16,
                    "num_layers": 1,
                    "num_heads": 2,
                    "query_sequence_length": 6,
                    "item_sequence_length": 8,
                },
            },
            "training": {
                "epochs": 1,
                "batch_size": 128,
                "learning_rate": 0.01,
                "verbose": 0,
                "early_stopping_patience": 0,
                "tensorboard": False,
                "value_holdout_fraction": 0.0,
            },
        }
    )
    sim = simulate(config.simulator)
    df = validate(sim.impressions, sim.schema()).valid
    model, _ = train_model(config, sim.schema(), df.head(3 * 128))
    return model, sim.items, df.head(8), "small simulated model (3 training steps)"


def _run_model(run_dir):
    import keras
    import pandas as pd

    import tfrec.models  # noqa: F401  (registers the layers)

    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    catalog = pd.read_parquet(os.path.join(run_dir, "catalog.parquet"))
    examples = pd.read_parquet(os.path.join(run_dir, "examples.parquet")).head(8)
    return model, catalog, examples, f"{run_dir}/model.keras"


def _parts(path):
    sizes = {}
    for d, _, files in os.walk(path):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), path).split(os.sep)[0]
            sizes[rel] = sizes.get(rel, 0) + os.path.getsize(os.path.join(d, f))
    return {k: round(v / 1e6, 3) for k, v in sorted(sizes.items())}


def cold_load(path):
    """In this (fresh) process: import, load and first answers, in seconds."""
    t0 = time.perf_counter()
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    from tfrec.export.saved_model import WARMUP_FILE

    t1 = time.perf_counter()
    loaded = tf.saved_model.load(path)
    t2 = time.perf_counter()
    from tensorflow_serving.apis import prediction_log_pb2

    first = {}
    for record in tf.data.TFRecordDataset(os.path.join(path, "assets.extra", WARMUP_FILE)):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        name = request.model_spec.signature_name
        if name not in ("score", "retrieve", "encode_query", "encode_item") or name in first:
            continue
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        t = time.perf_counter()
        loaded.signatures[name](**inputs)
        first[name] = round(time.perf_counter() - t, 3)
    return {
        "import_s": round(t1 - t0, 3),
        "load_s": round(t2 - t1, 3),
        "first_call_s": first,
        "load_and_first_calls_s": round(time.perf_counter() - t1, 3),
    }


def run(run_dir="runs/quickstart", repeats=3, quick=False) -> dict:
    from tfrec.export import export_model

    have_run = os.path.exists(os.path.join(run_dir, "model.keras")) and not quick
    model, catalog, examples, source = _run_model(run_dir) if have_run else _small_model()
    result = {"benchmark": "export", "model": source, "catalog_items": int(len(catalog)), "quick": quick}
    with tempfile.TemporaryDirectory() as base:
        exported = export_model(model, base, catalog=catalog, examples=examples, verbose=False)
        result.update(
            {
                "size_mb": round(exported.size_bytes / 1e6, 2),
                "size_by_part_mb": _parts(exported.path),
                "export_s": round(exported.export_seconds, 2),
                "load_s_in_exporting_process": round(exported.load_seconds, 2),
            }
        )
        loads = []
        for _ in range(1 if quick else repeats):
            proc = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", exported.path],
                capture_output=True,
                text=True,
                timeout=600,
            )
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                loads.append({"error": proc.stderr[-2000:]})
                continue
            loads.append(json.loads(lines[-1][len("RESULT ") :]))
        result["cold_loads"] = loads
        ok = [x for x in loads if "error" not in x]
        if ok:
            import numpy as np

            result["cold_load_s_median"] = round(float(np.median([x["load_s"] for x in ok])), 3)
            result["cold_load_and_first_calls_s_median"] = round(
                float(np.median([x["load_and_first_calls_s"] for x in ok])), 3
            )
    print(
        f"export: {result['size_mb']} MB, export {result['export_s']} s, cold load "
        f"{result.get('cold_load_s_median')} s (+ first calls: {result.get('cold_load_and_first_calls_s_median')} s)",
        file=sys.stderr,
        flush=True,
    )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", default="runs/quickstart")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small model, one cold load: a smoke test")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(cold_load(args.child)))
        return
    result = {"machine": machine_info(), **run(args.run_dir, args.repeats, args.quick)}
    emit(result, args.out)


if __name__ == "__main__":
    main()
