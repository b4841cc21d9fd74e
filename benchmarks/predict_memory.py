"""Peak memory and throughput of `tfrec predict` on a 1,000,000-row file, beside two peers.

Trains a small search run in a temporary folder (`tfrec train`, a tiny model,
one epoch on a few thousand rows), writes a search-shaped file of `--rows`
rows (parquet, or CSV with `--format csv`), then runs, each in its own child
process whose peak RSS is its own (`os.wait4`, the child's `ru_maxrss`):

1. `tfrec predict RUN --data FILE --output OUT` (chunks of `--chunk-rows`, default 65,536);
2. the same with chunks 10x larger;
3. the naive peer: `pandas.read_parquet` (or `read_csv`) of the whole file and
   one `tfrec.models.inference.predict_dataframe` over all its rows.

It prints rows, seconds, rows/s and peak RSS of each, the CPU (`lscpu` model,
cores, vector flags), checks that the predictions of 1 and 3 agree, and the
target: `tfrec predict` under 2 GB.

Usage:
    python benchmarks/predict_memory.py [--rows 1000000] [--format parquet|csv] [--chunk-rows 65536] [--out FILE]
    python benchmarks/predict_memory.py --quick        # 50,000 rows
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_common import emit, machine_info  # noqa: E402

TARGET_MB = 2000
CATEGORIES = ["boots", "sofa", "lamp", "kettle", "jacket", "desk"]
COLOURS = ["red", "black", "blue", "green", "white"]
TINY_MODEL: dict[str, Any] = {
    "embedding_dim": 16,
    "id_embedding_dim": 8,
    "tower_units": [32],
    "expert_units": [16],
    "cross_layers": 1,
    "text": {
        "vocabulary_size": 200,
        "hidden_dim": 16,
        "num_layers": 1,
        "num_heads": 2,
        "query_sequence_length": 6,
        "item_sequence_length": 8,
    },
}
NAIVE = """
import sys, time
import keras, pandas as pd
import tfrec.models
from tfrec.models.inference import predict_dataframe
t0 = time.time()
path = sys.argv[1]
df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
model = keras.models.load_model(sys.argv[2])
out = predict_dataframe(model, df.drop(columns=["slot"]), batch_size=1024, outputs=["ctr", "score"])
pd.DataFrame(out).to_parquet(sys.argv[3])
print(f"naive {len(df)} rows {time.time() - t0:.1f} s")
"""


def search_rows(n: int, seed: int = 0, items: int = 600):
    """`n` logged search results (query, item, title, category, price, slot, time, click), vectorised."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cats, colours = np.array(CATEGORIES, dtype=object), np.array(COLOURS, dtype=object)
    item_cat = np.arange(items) % len(CATEGORIES)
    item_colour = rng.integers(0, len(COLOURS), items)
    titles = colours[item_colour] + " " + cats[item_cat] + " " + (np.arange(items) % 7).astype(str).astype(object)
    skus = np.array([f"sku{i:05d}" for i in range(items)], dtype=object)
    prices = rng.gamma(2.0, 20.0, items).round(2)
    q_cat, q_colour = rng.integers(0, len(CATEGORIES), n), rng.integers(0, len(COLOURS), n)
    same_category = rng.integers(0, items // len(CATEGORIES), n) * len(CATEGORIES) + q_cat
    item = np.where(rng.random(n) < 0.5, same_category, rng.integers(0, items, n))
    match = item_cat[item] == q_cat
    # A third of the queries carry a number ("red boots 7"): about 360 distinct queries to split by.
    suffix = np.where(rng.random(n) < 1 / 3, " " + rng.integers(0, 11, n).astype(str).astype(object), "")
    return pd.DataFrame(
        {
            "search_query": colours[q_colour] + " " + cats[q_cat] + suffix,
            "sku": skus[item],
            "title": titles[item],
            "category": cats[item_cat[item]],
            "price": prices[item],
            "slot": rng.integers(1, 11, n),
            "ts": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) // 8, unit="s"),
            "clicked": (rng.random(n) < np.where(match, 0.5, 0.03)).astype(float),
        }
    )


def child(argv: list[str], log: str) -> dict:
    """Runs `argv`; returns its wall seconds, exit code, peak RSS (MB, `ru_maxrss` of that child) and output."""
    t0 = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    with open(log) as f:
        text = f.read()
    result: dict[str, Any] = {
        "seconds": round(time.time() - t0, 1),
        "exit_code": proc.returncode,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    if proc.returncode != 0:
        result["output_tail"] = text[-2000:]
    return result | {"_output": text}


def lscpu() -> dict:
    """Model, CPU count and the vector flags that matter, from `lscpu`."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    keep = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx")
    return {
        "model": fields.get("Model name", "").strip(),
        "cpus": fields.get("CPU(s)", "").strip(),
        "threads_per_core": fields.get("Thread(s) per core", "").strip(),
        "flags": sorted(f for f in flags if f.startswith(keep)),
    }


def train_run(work: str) -> str:
    """A small search run in `work/run` (tfrec train in a child process)."""
    import yaml

    train = os.path.join(work, "train.parquet")
    search_rows(3000, seed=1).to_parquet(train, index=False)
    with open(os.path.join(ROOT, "training", "configs", "search_logs.yaml")) as f:
        config = yaml.safe_load(f)
    config["data"]["paths"] = [train]
    config["data"]["schema"] = os.path.join(ROOT, "training", "configs", "schemas", "search_logs.yaml")
    config["model"].update({**TINY_MODEL, "text": {**config["model"].get("text", {}), **TINY_MODEL["text"]}})
    config["training"].update({"epochs": 1, "batch_size": 128, "verbose": 0})
    config["evaluation"] = {"ks": [5], "max_queries": 100}
    config["output_dir"] = os.path.join(work, "run")
    path = os.path.join(work, "job.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    result = child([sys.executable, "-m", "tfrec.cli", "train", "--config", path], os.path.join(work, "train.log"))
    if result["exit_code"] != 0:
        raise RuntimeError(f"training failed:\n{result['output_tail']}")
    return config["output_dir"]


def predict_seconds(output: str) -> dict:
    """`seconds` and `rows_per_second` from the summary `tfrec predict` prints."""
    found = re.search(r"([\d.]+) s, ([\d,]+) rows/s", output)
    return {"predict_seconds": float(found[1]), "rows_per_second": int(found[2].replace(",", ""))} if found else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the scored file (default: 1000000)")
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="(default: parquet)")
    parser.add_argument("--chunk-rows", type=int, default=65_536, help="tfrec predict --chunk-rows (default: 65536)")
    parser.add_argument("--out", default=None, help="also write the JSON here (default: print only)")
    parser.add_argument("--quick", action="store_true", help="50,000 rows (a smoke test)")
    args = parser.parse_args()
    rows = 50_000 if args.quick else args.rows
    machine = machine_info()  # the load average before this run's own work
    import numpy as np
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="tfrec-predict-bench-") as work:
        t0 = time.time()
        run_dir = train_run(work)
        train_seconds = time.time() - t0
        data = os.path.join(work, f"rows.{args.format}")
        frame = search_rows(rows, seed=2)
        if args.format == "parquet":
            frame.to_parquet(data, index=False)
        else:
            frame.to_csv(data, index=False)
        size_mb = os.path.getsize(data) / 1e6
        del frame
        cli = [sys.executable, "-m", "tfrec.cli", "predict", run_dir, "--data", data]
        runs = {}
        for name, chunk in (("tfrec_predict", args.chunk_rows), ("tfrec_predict_chunks_x10", 10 * args.chunk_rows)):
            out = os.path.join(work, f"{name}.parquet")
            result = child(cli + ["--output", out, "--chunk-rows", str(chunk)], os.path.join(work, f"{name}.log"))
            result.update(predict_seconds(result["_output"]), chunk_rows=chunk)
            runs[name] = result
        naive_out = os.path.join(work, "naive.parquet")
        runs["naive_read_all_and_predict"] = child(
            [sys.executable, "-c", NAIVE, data, os.path.join(run_dir, "model.keras"), naive_out],
            os.path.join(work, "naive.log"),
        )
        for result in runs.values():
            result.pop("_output")
            result["rows"] = rows
            result.setdefault("rows_per_second", round(rows / result["seconds"]) if result["seconds"] else None)
        agree = None
        if all(r["exit_code"] == 0 for r in runs.values()):
            ours = pd.read_parquet(os.path.join(work, "tfrec_predict.parquet"), columns=["row", "ctr"])
            naive = pd.read_parquet(naive_out)
            agree = {
                "rows_written": len(ours),
                "max_abs_ctr_diff_vs_naive": float(np.abs(ours["ctr"].to_numpy() - naive["ctr"].to_numpy()).max()),
            }
    peak = runs["tfrec_predict"]["peak_rss_mb"]
    emit(
        {
            "rows": rows,
            "format": args.format,
            "file_mb": round(size_mb, 1),
            "train_seconds": round(train_seconds, 1),
            "runs": runs,
            "predictions_agree": agree,
            "target": f"tfrec predict peak RSS < {TARGET_MB} MB",
            "target_met": peak < TARGET_MB,
            "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "lscpu": lscpu(),
            "machine": machine,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
