"""Served latency and QPS of `score` and `retrieve` through `tfrec serve`, against the in-process call.

Usage: python benchmarks/serving.py [--run-dir runs/quickstart] [--seconds 10] [--out FILE] [--quick]

Exports the run's model (`runs/quickstart/model.keras`, from
./scripts/quickstart.sh; without one, or with --quick, a small model) to a
temporary folder with this checkout's code and serves it as a deployment
does: `tfrec serve` in its own process (TF Serving's flags, server-side
batching on with `--batching_parameters_file`: batches of up to 64 rows, 1 ms
window), so the clients' Python threads and the server's do not share one
interpreter lock. It measures, for each signature, QPS and p50/p95/p99 at 1
and 16 concurrent clients (one row per request), an in-process call of the
same SavedModel signature in this process (the same one-row inputs as
tensors; p50/p99, and its QPS from 1 and 16 threads), the overhead (served
p50 at 1 client minus the in-process p50) and their ratio, the QPS at 16
clients over the QPS at 1 client (what server-side batching buys), and a
GetModelStatus round trip (the cost of a Python gRPC call that does no
TensorFlow work). The measurements alternate (in process, 1 client, 16
clients, repeated) so background load hits all alike.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import emit, machine_info, percentiles_ms  # noqa: E402


def in_process(fn, tensors, seconds, threads=1):
    """p50/p99 and QPS of calling `fn(**tensors)` from `threads` threads."""
    lat = [[] for _ in range(threads)]
    stop_at = time.monotonic() + seconds

    def work(i):
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            {k: v.numpy() for k, v in fn(**tensors).items()}
            lat[i].append(time.perf_counter() - t)

    start = time.monotonic()
    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    all_lat = [x for part in lat for x in part]
    return {
        "threads": threads,
        "requests": len(all_lat),
        "qps": round(len(all_lat) / (time.monotonic() - start), 1),
        **percentiles_ms(all_lat),
    }


def _export(base, run_dir, quick):
    """Exports the run's model.keras (or a small model) with this checkout's code."""
    from export import _run_model, _small_model

    from tfrec.export import export_model

    have_run = os.path.exists(os.path.join(run_dir, "model.keras")) and not quick
    model, catalog, examples, source = _run_model(run_dir) if have_run else _small_model()
    export_model(model, base, catalog=catalog, examples=examples, verbose=False)
    return examples, source


def run(run_dir="runs/quickstart", seconds=10.0, repeats=2, quick=False, server_flags=()) -> dict:
    import tensorflow_text  # noqa: F401

    from tfrec.serving.client import ServingClient
    from tfrec.serving.load_test import run_load_test

    tmp = tempfile.TemporaryDirectory()
    base = tmp.name
    examples, source = _export(base, run_dir, quick)
    examples = examples.head(1)
    model_path = os.path.join(base, "tfrec")  # export_model writes base/<model_name>/<version>
    version = max(int(v) for v in os.listdir(model_path) if v.isdigit())
    loaded = tf.saved_model.load(os.path.join(model_path, str(version)))
    server, target = _serve_in_process_of_its_own(model_path, tmp.name, server_flags)
    results = {
        "benchmark": "serving",
        "server": "tfrec serve in its own process (--enable_batching, max_batch_size 64, batch_timeout_micros 1000)",
        "server_flags": list(server_flags),
        "model": source,
        "version": version,
        "quick": quick,
        "rows_per_request": 1,
        "seconds_per_measurement": seconds,
        "repeats": repeats,
        "signatures": {},
    }
    try:
        with ServingClient(target) as client:
            # The floor: a GetModelStatus round trip does no TensorFlow work.
            for _ in range(20):
                client.status()
            floor = []
            for _ in range(200 if not quick else 20):
                t = time.perf_counter()
                client.status()
                floor.append(time.perf_counter() - t)
            results["grpc_round_trip_without_model"] = percentiles_ms(floor)
            for signature in ("score", "retrieve"):
                inputs = (
                    client.retrieve_inputs(examples, k=10)
                    if signature == "retrieve"
                    else client.inputs_from_frame(signature, examples)
                )
                fn = loaded.signatures[signature]
                tensors = {k: tf.constant(v) for k, v in inputs.items()}
                for _ in range(20):
                    fn(**tensors)
                runs = {"in_process_1": [], "in_process_16": [], "clients_1": [], "clients_16": []}
                for _ in range(repeats):
                    runs["in_process_1"].append(in_process(fn, tensors, seconds))
                    runs["clients_1"].append(run_load_test(target, signature, inputs, clients=1, seconds=seconds))
                    runs["in_process_16"].append(in_process(fn, tensors, seconds, threads=16))
                    runs["clients_16"].append(run_load_test(target, signature, inputs, clients=16, seconds=seconds))

                def best(rows):  # the repeat with the median p50
                    return sorted(rows, key=lambda r: r["p50_ms"])[len(rows) // 2]

                row = {k: best(v) for k, v in runs.items()}
                row["served_to_in_process_p50"] = round(row["clients_1"]["p50_ms"] / row["in_process_1"]["p50_ms"], 2)
                row["overhead_p50_ms"] = round(row["clients_1"]["p50_ms"] - row["in_process_1"]["p50_ms"], 2)
                row["overhead_p50_ms_each_repeat"] = [
                    round(c["p50_ms"] - i["p50_ms"], 2) for c, i in zip(runs["clients_1"], runs["in_process_1"])
                ]
                row["qps_16_clients_over_1_client"] = round(row["clients_16"]["qps"] / row["clients_1"]["qps"], 2)
                row["served_to_in_process_p50_each_repeat"] = [
                    round(c["p50_ms"] / i["p50_ms"], 2) for c, i in zip(runs["clients_1"], runs["in_process_1"])
                ]
                row["served_to_in_process_qps_16"] = round(row["clients_16"]["qps"] / row["in_process_16"]["qps"], 2)
                results["signatures"][signature] = row
                print(
                    f"serving {signature}: in-process p50 {row['in_process_1']['p50_ms']} ms, served p50 "
                    f"{row['clients_1']['p50_ms']} ms (+{row['overhead_p50_ms']} ms), 16 clients "
                    f"{row['clients_16']['qps']} QPS ({row['qps_16_clients_over_1_client']}x 1 client, p99 "
                    f"{row['clients_16']['p99_ms']} ms) vs in-process 16 threads {row['in_process_16']['qps']}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()
    return results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_in_process_of_its_own(base, folder, server_flags=(), timeout=120.0):
    """Starts `tfrec serve` on `base` (batching on) and waits until it answers; returns (process, target)."""
    from tfrec.serving.client import ServingClient, ServingError

    params = os.path.join(folder, "batching_parameters.txt")
    with open(params, "w") as f:
        f.write("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 1000 }\nnum_batch_threads { value: 2 }\n")
        f.write("pad_variable_length_inputs: true\n")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "tfrec.cli",
        "serve",
        f"--port={port}",
        "--model_name=tfrec",
        f"--model_base_path={base}",
        "--enable_batching=true",
        f"--batching_parameters_file={params}",
        *server_flags,
    ]
    log = open(os.path.join(folder, "server.log"), "w")  # noqa: SIM115  (the server's stderr, read on failure)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    with ServingClient(target, retries=0, timeout=2.0) as client:
        while True:
            try:
                if any(s.get("state") == "AVAILABLE" for s in client.status()):
                    return proc, target
            except ServingError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                with open(os.path.join(folder, "server.log")) as f:
                    raise RuntimeError(f"tfrec serve did not come up: {f.read()[-2000:]}")
            time.sleep(0.2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", default="runs/quickstart")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a small model, 1 s per measurement: a smoke test")
    parser.add_argument(
        "--server-flag",
        action="append",
        default=[],
        help="one more `tfrec serve` flag, e.g. --server-flag=--tensorflow_intra_op_parallelism=1 (repeatable)",
    )
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    result = {
        "machine": machine_info(),
        **run(
            args.run_dir,
            1.0 if args.quick else args.seconds,
            1 if args.quick else args.repeats,
            args.quick,
            server_flags=args.server_flag,
        ),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
