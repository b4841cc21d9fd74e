"""The job on the user's own tables: read, validate, prepare, split, train, evaluate.

`FilesSource` is the files plug-in on the job skeleton (`tfrec.jobs.pipeline`):
it reads the CSV/parquet files of `config.data.paths` with the column mapping
`config.data.schema`, validated with row accounting and prepared for
`config.data.shape` (`tfrec.data.tables.load_data`), and evaluates the model
beside baselines that are always printed with it (`tfrec.evaluation.tables`).

The run directory gets `model.keras`, `metrics.json`, `history.csv`, the
resolved `config.yaml` (schema inline, absolute paths), `report.html`,
`test.parquet`, `examples.parquet`, `catalog.parquet` (with items) and
`rejected.parquet` (rows rejected, with reason and file).
`tfrec.jobs.evaluate.evaluate_run(run_dir)` reloads the model and the data
of a run and recomputes `metrics.json`.

Example:

```python
config = JobConfig.from_yaml("training/configs/transactions.yaml")
result = run(config)
result["metrics"]["value"]["model"]["normalized_gini"]
```
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os

from tfrec.console import log as _log
from tfrec.data import shapes as S
from tfrec.data.readers import Tables
from tfrec.data.tables import check_files_config, load_data, resolve_schema
from tfrec.evaluation.report import write_report
from tfrec.evaluation.result import EvaluationResult
from tfrec.evaluation.summary import summary_lines, write_metrics
from tfrec.evaluation.tables import evaluate_tables, report_view
from tfrec.jobs.config import JobConfig
from tfrec.jobs.pipeline import Source, run_pipeline


def resolved_config(config: JobConfig) -> JobConfig:
    """A copy with the schema inline and the data paths absolute, so the run directory is self-contained."""
    config = copy.deepcopy(config)
    schema = resolve_schema(config.data.schema)
    config.data.schema = {**schema.to_dict(), "history_length": schema.history_length}
    config.data.paths = [p if os.path.isabs(p) else os.path.abspath(p) for p in config.data.paths]
    return config


def model_config_for(config: JobConfig, shape: str) -> JobConfig:
    """The job config checked against what the shape's model needs.

    (A transactions table gets a `UserValueModel`, whose value head always
    trains the user profile: `build_model` ignores `value_detach_profile` there.)
    """
    if shape == "transactions" and config.model.loss_weights["value"] <= 0:
        raise ValueError("model.loss_weights.value must be > 0 for data.shape 'transactions'")
    return config


@dataclasses.dataclass
class FilesData:
    """The prepared splits of the user's files and the tables they came from (files, row accounting)."""

    prepared: S.PreparedData
    tables: Tables

    @property
    def schema(self):
        return self.prepared.schema

    @property
    def train(self):
        return self.prepared.train

    @property
    def valid(self):
        return self.prepared.valid


class FilesSource(Source):
    """The files plug-in: `config.data`'s tables in the shape `search`, `interactions` or `transactions`."""

    def resolve(self, config):
        check_files_config(config.data)
        return resolved_config(config)

    def load(self, config):
        prepared, tables = load_data(
            config.data, valid_fraction=config.valid_fraction, test_fraction=config.test_fraction
        )
        return FilesData(prepared, tables)

    def read(self, config, out_dir):
        data = self.load(config)
        tables, prepared = data.tables, data.prepared
        _log(f"read {len(tables.files)} file(s): " + tables.accounting.summary().replace("\n", "; "))
        for warning in tables.warnings():  # header-only files, duplicated rows (as `tfrec validate` prints)
            _log(f"warning: {warning}")
        if len(tables.rejected) and out_dir is not None:
            tables.rejected.to_parquet(os.path.join(out_dir, "rejected.parquet"), index=False)
        choice = prepared.info.get("train_label_choice")
        _log(
            f"{prepared.shape}: split {prepared.sizes()} "
            f"{ ({k: v for k, v in prepared.info.items() if k not in ('user_id', 'train_label_choice')}) }"
        )
        if choice:
            _log(choice)
        return data

    def train_config(self, config, data):
        return model_config_for(config, data.prepared.shape)

    def epoch_metrics(self, config, data):
        """NDCG@K per validation query after every epoch, for search tables (`val_ndcg@K`)."""
        monitor = config.training.monitor
        wants = monitor.startswith("val_ndcg@")
        if data.prepared.shape != "search":
            if wants:
                raise ValueError(
                    f"training.monitor {monitor!r} needs search tables (queries to rank); "
                    f"this job's shape is {data.prepared.shape!r}: use 'val_loss'"
                )
            return None
        from tfrec.evaluation.validation import ranking_validation

        k = int(monitor.split("@")[1]) if wants else 10
        return ranking_validation(data.schema, data.valid, k=k, min_rows=config.data.min_query_rows)

    def log_trained(self, data, history, train_seconds, model_path):
        _log(f"trained in {train_seconds:.0f}s; model {model_path}")

    def evaluate(self, model, data, config) -> EvaluationResult:
        tables, prepared = data.tables, data.prepared
        accounting = tables.accounting
        context = {
            "data": ", ".join(tables.files),
            "shape": prepared.shape,
            "split": prepared.sizes(),
            "rows": f"{accounting.rows_read:,} read, {accounting.rows_used:,} used, "
            f"{accounting.rows_rejected:,} rejected",
        }
        from tfrec.models.text_cache import cache_table_texts

        cache_table_texts(model, prepared.test)  # a frozen encoder encodes each test text once
        return evaluate_tables(
            model,
            prepared,
            config.evaluation.ks,
            config.evaluation.max_queries,
            seed=config.data.seed,
            min_query_rows=config.data.min_query_rows,
            context=context,
        )

    def run_metrics(self, data) -> dict:
        prepared, tables = data.prepared, data.tables
        return {
            "shape": prepared.shape,
            "rows": tables.accounting.to_dict(),
            "split": prepared.sizes(),
            "split_info": prepared.info,
            "files": tables.files,
        }

    def _report(self, result, data, directory):
        path = write_report(
            report_view(result),
            os.path.join(directory, "report.html"),
            title=f"tfrec evaluation: {data.prepared.shape} data",
        )
        _log(f"wrote {path}")

    def finish(self, model, data, result, metrics, config, out_dir):
        self._report(result, data, out_dir)
        test = data.prepared.test
        test.to_parquet(os.path.join(out_dir, "test.parquet"), index=False)
        test.head(64).to_parquet(os.path.join(out_dir, "examples.parquet"), index=False)
        if data.prepared.catalog is not None:
            data.prepared.catalog.to_parquet(os.path.join(out_dir, "catalog.parquet"), index=False)
        print("\n".join(summary_lines(metrics)), flush=True)

    def results(self, model, metrics, data, config, export=None, evaluation=None) -> dict:
        return {"model": model, "metrics": metrics, "data": data.prepared, "tables": data.tables, "config": config}

    def evaluate_again(self, model, data, config, run_dir, output_dir, verbose):
        """Writes `metrics.json` (keeping the run's training history and timings) and `report.html`; returns it."""
        result = self.evaluate(model, data, config)
        metrics = dict(result.metrics)
        previous = {}
        old_path = os.path.join(run_dir, "metrics.json")
        if os.path.exists(old_path):
            with open(old_path) as f:
                previous = json.load(f)
        metrics.update({k: v for k, v in previous.items() if k in ("train_seconds", "history")})
        metrics.update(self.run_metrics(data))
        os.makedirs(output_dir, exist_ok=True)
        write_metrics(metrics, output_dir)
        self._report(result, data, output_dir)
        print("\n".join(summary_lines(metrics)), flush=True)
        return metrics


def run(config: JobConfig) -> dict:
    """Read, validate, prepare, split, train, evaluate; write the run directory.

    Returns `{"model", "metrics", "data", "tables", "config"}`.
    """
    return run_pipeline(FilesSource(), config)
