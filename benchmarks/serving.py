"""Served latency and QPS of `score` and `retrieve` through the local gRPC server.

Usage: python benchmarks/serving.py [--run-dir runs/quickstart] [--seconds 10]
Needs an export (run ./scripts/quickstart.sh first). Prints JSON: for each
signature, QPS and p50/p95/p99 at 1 and 16 concurrent clients, and the ratio of
the served p50 at 1 client to an in-process call of the same SavedModel.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", default="runs/quickstart")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    import tensorflow_text  # noqa: F401

    from tfrec.serving.client import ServingClient
    from tfrec.serving.load_test import run_load_test
    from tfrec.serving.server import LocalModelServer

    base = os.path.join(args.run_dir, "models")
    examples = pd.read_parquet(os.path.join(args.run_dir, "examples.parquet")).head(1)
    server = LocalModelServer(base, port=0, max_batch_size=64, batch_timeout_ms=1.0).start()
    target = f"127.0.0.1:{server.port}"
    servable = server.servables[max(server.servables)]
    results = {"machine": f"{os.cpu_count()} CPU cores", "version": servable.version, "signatures": {}}
    try:
        with ServingClient(target) as client:
            for signature in ("score", "retrieve"):
                inputs = client.retrieve_inputs(examples, k=10) if signature == "retrieve" \
                    else client.inputs_from_frame(signature, examples)
                fn = servable.loaded.signatures[signature]
                tensors = {k: tf.constant(v) for k, v in inputs.items()}
                for _ in range(20):
                    fn(**tensors)
                times = []
                for _ in range(200):
                    t = time.perf_counter()
                    fn(**tensors)
                    times.append(time.perf_counter() - t)
                in_process_p50 = float(np.percentile(times, 50) * 1000)
                row = {"in_process_p50_ms": round(in_process_p50, 3)}
                for clients in (1, 16):
                    row[f"clients_{clients}"] = run_load_test(target, signature, inputs, clients=clients,
                                                              seconds=args.seconds)
                row["served_to_in_process_p50"] = round(row["clients_1"]["p50_ms"] / in_process_p50, 2)
                results["signatures"][signature] = row
    finally:
        server.stop()
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
