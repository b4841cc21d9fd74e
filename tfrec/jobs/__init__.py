"""Jobs: whole runs from a `JobConfig` (data -> train -> evaluate -> export).

Every job runs the one skeleton of `tfrec.jobs.pipeline` with a source
plug-in: `tfrec.jobs.simulated` (the embedded simulator) or
`tfrec.jobs.files` (the user's own tables). `run_job(config)` is the Python
equivalent of `tfrec train --config FILE`; `tfrec.jobs.evaluate.evaluate_run`
of `tfrec evaluate --run-dir R`.

Example:

```python
from tfrec.jobs import run_job
from tfrec.jobs.config import JobConfig

result = run_job(JobConfig.from_yaml("training/configs/quickstart.yaml"))
```
"""


def source_for(name: str):
    """The source plug-in of `data.source`: `simulator` or `files`."""
    if name == "files":
        from tfrec.jobs.files import FilesSource

        return FilesSource()
    if name == "simulator":
        from tfrec.jobs.simulated import SimulatorSource

        return SimulatorSource()
    raise ValueError(f"data.source must be 'simulator' or 'files', got {name!r}")


def run_job(config) -> dict:
    """Runs the job `config` describes; returns its results (model, metrics, ...)."""
    from tfrec.jobs.pipeline import run_pipeline

    source = getattr(getattr(config, "data", None), "source", "simulator") or "simulator"
    return run_pipeline(source_for(source), config)


__all__ = ["run_job", "source_for"]
