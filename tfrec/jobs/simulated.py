"""The main job on the embedded default data: simulate, train, evaluate.

Each step prints what it did; the evaluation puts the model beside the oracle
(the simulator's planted truth: the best achievable) and a popularity
baseline, for CTR, retrieval, user value and business value (expected clicks
and revenue per 1,000 queries), printed as a summary and written to
`metrics.json` and the HTML report `report.html` (`tfrec.evaluation`).

Example:

```python
results = run(JobConfig.from_yaml("training/configs/quickstart.yaml"))
results["metrics"]["retrieval"]["model"]["recall@50"]
```
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import tensorflow as tf

from tfrec.console import log as _log
from tfrec.data.pipeline import RowAccounting
from tfrec.data.simulator import SimulatedData, simulate
from tfrec.data.split import time_split
from tfrec.data.validation import validate
from tfrec.evaluation.metric_sets import ctr_metrics, ranking_metrics, value_metrics
from tfrec.evaluation.report import write_report
from tfrec.evaluation.result import EvaluationResult
from tfrec.evaluation.simulated import ctr_scores, evaluate_simulated, retrieval_ranks, value_scores
from tfrec.evaluation.summary import print_summary as _print_summary
from tfrec.jobs.config import JobConfig
from tfrec.models.inference import predict_dataframe
from tfrec.training.job import HOLDOUT_BUCKETS  # the value-label mask's user split


def holdout_users(user_ids, fraction) -> np.ndarray:
    """Users whose value label training never sees (stable hash of the id)."""
    buckets = tf.strings.to_hash_bucket_fast(np.asarray(user_ids, dtype=object).astype(str), HOLDOUT_BUCKETS)
    return buckets.numpy() < int(round(fraction * HOLDOUT_BUCKETS))


def train(config: JobConfig, schema, train_df, valid_df, run_dir=None):
    """Builds and trains the model (`tfrec.training.train_model`); returns (model, history).

    `model` lives outside any distribution strategy (None on non-chief
    workers of a multi-worker job). With `run_dir` the run directory gets the
    model, backups, checkpoints, `history.csv` and TensorBoard logs, and a
    restarted job resumes where it stopped.
    """
    from tfrec.training.job import train_model

    return train_model(config, schema, train_df, valid_df, run_dir=run_dir)


# ------------------------------------------------------------------ evaluation
# The scorers live in tfrec.evaluation.simulated; these keep the job's API.
def evaluate_ctr(model, sim: SimulatedData, train_df, test_df):
    """CTR metrics of the model, the oracle and the item-CTR x position baseline."""
    return ctr_metrics(test_df.click.to_numpy(), ctr_scores(model, train_df, test_df))


def evaluate_retrieval(model, sim: SimulatedData, train_df, test_df, ks, max_queries, seed=0):
    """Recall@K, NDCG@K and MRR over the whole catalog: model, oracle, popularity."""
    ranks = retrieval_ranks(model, sim, train_df, test_df, max_queries, seed)
    return {**ranking_metrics(ranks, ks), "queries": int(len(ranks["model"]))}


def evaluate_value(model, sim: SimulatedData, fraction):
    """User-value metrics on the users whose value label training never saw."""
    held = holdout_users(sim.users.user_id, fraction) if fraction > 0 else None
    y, scores = value_scores(model, sim, held)
    return {**value_metrics(y, scores), "users": int(len(y))}


def evaluate(model, sim: SimulatedData, split, config: JobConfig) -> EvaluationResult:
    """Every evaluation section (CTR, user value, retrieval, business value) for a job's config."""
    fraction = config.training.value_holdout_fraction
    held = holdout_users(sim.users.user_id, fraction) if fraction > 0 else None
    return evaluate_simulated(model, sim, split, ks=config.evaluation.ks,
                              max_queries=config.evaluation.max_queries, value_holdout=held)


def print_summary(metrics, ks):
    _print_summary(metrics, ks)


def targets(metrics, ks):
    """The quickstart's acceptance targets, each with its measured numbers."""
    ctr, ret, val = metrics["ctr"], metrics["retrieval"], metrics["value"]
    k = 50 if 50 in ks else ks[len(ks) // 2]
    return {
        "ctr_auc_within_0.03_of_oracle": ctr["oracle"]["auc"] - ctr["model"]["auc"] <= 0.03,
        f"recall@{k}_at_least_2x_popularity": ret["model"][f"recall@{k}"] >= 2 * ret["popularity"][f"recall@{k}"],
        "value_gini_at_least_0.8_of_oracle":
            val["model"]["normalized_gini"] >= 0.8 * val["oracle"]["normalized_gini"],
    }


def serve_and_query(model, base_dir, model_name, test_df, sim, num_queries=3, k=5):
    """Starts the local gRPC server on the export, queries it, checks it against the model."""
    from tfrec.export.saved_model import example_inputs
    from tfrec.serving.client import ServingClient
    from tfrec.serving.server import LocalModelServer

    server = LocalModelServer(base_dir, model_name=model_name, port=0).start()
    try:
        _log(f"serving {model_name} version {max(server.servables)} on 127.0.0.1:{server.port} (gRPC, TF Serving API)")
        with ServingClient(f"127.0.0.1:{server.port}", model_name=model_name, timeout=30) as client:
            rows = test_df[test_df.click == 1].drop_duplicates("query").head(num_queries)
            top = client.retrieve(rows, k=k)
            titles = sim.items.set_index("item_id").item_title
            for row, (_, r) in zip(rows.index, rows.iterrows()):
                got = top[top.row == row]
                print(f'  query "{r["query"]}" (user {r["user_id"]}, clicked "{r["item_title"]}"):')
                for _, hit in got.iterrows():
                    mark = "  <- clicked" if hit.item_id == r["item_id"] else ""
                    print(f"    {hit['rank']}. {titles.get(hit.item_id, hit.item_id)}  ({hit.score:.3f}){mark}")
            sample = test_df.head(256)
            served = client.predict("score", example_inputs(model, sample)["score"])
            local = predict_dataframe(model, sample.drop(columns=[model.schema.position]
                                                         if model.schema.position else []))
            diff = max(float(np.abs(served[key] - local[key]).max()) for key in ("ctr", "score", "user_value"))
            _log(f"served score on {len(sample)} rows matches the in-process model: max |diff| {diff:.2e}")
            return {"port": server.port, "version": int(max(server.servables)), "max_abs_diff": diff}
    finally:
        server.stop()


def run(config: JobConfig) -> dict:
    """Simulate, validate, split, train, evaluate; write the run directory."""
    t0 = time.time()
    out_dir = config.output_dir
    from tfrec.training.cluster import cluster_task

    if cluster_task().is_chief:  # in multi-worker jobs only the chief writes
        os.makedirs(out_dir, exist_ok=True)
        config.to_yaml(os.path.join(out_dir, "config.yaml"))
    _log(f"simulating {config.simulator.num_sessions} sessions x {config.simulator.slate_size} slots, "
         f"{config.simulator.num_users} users, {config.simulator.num_items} items (seed {config.simulator.seed})")
    sim = simulate(config.simulator)
    schema = sim.schema()
    acc = RowAccounting()
    report = validate(sim.impressions, schema)
    acc.add(report)
    _log("validated: " + acc.summary().replace("\n", "; "))
    split = time_split(report.valid, schema, valid_fraction=config.valid_fraction,
                       test_fraction=config.test_fraction)
    _log(f"time split: {split.sizes()} (valid from {split.valid_start}, test from {split.test_start})")
    t_train = time.time()
    model, history = train(config, schema, split.train, split.valid, run_dir=out_dir)
    train_seconds = time.time() - t_train
    if model is None:
        _log("training done on this non-chief worker; the chief evaluates and writes the run directory")
        return {"model": None, "metrics": None, "sim": sim, "split": split, "schema": schema, "export": None}
    _log(f"trained {len(history.rows)} epoch(s) in {train_seconds:.0f}s "
         f"({len(split.train) * len(history.rows) / train_seconds:.0f} examples/s)")
    model_path = os.path.join(out_dir, "model.keras")
    _log(f"saved {model_path} ({os.path.getsize(model_path) / 1e6:.1f} MB)")
    ks = list(config.evaluation.ks)
    evaluation = evaluate(model, sim, split, config)
    metrics = {
        **evaluation.metrics,
        "rows": acc.to_dict(),
        "split": split.sizes(),
        "train_seconds": train_seconds,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    }
    metrics["targets"] = targets(metrics, ks)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, default=float)
    print_summary(metrics, ks)
    for name, ok in metrics["targets"].items():
        print(f"  target {name}: {'met' if ok else 'NOT met'}")
    report_path = write_report(evaluation, os.path.join(out_dir, "report.html"),
                               title=f"tfrec evaluation: {os.path.basename(os.path.normpath(out_dir))}")
    _log(f"wrote the evaluation report {report_path}")
    # The catalog and a few rows travel with the run, for `tfrec export` and clients.
    sim.items.to_parquet(os.path.join(out_dir, "catalog.parquet"), index=False)
    split.test.head(64).to_parquet(os.path.join(out_dir, "examples.parquet"), index=False)
    export = None
    if config.export.enabled:
        from tfrec.export import export_model

        base_dir = config.export.base_dir or os.path.join(out_dir, "models")
        export = export_model(
            model, base_dir, catalog=sim.items, model_name=config.export.model_name,
            max_k=config.export.max_k, keep_versions=config.export.keep_versions,
            examples=split.test.head(8), training_config=config.to_dict(),
            metrics={k: metrics[k] for k in ("ctr", "retrieval", "value")}, verbose=False,
        )
        _log(f"exported for TF Serving: {export.path} ({export.size_bytes / 1e6:.1f} MB, "
             f"{export.export_seconds:.1f}s; cold load {export.load_seconds:.1f}s)")
        metrics["serving"] = serve_and_query(model, base_dir, config.export.model_name, split.test, sim)
        metrics["export"] = {"path": export.path, "version": export.version, "size_bytes": export.size_bytes,
                             "export_seconds": export.export_seconds, "load_seconds": export.load_seconds}
        with open(os.path.join(out_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2, default=float)
    _log(f"done in {time.time() - t0:.0f}s; run directory {out_dir}")
    return {"model": model, "metrics": metrics, "sim": sim, "split": split, "schema": schema, "export": export,
            "evaluation": evaluation}
