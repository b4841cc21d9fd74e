"""`retrieve` latency and memory against catalog size (10k, 100k, 1M items).

Runs the same graph ops as the exported `retrieve` signature after the query
tower (`tfrec.export.retrieval_index`: score, exclusions, `top_k`, id gather)
on synthetic catalogs of unit-norm float32 embeddings, one query per call
(`k=10`, one excluded id), as a served request sees it. Each catalog size runs
in its own process so its peak RSS is its own.

The embeddings are clustered like a trained item tower's (a mixture of 1,000
topic directions plus noise; queries are noisy copies of random items), so the
recall of the partitioned index against brute force is meaningful; uniformly
random embeddings, which have no clusters, are the worst case for it and are
reported too for 100k items.

Usage:
    python benchmarks/retrieve_scaling.py [--sizes 10000,100000,1000000] [--dims 64,384] [--out FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import emit, machine_info, peak_rss_mb, percentiles_ms, rss_mb  # noqa: E402

K = 10


def synthetic_catalog(n, d, topics=1000, noise=1.0, seed=0, clustered=True):
    """`[n, d]` unit-norm embeddings (clustered or uniform) and the generator."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if clustered:
        centers = rng.normal(size=(min(topics, n), d)).astype(np.float32)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
        x = centers[rng.integers(0, len(centers), n)]
        x = x + np.float32(noise / np.sqrt(d)) * rng.standard_normal((n, d), dtype=np.float32)
    else:
        x = rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, rng


def measure(n, d, index_kind, calls, clustered=True, probes=None, seed=0):
    """One catalog in this process: latency, memory and (partitioned) recall."""
    import numpy as np
    import tensorflow as tf

    from tfrec.export.retrieval_index import make_index

    rss_start = rss_mb()
    emb, rng = synthetic_catalog(n, d, seed=seed, clustered=clustered)
    ids = np.array([f"i{i}" for i in range(n)], dtype=object)
    queries = emb[rng.integers(0, n, 256)] + np.float32(0.3 / np.sqrt(d)) * rng.normal(size=(256, d)).astype(np.float32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    t = time.perf_counter()
    options = {} if index_kind == "brute_force" else {"seed": seed}
    index = make_index(index_kind, emb, **options)
    build_s = time.perf_counter() - t
    holder = tf.Module()
    index.attach(holder)
    holder.ids = tf.Variable(tf.constant(ids), trainable=False)
    holder.table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(ids), tf.range(n, dtype=tf.int64)), default_value=-1
    )
    del emb

    def make(probe):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None, d], tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([None, None], tf.string),
            ]
        )
        def retrieve(query, k, exclude):
            width = tf.maximum(tf.minimum(tf.reduce_max(k), n), 1)
            kwargs = {"probe": probe} if probe else {}
            values, positions = index.top_k(query, holder.table.lookup(exclude), width, **kwargs)
            keep = tf.logical_and(tf.range(width)[None, :] < k[:, None], tf.math.is_finite(values))
            return tf.where(keep, tf.gather(holder.ids, tf.maximum(positions, 0)), ""), values

        return retrieve

    k = tf.constant([K], tf.int32)
    exclude = tf.constant([["i1"]])

    def latency(fn):
        for i in range(5):
            fn(tf.constant(queries[i : i + 1]), k, exclude)
        times = []
        for i in range(calls):
            q = tf.constant(queries[i % len(queries) : i % len(queries) + 1])
            t0 = time.perf_counter()
            out = fn(q, k, exclude)
            out[0].numpy()
            times.append(time.perf_counter() - t0)
        return {**percentiles_ms(times), "qps_1_client": round(len(times) / sum(times), 1)}

    row = {
        "items": n,
        "dim": d,
        "index": index.describe(),
        "clustered": clustered,
        "index_mb": round(index.nbytes() / 1e6, 1),
        "build_s": round(build_s, 2),
    }
    if index_kind == "brute_force":
        row.update(latency(make(None)))
    else:
        # Recall@10 against the exact top 10 (brute force in numpy, same embeddings).
        exact_scores = queries[:64] @ (index.sorted_embeddings.T)
        exact = index.order[np.argsort(-exact_scores, axis=1)[:, :K]]
        row["probes"] = []
        for probe in probes or [index.probe]:
            probe = min(probe, index.clusters)
            fn = make(probe)
            # One query per call, as served (a batch of B queries gathers
            # B x probe x cluster size x d floats at once).
            got = [
                fn(tf.constant(queries[i : i + 1]), tf.constant([K], tf.int32), tf.constant([[""]]))[0].numpy()[0]
                for i in range(64)
            ]
            got_pos = [{int(s[1:]) for s in r.astype(str) if s} for r in got]
            recall = float(np.mean([len(g & set(e)) / K for g, e in zip(got_pos, exact)]))
            entry = {
                "probe": probe,
                "scanned_fraction": round(probe / index.clusters, 4),
                f"recall_at_{K}": round(recall, 4),
                **latency(fn),
            }
            row["probes"].append(entry)
    row["rss_mb_before"] = rss_start
    row["rss_mb_after"] = rss_mb()
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def _child(args):
    probes = [int(p) for p in args.probes.split(",")] if args.probes else None
    row = measure(args.child_n, args.child_d, args.child_index, args.calls, clustered=not args.uniform, probes=probes)
    print("RESULT " + json.dumps(row))


def run(sizes, dims, calls, probes="", quick=False, uniform_at=100_000) -> dict:
    rows = []
    jobs = []
    for d in dims:
        for n in sizes:
            jobs.append((n, d, "brute_force", False))
            # k-means at export time costs N x clusters x d per iteration:
            # the wider embeddings get the partitioned index at the largest size only.
            if d == dims[0] or n == max(sizes):
                jobs.append((n, d, "partitioned", False))
    if uniform_at in sizes and not quick:
        jobs.append((uniform_at, dims[0], "partitioned", True))
    for n, d, kind, uniform in jobs:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--child-n",
            str(n),
            "--child-d",
            str(d),
            "--child-index",
            kind,
            "--calls",
            str(calls),
        ]
        if probes:
            cmd += ["--probes", probes]
        if uniform:
            cmd.append("--uniform")
        t = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            rows.append({"items": n, "dim": d, "index": {"kind": kind}, "error": proc.stderr[-2000:]})
            print(f"retrieve_scaling {kind} n={n} d={d}: FAILED", file=sys.stderr, flush=True)
            continue
        row = json.loads(lines[-1][len("RESULT ") :])
        row["wall_s"] = round(time.time() - t, 1)
        rows.append(row)
        summary = (
            f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms"
            if kind == "brute_force"
            else "; ".join(
                f"probe {p['probe']}: recall {p[f'recall_at_{K}']} p99 {p['p99_ms']} ms" for p in row["probes"]
            )
        )
        print(
            f"retrieve_scaling {kind}{' uniform' if uniform else ''} n={n} d={d}: {summary}, "
            f"peak RSS {row['peak_rss_mb']} MB",
            file=sys.stderr,
            flush=True,
        )
    return {"benchmark": "retrieve_scaling", "k": K, "calls_per_setting": calls, "quick": quick, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dims", default="64,384")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--probes", default="8,32,64", help="partitions probed (partitioned index)")
    parser.add_argument("--quick", action="store_true", help="2,000 items, d=16, 20 calls: a smoke test")
    parser.add_argument("--out", default=None)
    parser.add_argument("--child-n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-d", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-index", help=argparse.SUPPRESS)
    parser.add_argument("--uniform", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_n:
        return _child(args)
    if args.quick:
        result = run([2000], [16], calls=20, probes="4", quick=True)
    else:
        result = run(
            [int(s) for s in args.sizes.split(",")],
            [int(d) for d in args.dims.split(",")],
            calls=args.calls,
            probes=args.probes,
        )
    result = {"machine": machine_info(), **result}
    emit(result, args.out)


if __name__ == "__main__":
    main()
