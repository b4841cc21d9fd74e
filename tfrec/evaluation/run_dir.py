"""`tfrec evaluate`: re-evaluate a run directory and write `metrics.json` and `report.html`.

A run directory holds `model.keras` and the resolved `config.yaml`. The
simulator is deterministic by seed, so for simulator runs (no `data` section,
or `data.source: simulator`) the exact data and split are drawn again from
the config; runs on the user's own files (`data.source: files`) are handed to
`tfrec.jobs.tables.evaluate_run`.

Example:

```python
result = evaluate_run("runs/quickstart", output_dir="runs/quickstart/eval")
result.metrics["business"]["model"]["revenue@10"]
```
"""

from __future__ import annotations

import json
import os

import yaml


def _read_config(run_dir) -> dict:
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"run directory {run_dir!r} has no config.yaml (not a tfrec run directory?)")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a mapping, got {type(raw).__name__}")
    return raw


def data_source(raw_config: dict) -> str:
    """`simulator` or `files`: where a run's data came from (no `data` section = simulator)."""
    data = raw_config.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError(f"config.yaml: 'data' must be a mapping, got {type(data).__name__}")
    source = data.get("source") or "simulator"
    if source not in ("simulator", "files"):
        raise ValueError(f"config.yaml: data.source must be 'simulator' or 'files', got {source!r}")
    return source


def load_run_model(run_dir):
    """The trained model of a run directory (`model.keras`)."""
    import keras

    import tfrec.models  # noqa: F401  (registers the layers for loading)

    path = os.path.join(run_dir, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"run directory {run_dir!r} has no model.keras (did training finish?)")
    return keras.models.load_model(path)


def evaluate_run(run_dir, output_dir=None, verbose: bool = True):
    """Re-evaluates a run; writes `metrics.json` and `report.html` to `output_dir` (default the run directory).

    Returns the `EvaluationResult` (simulator runs) or what
    `tfrec.jobs.tables.evaluate_run` returns (file runs).
    """
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory not found: {run_dir!r}")
    raw = _read_config(run_dir)
    output_dir = output_dir or run_dir
    if data_source(raw) == "files":
        try:
            from tfrec.jobs.tables import evaluate_run as evaluate_tables_run
        except ImportError as e:
            raise ValueError(f"run {run_dir!r} was trained on files (data.source: files), but this version of "
                             f"tfrec cannot evaluate such runs yet (tfrec.jobs.tables.evaluate_run: {e})") from e
        return evaluate_tables_run(run_dir, output_dir)
    return _evaluate_simulator_run(run_dir, raw, output_dir, verbose)


def _evaluate_simulator_run(run_dir, raw, output_dir, verbose):
    from tfrec.data.simulator import simulate
    from tfrec.data.split import time_split
    from tfrec.data.validation import validate
    from tfrec.evaluation.report import write_report
    from tfrec.evaluation.summary import format_summary
    from tfrec.jobs.config import JobConfig
    from tfrec.jobs.simulated import evaluate

    config = JobConfig.from_dict(raw)
    model = load_run_model(run_dir)
    sim = simulate(config.simulator)
    valid = validate(sim.impressions, sim.schema()).valid
    split = time_split(valid, sim.schema(), valid_fraction=config.valid_fraction,
                       test_fraction=config.test_fraction)
    result = evaluate(model, sim, split, config)
    result.context["run directory"] = os.path.abspath(run_dir)
    os.makedirs(output_dir, exist_ok=True)
    metrics_path = os.path.join(output_dir, "metrics.json")
    previous = {}
    if os.path.isfile(metrics_path):  # keep what the job wrote (rows, history, export, serving)
        with open(metrics_path, encoding="utf-8") as f:
            previous = json.load(f)
    with open(metrics_path, "w", encoding="utf-8") as f:
        json.dump({**previous, **result.metrics, "split": split.sizes()}, f, indent=2, default=float)
    name = os.path.basename(os.path.normpath(run_dir))
    report_path = write_report(result, os.path.join(output_dir, "report.html"), title=f"tfrec evaluation: {name}")
    if verbose:
        print(format_summary(result.metrics, result.ks), flush=True)
        print(f"\nwrote {metrics_path} and {report_path}", flush=True)
    return result
