"""Runs the benchmark suite: one JSON file and one markdown table of ratios.

The items of the suite, each in its own process (so memory and thread pools
do not carry over), in this order:

1. `query_tower`: MiniLM encode throughput vs sentence-transformers (`query_tower.py`)
2. `training`: examples/s with 1 and 2 replicas (`training.py`)
3. `serving`: served vs in-process latency and QPS at 1 and 16 clients (`serving.py`)
4. `retrieve_scaling`: retrieve latency and memory vs catalog size (`retrieve_scaling.py`)
5. `export`: export size and cold-load time (`export.py`)
6. `out_of_core`: training steps/s streamed from sharded parquet vs a cached batch, peak RSS (`out_of_core.py`)
7. `gpu_training`: only when a GPU is present (TensorFlow sees one in a child
   process, or `nvidia-smi` exists): `training.py` on the multi-GPU config
   (bfloat16 + XLA), 1 vs N replicas

Usage:
    python -m benchmarks.run [--quick | --full] [--only query_tower,serving] [--out FILE] [--gpu auto|always|never]
    python benchmarks/run.py ...   (the same)

Sizes: `--quick` runs every item at smoke-test size (seconds per item; the
tests use it) and writes `benchmarks/results/quick.json`; the default runs
the whole suite in a few minutes on 2 cores (`DEFAULT_ARGS`) and writes
`latest.json`; `--full` runs each script at its own default sizes (much
longer) and writes `full.json`. At the end it prints one markdown table: each
target (measure | tfrec | peer measured in the same run | ratio | target |
met) and the machine (CPU model, vector flags, cores, TensorFlow, load
average, GPU), and writes it with the detailed tables next to the JSON
(`latest.md`, ...); `benchmarks/report.py FILE.json` renders the same from a
JSON. An item whose script is absent is recorded as `"status": "missing"`,
one that fails as `"status": "failed"` with the end of its error output; the
others still run, and the table says why a row has no number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_common import machine_info  # noqa: E402
from report import render_markdown, render_summary  # noqa: E402

ITEMS = ("query_tower", "training", "serving", "retrieve_scaling", "export", "out_of_core", "gpu_training")
#: Items that run another item's script.
SCRIPTS = {"gpu_training": "training"}
#: Smoke-test sizes: seconds per item.
QUICK_ARGS = {
    "query_tower": ["--quick"],
    "training": ["--steps", "3"],
    "serving": ["--quick"],
    "retrieve_scaling": ["--quick"],
    "export": ["--quick"],
    "out_of_core": ["--quick"],
    "gpu_training": ["--steps", "3"],
}
#: The default: the whole suite in a few minutes on 2 cores (each script's own defaults are `--full`).
DEFAULT_ARGS = {
    # tfrec's default variant (`dynamic`) and sentence-transformers (default threads and one thread),
    # every workload, 3 interleaved repeats (the script's default: all five variants, 5 repeats).
    "query_tower": ["--variants", "dynamic", "--repeats", "3"],
    "training": ["--steps", "20"],
    "serving": ["--seconds", "3", "--repeats", "2"],
    "retrieve_scaling": ["--sizes", "10000,1000000", "--dims", "64", "--calls", "100", "--probes", "8,32"],
    "export": ["--repeats", "2"],
    "out_of_core": ["--rows", "1000000", "--steps", "300", "--files", "8"],
    "gpu_training": ["--steps", "50"],
}
FULL_ARGS = {name: [] for name in ITEMS}
SIZES = {"quick": QUICK_ARGS, "default": DEFAULT_ARGS, "full": FULL_ARGS}
#: Simulated sessions of the multi-GPU config's data at each size (None: the config's own).
GPU_SESSIONS = {"quick": 5_000, "default": 50_000, "full": None}
GPU_CONFIG = os.path.join(ROOT, "training", "configs", "multi_gpu.yaml")


def run_item(name, quick=False, extra=(), timeout=3600) -> dict:
    """Runs `benchmarks/<script>.py [quick args] [extra] --out TMP` and returns its JSON with a status."""
    script = os.path.join(HERE, f"{SCRIPTS.get(name, name)}.py")
    if not os.path.exists(script):
        return {"status": "missing", "reason": f"{os.path.relpath(script)} does not exist"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{name}.json")
        cmd = [sys.executable, script, *(QUICK_ARGS[name] if quick else []), *extra, "--out", out]
        shown = ["python", os.path.relpath(script, ROOT), *cmd[2:-2]]
        t = time.time()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            )
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {timeout} s", "command": shown}
        seconds = round(time.time() - t, 1)
        prefix = name.split("_")[0]
        progress = [
            ln
            for ln in proc.stderr.splitlines() + proc.stdout.splitlines()
            if ln.startswith(prefix) or "replica(s):" in ln
        ]
        for line in progress:
            print(f"  {line}", flush=True)
        if proc.returncode != 0 or not os.path.exists(out):
            return {
                "status": "failed",
                "seconds": seconds,
                "returncode": proc.returncode,
                "command": shown,
                "reason": (proc.stderr or proc.stdout)[-3000:],
            }
        with open(out) as f:
            result = json.load(f)
    result.pop("machine", None)  # recorded once, at the top
    return {"status": "skipped" if "skipped" in result else "ok", "seconds": seconds, "command": shown, **result}


_TF_GPUS = (
    "import json, os; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3'); import tensorflow as tf; "
    "print(json.dumps([d.name for d in tf.config.list_physical_devices('GPU')]))"
)


def detect_gpu(timeout=180) -> dict:
    """The GPUs TensorFlow sees (asked in a child process, so this one stays free of TensorFlow) and nvidia-smi's."""
    info: dict = {"nvidia_smi": None, "tensorflow_gpus": None}
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run(
                [smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=60
            )
            info["nvidia_smi"] = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
        except (OSError, subprocess.SubprocessError) as e:
            info["nvidia_smi_error"] = str(e)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _TF_GPUS],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        info["tensorflow_gpus"] = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
        if out.returncode != 0:
            info["tensorflow_error"] = out.stderr[-500:]
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        info["tensorflow_error"] = str(e)
    tf_count, smi_count = len(info["tensorflow_gpus"] or []), len(info["nvidia_smi"] or [])
    info["present"] = bool(tf_count or smi_count)
    info["count"] = tf_count or smi_count
    return info


def gpu_config(path, sessions=None) -> str:
    """The multi-GPU config (bfloat16, XLA) as YAML, with `sessions` simulated sessions when given."""
    import yaml

    with open(GPU_CONFIG) as f:
        config = yaml.safe_load(f)
    training = config.setdefault("training", {})
    if training.get("mixed_precision", "off") == "off":
        training["mixed_precision"] = "mixed_bfloat16"
    training["xla"] = True
    if sessions:
        config.setdefault("simulator", {})["num_sessions"] = sessions
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


def item_args(name, size) -> list[str]:
    """The arguments `main` passes to an item's script at `size` (after `QUICK_ARGS` when quick)."""
    return [] if size == "quick" else list(SIZES[size][name])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="default: benchmarks/results/latest.json (quick.json, full.json)")
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma-separated subset of {','.join(ITEMS)}")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="every item at smoke-test size (seconds each)")
    sizes.add_argument("--full", action="store_true", help="every script at its own default (long) sizes")
    parser.add_argument(
        "--gpu",
        choices=("auto", "always", "never"),
        default="auto",
        help="gpu_training: when a GPU is present (auto), always (a check of the plumbing on a CPU), or never",
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds an item may run")
    args = parser.parse_args(argv)
    only = [x for x in args.only.split(",") if x]
    unknown = sorted(set(only) - set(ITEMS))
    if unknown:
        parser.error(f"--only: unknown item(s) {unknown}; items are {list(ITEMS)}")
    size = "quick" if args.quick else "full" if args.full else "default"
    out = args.out or os.path.join(HERE, "results", {"quick": "quick", "full": "full"}.get(size, "latest") + ".json")
    report = {
        "suite": "tfrec benchmarks",
        "size": size,
        "quick": args.quick,
        "machine": machine_info(),
        "arguments": {name: QUICK_ARGS[name] if size == "quick" else item_args(name, size) for name in only},
        "items": {},
    }
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for name in ITEMS:
            if name not in only:
                continue
            extra = item_args(name, size)
            if name == "gpu_training":
                if args.gpu == "never":
                    continue
                print("[gpu] looking for a GPU", flush=True)
                report["gpu"] = detect_gpu()
                report["gpu"]["forced"] = args.gpu == "always" and not report["gpu"]["present"]
                print(f"[gpu] {report['gpu']['count']} GPU(s): {report['gpu']}", flush=True)
                if not report["gpu"]["present"] and args.gpu != "always":
                    continue
                n = report["gpu"]["count"]
                config = gpu_config(os.path.join(tmp, "multi_gpu.yaml"), GPU_SESSIONS[size])
                extra += ["--config", config, "--replicas", f"1,{n}" if n >= 2 else "1"]
            print(f"[{name}]", flush=True)
            report["items"][name] = run_item(name, quick=size == "quick", extra=extra, timeout=args.timeout)
            item = report["items"][name]
            print(f"[{name}] {item['status']} in {item.get('seconds', 0)} s", flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as f:
        f.write(render_markdown(report) + "\n")
    print()
    print(render_summary(report))
    print()
    print(f"wrote {out} and {md}")
    return 0 if all(v["status"] in ("ok", "skipped", "missing") for v in report["items"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
