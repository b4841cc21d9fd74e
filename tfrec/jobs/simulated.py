"""The main job on the embedded default data: simulate, train, evaluate, export, serve.

`SimulatorSource` is the simulator's plug-in on the job skeleton
(`tfrec.jobs.pipeline`). Each step prints what it did; the evaluation puts
the model beside the oracle (the simulator's planted truth: the best
achievable) and a popularity baseline, for CTR, retrieval, user value and
business value (expected clicks and revenue per 1,000 queries), printed as a
summary and written to `metrics.json` and the HTML report `report.html`
(`tfrec.evaluation`). With `export.enabled` the job exports the model for TF
Serving (`models/`), serves it over gRPC and checks the answers.

Example:

```python
results = run(JobConfig.from_yaml("training/configs/quickstart.yaml"))
results["metrics"]["retrieval"]["model"]["recall@50"]
```
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd

from tfrec.console import log as _log
from tfrec.data.simulator import SimulatedData, simulate
from tfrec.data.split import Split, holdout_mask, time_split
from tfrec.data.validation import RowAccounting, validate
from tfrec.evaluation.report import write_report
from tfrec.evaluation.result import EvaluationResult
from tfrec.evaluation.simulated import evaluate_simulated
from tfrec.evaluation.summary import format_summary, print_summary, write_metrics
from tfrec.jobs.config import JobConfig
from tfrec.jobs.pipeline import Source, run_pipeline
from tfrec.models.inference import predict_dataframe


@dataclasses.dataclass
class SimulatorData:
    """The simulated data of a job, validated and split by time."""

    sim: SimulatedData
    split: Split
    accounting: RowAccounting

    @property
    def schema(self):
        return self.sim.schema()

    @property
    def train(self) -> pd.DataFrame:
        return self.split.train

    @property
    def valid(self) -> pd.DataFrame:
        return self.split.valid


def targets(metrics, ks):
    """The quickstart's acceptance targets, each with its measured numbers."""
    ret = metrics["retrieval"]
    k = 50 if 50 in ks else ks[len(ks) // 2]
    out = {}
    if "ctr" in metrics:  # sections of tasks the model has
        ctr = metrics["ctr"]
        out["ctr_auc_within_0.03_of_oracle"] = ctr["oracle"]["auc"] - ctr["model"]["auc"] <= 0.03
    out[f"recall@{k}_at_least_2x_popularity"] = ret["model"][f"recall@{k}"] >= 2 * ret["popularity"][f"recall@{k}"]
    if "fusion" in metrics:
        fusion = metrics["fusion"]
        out["ranking_revenue_at_least_0.8_of_oracle"] = fusion["best_revenue_share"] >= 0.8
        out["ranking_revenue_within_10%_of_frontier_at_same_clicks"] = fusion["min_revenue_share_at_same_clicks"] >= 0.9
    if "value" in metrics:
        val = metrics["value"]
        out["value_gini_at_least_0.8_of_oracle"] = (
            val["model"]["normalized_gini"] >= 0.8 * val["oracle"]["normalized_gini"]
        )
    return out


def serve_and_query(model, base_dir, model_name, test_df, sim, num_queries=3, k=5):
    """Starts the local gRPC server on the export, queries it, checks it against the model."""
    from tfrec.export.saved_model import example_inputs
    from tfrec.serving.client import ServingClient
    from tfrec.serving.server import LocalModelServer

    server = LocalModelServer(base_dir, model_name=model_name, port=0, http_port=0).start()
    try:
        _log(
            f"serving {model_name} version {max(server.servables)} on 127.0.0.1:{server.port} (gRPC) and "
            f"http://127.0.0.1:{server.http_port}/v1/models/{model_name} (REST), TF Serving's APIs"
        )
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
            inputs = example_inputs(model, sample)["score"]
            served = client.predict("score", inputs)
            rest = _rest_predict(server.http_port, model_name, "score", inputs)
            local = predict_dataframe(
                model, sample.drop(columns=[model.schema.position] if model.schema.position else [])
            )
            keys = [key for key in ("ctr", "score", "user_value") if key in local]
            diff = max(float(np.abs(served[key] - local[key]).max()) for key in keys)
            rest_diff = max(float(np.abs(np.asarray(rest[key]) - local[key]).max()) for key in keys)
            _log(
                f"served score on {len(sample)} rows matches the in-process model: max |diff| {diff:.2e} (gRPC), "
                f"{rest_diff:.2e} (REST)"
            )
            return {
                "port": server.port,
                "rest_api_port": server.http_port,
                "version": int(max(server.servables)),
                "max_abs_diff": diff,
                "rest_max_abs_diff": rest_diff,
            }
    finally:
        server.stop()


def _rest_predict(port, model_name, signature, inputs):
    """TF Serving's REST `:predict` in columnar format (`inputs` -> `outputs`), over plain HTTP."""
    import json
    import urllib.request

    body = {
        "signature_name": signature,
        "inputs": {k: (v.astype(str) if v.dtype == object else v).tolist() for k, v in inputs.items()},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/models/{model_name}:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["outputs"]


class SimulatorSource(Source):
    """The simulator plug-in: `config.simulator`'s data, evaluated beside the oracle; exports and serves."""

    def read(self, config, out_dir):
        sc = config.simulator
        _log(
            f"simulating {sc.num_sessions} sessions x {sc.slate_size} slots, "
            f"{sc.num_users} users, {sc.num_items} items (seed {sc.seed})"
        )
        data = self.load(config)
        _log("validated: " + data.accounting.summary().replace("\n", "; "))
        split = data.split
        _log(f"time split: {split.sizes()} (valid from {split.valid_start}, test from {split.test_start})")
        return data

    def load(self, config):
        sim = simulate(config.simulator)
        schema = sim.schema()
        accounting = RowAccounting()
        report = validate(sim.impressions, schema)
        accounting.add(report)
        split = time_split(
            report.valid, schema, valid_fraction=config.valid_fraction, test_fraction=config.test_fraction
        )
        return SimulatorData(sim, split, accounting)

    def log_trained(self, data, history, train_seconds, model_path):
        _log(
            f"trained {len(history.rows)} epoch(s) in {train_seconds:.0f}s "
            f"({len(data.train) * len(history.rows) / train_seconds:.0f} examples/s)"
        )
        _log(f"saved {model_path} ({os.path.getsize(model_path) / 1e6:.1f} MB)")

    def evaluate(self, model, data, config) -> EvaluationResult:
        """Every evaluation section (CTR, user value, retrieval, business value), value on held-out users."""
        fraction = config.training.value_holdout_fraction
        held = holdout_mask(data.sim.users.user_id, fraction) if fraction > 0 else None
        return evaluate_simulated(
            model,
            data.sim,
            data.split,
            ks=config.evaluation.ks,
            max_queries=config.evaluation.max_queries,
            value_holdout=held,
        )

    def run_metrics(self, data) -> dict:
        return {"rows": data.accounting.to_dict(), "split": data.split.sizes()}

    def add_metrics(self, metrics, config):
        metrics["targets"] = targets(metrics, list(config.evaluation.ks))

    def finish(self, model, data, result, metrics, config, out_dir):
        print_summary(metrics, list(config.evaluation.ks))
        for name, ok in metrics["targets"].items():
            print(f"  target {name}: {'met' if ok else 'NOT met'}")
        report_path = write_report(
            result,
            os.path.join(out_dir, "report.html"),
            title=f"tfrec evaluation: {os.path.basename(os.path.normpath(out_dir))}",
        )
        _log(f"wrote the evaluation report {report_path}")
        # The catalog and a few rows travel with the run, for `tfrec export` and clients.
        data.sim.items.to_parquet(os.path.join(out_dir, "catalog.parquet"), index=False)
        data.split.test.head(64).to_parquet(os.path.join(out_dir, "examples.parquet"), index=False)

    def export(self, model, data, metrics, config, out_dir):
        if not config.export.enabled:
            return None
        from tfrec.export import export_model

        base_dir = config.export.base_dir or os.path.join(out_dir, "models")
        export = export_model(
            model,
            base_dir,
            catalog=data.sim.items,
            model_name=config.export.model_name,
            max_k=config.export.max_k,
            keep_versions=config.export.keep_versions,
            examples=data.split.test.head(8),
            training_config=config.to_dict(),
            metrics={k: metrics[k] for k in ("ctr", "retrieval", "value")},
            verbose=False,
        )
        _log(
            f"exported for TF Serving: {export.path} ({export.size_bytes / 1e6:.1f} MB, "
            f"{export.export_seconds:.1f}s; cold load {export.load_seconds:.1f}s)"
        )
        metrics["serving"] = serve_and_query(model, base_dir, config.export.model_name, data.split.test, data.sim)
        metrics["export"] = {
            "path": export.path,
            "version": export.version,
            "size_bytes": export.size_bytes,
            "export_seconds": export.export_seconds,
            "load_seconds": export.load_seconds,
        }
        return export

    def results(self, model, metrics, data, config, export=None, evaluation=None) -> dict:
        out = {
            "model": model,
            "metrics": metrics,
            "sim": data.sim,
            "split": data.split,
            "schema": data.schema,
            "export": export,
        }
        if model is not None:
            out["evaluation"] = evaluation
        return out

    def evaluate_again(self, model, data, config, run_dir, output_dir, verbose):
        """Writes `metrics.json` (over what the job wrote there) and `report.html`; returns the `EvaluationResult`."""
        result = self.evaluate(model, data, config)
        result.context["run directory"] = os.path.abspath(run_dir)
        os.makedirs(output_dir, exist_ok=True)
        metrics_path = os.path.join(output_dir, "metrics.json")
        previous = {}
        if os.path.isfile(metrics_path):  # keep what the job wrote (rows, history, export, serving)
            with open(metrics_path, encoding="utf-8") as f:
                previous = json.load(f)
        write_metrics({**previous, **result.metrics, "split": data.split.sizes()}, output_dir)
        name = os.path.basename(os.path.normpath(run_dir))
        report_path = write_report(result, os.path.join(output_dir, "report.html"), title=f"tfrec evaluation: {name}")
        if verbose:
            print(format_summary(result.metrics, result.ks), flush=True)
            print(f"\nwrote {metrics_path} and {report_path}", flush=True)
        return result


def run(config: JobConfig) -> dict:
    """Simulate, validate, split, train, evaluate, export; write the run directory (`tfrec quickstart`)."""
    return run_pipeline(SimulatorSource(), config)
