"""Runs the benchmark suite and writes one JSON file.

The five items of the suite, each in its own process (so memory and thread
pools do not carry over), in this order:

1. `query_tower`: MiniLM encode throughput vs sentence-transformers (`query_tower.py`)
2. `training`: examples/s with 1 and 2 replicas (`training.py`)
3. `serving`: served vs in-process latency and QPS at 1 and 16 clients (`serving.py`)
4. `retrieve_scaling`: retrieve latency and memory at 10k, 100k, 1M items (`retrieve_scaling.py`)
5. `export`: export size and cold-load time (`export.py`)

Usage:
    python benchmarks/run.py [--out benchmarks/results/latest.json] [--only query_tower,serving] [--quick]

`--quick` runs every item at smoke-test size (seconds, not minutes) and writes
`benchmarks/results/quick.json` unless `--out` is given. An item whose script
is absent is recorded as `"status": "missing"`, one that fails as
`"status": "failed"` with the end of its error output; the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import machine_info  # noqa: E402

ITEMS = ("query_tower", "training", "serving", "retrieve_scaling", "export")
QUICK_ARGS = {
    "query_tower": ["--quick"],
    "training": ["--steps", "3"],
    "serving": ["--quick"],
    "retrieve_scaling": ["--quick"],
    "export": ["--quick"],
}


def run_item(name, quick=False, extra=(), timeout=3600) -> dict:
    """Runs `benchmarks/<name>.py --out TMP` and returns its JSON with a status."""
    script = os.path.join(HERE, f"{name}.py")
    if not os.path.exists(script):
        return {"status": "missing", "reason": f"{os.path.relpath(script)} does not exist"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"{name}.json")
        cmd = [sys.executable, script, *(QUICK_ARGS[name] if quick else []), *extra, "--out", out]
        t = time.time()
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            )
        except subprocess.TimeoutExpired:
            return {"status": "failed", "reason": f"timed out after {timeout} s", "command": cmd}
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
                "reason": (proc.stderr or proc.stdout)[-3000:],
            }
        with open(out) as f:
            result = json.load(f)
    result.pop("machine", None)  # recorded once, at the top
    return {"status": "skipped" if "skipped" in result else "ok", "seconds": seconds, **result}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="default: benchmarks/results/latest.json (quick.json with --quick)")
    parser.add_argument("--only", default=",".join(ITEMS), help=f"comma-separated subset of {','.join(ITEMS)}")
    parser.add_argument("--quick", action="store_true", help="every item at smoke-test size")
    args = parser.parse_args(argv)
    only = [x for x in args.only.split(",") if x]
    unknown = sorted(set(only) - set(ITEMS))
    if unknown:
        parser.error(f"--only: unknown item(s) {unknown}; items are {list(ITEMS)}")
    out = args.out or os.path.join(HERE, "results", "quick.json" if args.quick else "latest.json")
    report = {"suite": "tfrec benchmarks", "quick": args.quick, "machine": machine_info(), "items": {}}
    t0 = time.time()
    for name in ITEMS:
        if name not in only:
            continue
        print(f"[{name}]", flush=True)
        report["items"][name] = run_item(name, quick=args.quick)
        print(f"[{name}] {report['items'][name]['status']} in {report['items'][name].get('seconds', 0)} s", flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out}")
    return 0 if all(v["status"] in ("ok", "skipped", "missing") for v in report["items"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
