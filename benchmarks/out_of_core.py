"""Training input out of core: a sharded parquet impressions log bigger than memory, streamed.

Generates an N-row impressions log as sharded parquet, in chunks (bounded
memory): string user, item and query ids, a short query text of catalog
words, item titles, categories and brands, numerics (tenure, orders, price,
position) and a click label. Then, in one process and in this order:

1. the streaming statistics pass (`tfrec.data.streaming_stats.collect_statistics`):
   vocabularies, numeric moments, texts;
2. the model of the quickstart config built from them (`build_model(..., statistics=...)`);
3. `--steps` training steps streamed from the files (`StreamBatches`, the
   `Trainer`'s loop), and the same number of steps on one in-memory batch
   repeated (`tf.data.Dataset.from_tensors(batch).repeat()`), both timed
   after `--warmup` steps.

It prints and records the peak RSS of the whole run (`ru_maxrss`) and of each
phase (`VmHWM`, reset between phases through `/proc/self/clear_refs` where the
kernel allows), the seconds of each phase, steps/s from the files and from the
cached batch and their ratio (the input pipeline is not the bottleneck when it
is >= 0.9), and the machine (`machine_info`: CPU model and flags).

    python benchmarks/out_of_core.py [--rows 20000000] [--steps 2000] [--files 32] [--data DIR] [--out FILE]
    python benchmarks/out_of_core.py --quick          # 200,000 rows, 30 steps
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_common import emit, machine_info  # noqa: E402

#: Rows generated and written per parquet row group / generation chunk.
GENERATE_CHUNK = 250_000
WORDS = (
    "red blue green black white silver oak linen leather wool cotton summit bloom nova arc terra "
    "running winter summer trail city classic slim soft warm light heavy mini pro max eco "
    "shoes sneakers boots sandals jacket shirt dress lamp desk chair sofa mug kettle lipstick "
    "serum candle watch bag wallet headphones speaker phone case cable charger"
).split()
CATEGORIES = ["shoes", "clothing", "home", "beauty", "electronics", "accessories", "kitchen", "sports"]
SEGMENTS = ["new", "occasional", "regular", "loyal"]


def schema():
    from tfrec.schema import FeatureSchema

    return FeatureSchema(
        query_text="query",
        user_id="user_id",
        user_categorical=["user_segment"],
        user_numeric=["user_tenure_days", "user_orders_90d"],
        item_id="item_id",
        item_text="item_title",
        item_categorical=["item_category", "item_brand"],
        item_price="item_price",
        click_label="click",
        position="position",
    )


def generate(rows: int, folder: str, files: int, seed: int = 0) -> dict:
    """Writes `rows` impressions as `files` parquet files, `GENERATE_CHUNK` rows at a time; returns sizes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    num_users = int(min(2_000_000, max(1_000, rows // 10)))
    num_items = int(min(200_000, max(500, rows // 100)))
    num_queries = int(min(500_000, max(1_000, rows // 40)))
    item_ids = pa.array([f"i{k:06d}" for k in range(num_items)])
    words = np.array(WORDS)
    titles = pa.array([" ".join(t) for t in words[rng.integers(0, len(words), (num_items, 4))]])
    item_cat = rng.integers(0, len(CATEGORIES), num_items)
    brands = pa.array([f"brand{b}" for b in range(300)])
    item_brand = rng.integers(0, 300, num_items)
    item_price = np.round(rng.lognormal(3.0, 0.8, num_items), 2)
    queries = pa.array([" ".join(q) for q in words[rng.integers(0, len(words), (num_queries, 2))]])
    users = pa.array([f"u{k:07d}" for k in range(num_users)])
    user_segment = rng.integers(0, len(SEGMENTS), num_users)
    user_tenure = np.round(rng.gamma(2.0, 200.0, num_users))
    user_orders = rng.poisson(3.0, num_users).astype(float)
    # Popular items and users are far more frequent (Zipf-like), as in logs.
    item_p = 1.0 / np.arange(1, num_items + 1) ** 0.9
    item_p /= item_p.sum()
    os.makedirs(folder, exist_ok=True)
    writers = [pq.ParquetWriter(os.path.join(folder, f"part-{f:04d}.parquet"), _arrow_schema()) for f in range(files)]
    written = 0
    chunk_index = 0
    try:
        while written < rows:
            n = min(GENERATE_CHUNK, rows - written)
            u = rng.integers(0, num_users, n)
            i = rng.choice(num_items, n, p=item_p)
            q = rng.integers(0, num_queries, n)
            position = rng.integers(1, 11, n).astype(float)
            click = (rng.random(n) < 0.3 / position**0.6).astype(np.int64)
            tenure = user_tenure[u].copy()
            tenure[rng.random(n) < 0.02] = np.nan  # some unknown
            table = pa.table(
                {
                    "query_id": pa.array(np.char.add("q", q.astype(str)).astype(object)),
                    "query": queries.take(pa.array(q)),
                    "user_id": users.take(pa.array(u)),
                    "user_segment": pa.array(np.array(SEGMENTS, dtype=object)[user_segment[u]]),
                    "user_tenure_days": tenure,
                    "user_orders_90d": user_orders[u],
                    "item_id": item_ids.take(pa.array(i)),
                    "item_title": titles.take(pa.array(i)),
                    "item_category": pa.array(np.array(CATEGORIES, dtype=object)[item_cat[i]]),
                    "item_brand": brands.take(pa.array(item_brand[i])),
                    "item_price": item_price[i],
                    "position": position,
                    "click": click,
                },
                schema=_arrow_schema(),
            )
            writers[chunk_index % files].write_table(table, row_group_size=65_536)
            written += n
            chunk_index += 1
    finally:
        for w in writers:
            w.close()
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    return {"rows": rows, "files": files, "bytes": size, "users": num_users, "items": num_items, "queries": num_queries}


def _arrow_schema():
    import pyarrow as pa

    text = ["query_id", "query", "user_id", "user_segment", "item_id", "item_title", "item_category", "item_brand"]
    fields = {name: pa.string() for name in text}
    fields.update({c: pa.float64() for c in ("user_tenure_days", "user_orders_90d", "item_price", "position")})
    fields["click"] = pa.int64()
    order = ["query_id", "query", "user_id", "user_segment", "user_tenure_days", "user_orders_90d", "item_id"]
    order += ["item_title", "item_category", "item_brand", "item_price", "position", "click"]
    return pa.schema([(name, fields[name]) for name in order])


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _reset_hwm() -> bool:
    """Resets this process's VmHWM (peak RSS of the phase to come); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class CachedBatch:
    """One in-memory batch repeated: the input pipeline at no cost (`Trainer.fit`'s batches interface)."""

    def __init__(self, batch, global_batch_size, steps):
        self.batch = batch
        self.global_batch_size = global_batch_size
        self.steps_per_epoch = steps

    def dataset(self, epoch=0, skip=0):
        import tensorflow as tf

        return tf.data.Dataset.from_tensors(self.batch).repeat()


def _timed_fit(model, training, batches, run_dir, warmup):
    """Trains one epoch of `batches`; steps/s after `warmup` steps (tracing excluded)."""
    from tfrec.training.trainer import Trainer

    stamps = []
    trainer = Trainer(model, training, run_dir)
    rows = trainer.fit(batches, epochs=1, on_step_end=lambda step: stamps.append(time.perf_counter()))
    timed = stamps[warmup:]
    rate = (len(timed) - 1) / (timed[-1] - timed[0]) if len(timed) > 1 else float("nan")
    return rate, rows[-1]["loss"], stamps[-1] - stamps[0]


def run(rows: int, steps: int, files: int, data: str | None, warmup: int, keep: bool) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result: dict = {"machine": machine_info(), "rows": rows, "steps": steps}
    folder = data or tempfile.mkdtemp(prefix="tfrec-out-of-core-")
    scratch = tempfile.mkdtemp(prefix="tfrec-out-of-core-run-")
    try:
        result["hwm_resettable"] = _reset_hwm()
        t0 = time.time()
        if not (data and os.path.isdir(data) and os.listdir(data)):
            result["data"] = generate(rows, folder, files)
        result["generate_seconds"] = round(time.time() - t0, 1)
        result["generate_peak_rss_mb"] = _hwm_mb()

        from tfrec.data.streaming_stats import collect_statistics
        from tfrec.jobs.config import JobConfig

        config = JobConfig.from_yaml(os.path.join(ROOT, "training/configs/quickstart.yaml"))
        training = config.training
        training.verbose, training.tensorboard, training.early_stopping_patience = 0, False, 0
        training.checkpoint_every_steps = 0
        s = schema()
        _reset_hwm()
        t0 = time.time()
        stats = collect_statistics(folder, s)
        result["stats_seconds"] = round(time.time() - t0, 1)
        result["stats_rows_per_second"] = round(stats.rows / max(time.time() - t0, 1e-9))
        result["stats_peak_rss_mb"] = _hwm_mb()
        result["rows_used"] = stats.rows
        result["vocabulary_sizes"] = {c: len(v) for c, v in stats.counts.items()}
        result["texts_truncated"] = stats.texts_truncated

        import keras
        import tensorflow as tf

        from tfrec.models.builder import build_model
        from tfrec.training.epoch_data import StreamBatches

        _reset_hwm()
        t0 = time.time()
        keras.utils.set_random_seed(training.seed)
        model = build_model(s, config.model, statistics=stats)
        result["build_seconds"] = round(time.time() - t0, 1)
        batch = training.batch_size
        result["batch_size"] = batch
        stream = StreamBatches.from_statistics(
            stats, batch, steps_per_epoch=steps, seed=training.seed, shuffle_buffer=training.shuffle_buffer
        )
        t0 = time.time()
        rate_files, loss_files, _ = _timed_fit(model, training, stream, os.path.join(scratch, "files"), warmup)
        result["train_files_seconds"] = round(time.time() - t0, 1)
        result["train_peak_rss_mb"] = _hwm_mb()
        one = next(iter(stream.dataset(0)))
        cached = CachedBatch(tf.nest.map_structure(tf.identity, one), batch, steps)
        t0 = time.time()
        rate_cached, loss_cached, _ = _timed_fit(model, training, cached, os.path.join(scratch, "cached"), warmup)
        result["train_cached_seconds"] = round(time.time() - t0, 1)
        result["steps_per_second_files"] = round(rate_files, 3)
        result["steps_per_second_cached"] = round(rate_cached, 3)
        result["files_over_cached"] = round(rate_files / rate_cached, 3)
        result["input_not_bottleneck"] = bool(rate_files >= 0.9 * rate_cached)
        result["final_loss_files"] = round(float(loss_files), 4)
        result["final_loss_cached"] = round(float(loss_cached), 4)
        result["peak_rss_mb"] = _peak_mb()
        result["peak_rss_under_4gb"] = bool(max(result["peak_rss_mb"], result.get("generate_peak_rss_mb") or 0) < 4096)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if data is None and not keep:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000, help="impressions to generate")
    parser.add_argument("--steps", type=int, default=2000, help="training steps from the files and from the cache")
    parser.add_argument("--files", type=int, default=32, help="parquet files (shards) of the log")
    parser.add_argument("--warmup", type=int, default=None, help="steps left out of the timing (default 5%%, >= 3)")
    parser.add_argument("--data", default=None, help="folder of the log: reused if it holds files, else written")
    parser.add_argument("--keep", action="store_true", help="keep the generated log (with a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 30 steps, 8 files")
    parser.add_argument("--out", default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.steps, args.files = 200_000, 30, 8
    warmup = args.warmup if args.warmup is not None else max(3, args.steps // 20)
    result = run(args.rows, args.steps, args.files, args.data, warmup, args.keep)
    result["quick"] = bool(args.quick)
    emit(result, args.out)
    return result


if __name__ == "__main__":
    main()
