"""`tfrec evaluate`: re-evaluate a run directory and write `metrics.json` and `report.html`.

A run directory holds `model.keras` and the resolved `config.yaml`. Its data
are drawn again from the config by the job's source plug-in
(`tfrec.jobs.pipeline.evaluate_run_dir`): the simulator is deterministic by
seed, so simulator runs (no `data` section, or `data.source: simulator`) get
the exact data and split back; runs on the user's own files
(`data.source: files`) read and prepare the same files again.

Example:

```python
result = evaluate_run("runs/quickstart", output_dir="runs/quickstart/eval")
result.metrics["business"]["model"]["revenue@10"]
```
"""

from __future__ import annotations

import os

import yaml

from tfrec.jobs.config import JobConfig
from tfrec.jobs.pipeline import evaluate_run_dir


def read_run_config(run_dir) -> dict:
    """The raw mapping of `RUN_DIR/config.yaml` (errors name the file)."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"run directory {run_dir!r} has no config.yaml (not a tfrec run directory?)")
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a mapping, got {type(raw).__name__}")  # noqa: TRY004 (a config error: exit 2)
    return raw


def data_source(raw_config: dict) -> str:
    """`simulator` or `files`: where a run's data came from (no `data` section = simulator)."""
    data = raw_config.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError(f"config.yaml: 'data' must be a mapping, got {type(data).__name__}")  # noqa: TRY004 (a config error: exit 2)
    source = data.get("source") or "simulator"
    if source not in ("simulator", "files"):
        raise ValueError(f"config.yaml: data.source must be 'simulator' or 'files', got {source!r}")
    return source


def evaluate_run(run_dir, output_dir=None, verbose: bool = True):
    """Re-evaluates a run; writes `metrics.json` and `report.html` to `output_dir` (default the run directory).

    Returns the `EvaluationResult` (simulator runs) or the metrics dict (file runs).
    """
    from tfrec.jobs import source_for

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"run directory not found: {run_dir!r}")
    raw = read_run_config(run_dir)
    source = source_for(data_source(raw))
    return evaluate_run_dir(source, JobConfig.from_dict(raw), run_dir, output_dir or run_dir, verbose)
