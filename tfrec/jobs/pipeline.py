"""The one job skeleton: read -> validate -> split -> build+train -> evaluate -> export -> summary.

A job is `run_pipeline(source, config)` with a `Source` plug-in that says
where the data comes from and how it is scored; the skeleton does the rest,
the same way for every source: it writes the resolved `config.yaml`, trains
(`tfrec.training.train_model`, resumable, `history.csv`), keeps
`model.keras`, writes `metrics.json` (the source's metrics, row accounting,
split, training time and history), lets the source write its report,
artifacts and summary, exports where the source does, and re-evaluates a
finished run directory (`evaluate_run_dir`, behind `tfrec evaluate`).

The plug-ins: `tfrec.jobs.simulated.SimulatorSource` (the embedded
simulator) and `tfrec.jobs.files.FilesSource` (the user's files, shaped
search, interactions or transactions).

Example:

```python
from tfrec.jobs.files import FilesSource

result = run_pipeline(FilesSource(), JobConfig.from_yaml("training/configs/transactions.yaml"))
result["metrics"]["value"]["model"]["normalized_gini"]
```
"""

from __future__ import annotations

import os
import time

from tfrec.console import log
from tfrec.evaluation.result import EvaluationResult
from tfrec.evaluation.summary import write_metrics


class Source:
    """A job's data plug-in; the skeleton calls these in order (see `run_pipeline`).

    `read`/`load` return the source's data object, which has at least
    `schema`, `train` and `valid` (what training needs).
    """

    def resolve(self, config):
        """The config the run directory records (checked, made self-contained)."""
        return config

    def read(self, config, out_dir):
        """Reads, validates and splits the data, saying what it did; `out_dir` is None on non-chief workers."""
        raise NotImplementedError

    def load(self, config):
        """The same data as `read`, silently (to re-evaluate a run)."""
        raise NotImplementedError

    def train_config(self, config, data):
        """The config training gets (a source may adapt the model to its data)."""
        return config

    def epoch_metrics(self, config, data):
        """A function `model -> {name: value}` of validation metrics after every epoch, or None."""
        return None

    def log_trained(self, data, history, train_seconds, model_path):
        """Says how training went."""

    def evaluate(self, model, data, config) -> EvaluationResult:
        raise NotImplementedError

    def run_metrics(self, data) -> dict:
        """What `metrics.json` records about the data beside the metrics (rows, split, ...)."""
        return {}

    def add_metrics(self, metrics, config):
        """Adds what the source judges from the metrics (e.g. acceptance targets) to `metrics`."""

    def finish(self, model, data, result, metrics, config, out_dir):
        """Writes the report and the artifacts and prints the summary, after `metrics.json`."""

    def export(self, model, data, metrics, config, out_dir):
        """Exports for serving where the source does; returns the export (or None) and may add to `metrics`."""
        return

    def results(self, model, metrics, data, config, export=None, evaluation=None) -> dict:
        """What `run_pipeline` returns."""
        return {"model": model, "metrics": metrics, "data": data, "config": config}

    def evaluate_again(self, model, data, config, run_dir, output_dir, verbose):
        """Writes a finished run's recomputed metrics and report to `output_dir`; returns them."""
        raise NotImplementedError


def train(config, schema, train_df, valid_df, run_dir=None, epoch_metrics=None):
    """Builds and trains the model (`tfrec.training.train_model`); returns (model, history).

    `model` lives outside any distribution strategy (None on non-chief
    workers of a multi-worker job). With `run_dir` the run directory gets the
    model, backups, checkpoints, `history.csv` and TensorBoard logs, and a
    restarted job resumes where it stopped.
    """
    from tfrec.training.job import train_model

    return train_model(config, schema, train_df, valid_df, run_dir=run_dir, epoch_metrics=epoch_metrics)


def history_dict(history) -> dict:
    """`{metric: [per epoch]}` of a training history, JSON-able (None where an epoch has no value)."""
    return {k: [None if v is None else float(v) for v in vals] for k, vals in getattr(history, "history", {}).items()}


def run_pipeline(source: Source, config) -> dict:
    """Runs the job of `config` on `source`'s data; writes the run directory; returns `source.results(...)`."""
    from tfrec.training.cluster import cluster_task

    t0 = time.time()
    config = source.resolve(config)
    out_dir = config.output_dir
    chief = cluster_task().is_chief  # in multi-worker jobs only the chief writes
    if chief:
        os.makedirs(out_dir, exist_ok=True)
        config.to_yaml(os.path.join(out_dir, "config.yaml"))
    data = source.read(config, out_dir if chief else None)
    t_train = time.time()
    train_config = source.train_config(config, data)
    model, history = train(
        train_config,
        data.schema,
        data.train,
        data.valid,
        run_dir=out_dir,
        epoch_metrics=source.epoch_metrics(train_config, data),
    )
    train_seconds = time.time() - t_train
    if model is None:
        log("training done on this non-chief worker; the chief evaluates and writes the run directory")
        return source.results(None, None, data, config)
    model_path = os.path.join(out_dir, "model.keras")
    if not os.path.exists(model_path):
        model.save(model_path)
    source.log_trained(data, history, train_seconds, model_path)
    result = source.evaluate(model, data, config)
    metrics = {
        **result.metrics,
        **source.run_metrics(data),
        "train_seconds": train_seconds,
        "history": history_dict(history),
    }
    source.add_metrics(metrics, config)
    write_metrics(metrics, out_dir)
    source.finish(model, data, result, metrics, config, out_dir)
    export = source.export(model, data, metrics, config, out_dir)
    if export is not None:
        write_metrics(metrics, out_dir)  # with what the export added
    log(f"done in {time.time() - t0:.0f}s; run directory {out_dir}")
    return source.results(model, metrics, data, config, export, result)


def load_run_model(run_dir):
    """The trained model of a run directory (`model.keras`)."""
    import keras

    import tfrec.models  # noqa: F401  (registers the layers for loading)

    path = os.path.join(run_dir, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"run directory {run_dir!r} has no model.keras (did training finish?)")
    return keras.models.load_model(path)


def evaluate_run_dir(source: Source, config, run_dir, output_dir=None, verbose: bool = True):
    """Reloads a run's model, draws its data again from `config` and re-evaluates it (see `Source.evaluate_again`)."""
    model = load_run_model(run_dir)
    data = source.load(config)
    return source.evaluate_again(model, data, config, run_dir, output_dir or run_dir, verbose)
