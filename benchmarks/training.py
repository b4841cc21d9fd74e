"""Training throughput of the quickstart model with 1 and 2 replicas.

Each setting runs in its own process (logical devices must be configured
before TensorFlow starts): on a CPU-only host the CPU is split into 2 logical
devices under MirroredStrategy; on a host with 2+ GPUs the replicas are GPUs.
The per-replica batch is the config's, so 2 replicas train a global batch
twice as large. Examples/s are measured on the second epoch (the first
includes tracing). Prints JSON and writes it with --out.

    python benchmarks/training.py [--config training/configs/quickstart.yaml] [--steps 40] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(config_path, replicas, steps):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    from tfrec.data.simulator import simulate
    from tfrec.data.validation import validate
    from tfrec.jobs.config import JobConfig
    from tfrec.training import train_model

    config = JobConfig.from_yaml(config_path)
    config.training.strategy = "mirrored" if replicas > 1 else "default"
    config.training.epochs = 2
    config.training.verbose = 0
    config.training.early_stopping_patience = 0
    config.training.checkpoint_every_steps = 0
    config.training.tensorboard = False
    global_batch = config.training.batch_size * replicas
    sim = simulate(config.simulator)
    rows = validate(sim.impressions, sim.schema()).valid
    rows = rows.head(min(len(rows), global_batch * steps))
    with tempfile.TemporaryDirectory() as run_dir:
        _, history = train_model(config, sim.schema(), rows, None, run_dir=run_dir)
    second = history.rows[-1]
    return {
        "replicas": replicas,
        "global_batch": global_batch,
        "steps": len(rows) // global_batch,
        "examples_per_second": second["examples_per_second"],
        "seconds": second["seconds"],
        "device": "GPU" if gpus else "CPU (logical devices)",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=os.path.join(ROOT, "training", "configs", "quickstart.yaml"))
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch (two epochs are run)")
    parser.add_argument("--replicas", default="1,2")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.config, args.child, args.steps)))
        return 0
    results = []
    for replicas in [int(r) for r in args.replicas.split(",")]:
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(replicas), "--config", args.config, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
        if out.returncode != 0:
            raise SystemExit(f"{replicas} replica(s) failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row["wall_seconds"] = time.time() - t0
        results.append(row)
        print(
            f"{replicas} replica(s): {row['examples_per_second']:.0f} examples/s "
            f"(global batch {row['global_batch']}, {row['device']})",
            flush=True,
        )
    base = results[0]["examples_per_second"]
    for row in results:
        row["speedup"] = row["examples_per_second"] / base
        row["scaling_efficiency"] = row["speedup"] / (row["replicas"] / results[0]["replicas"])
    report = {
        "benchmark": "training_throughput",
        "config": os.path.relpath(args.config, ROOT),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
