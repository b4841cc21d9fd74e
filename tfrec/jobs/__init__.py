"""Jobs: whole runs from a `JobConfig` (data -> train -> evaluate -> export).

`run_job(config)` is the Python equivalent of `tfrec train --config FILE`:
the simulator job when `config.data.source == "simulator"`, the
bring-your-own-tables job when it is `"files"`.

Example:

```python
from tfrec.jobs import run_job
from tfrec.jobs.config import JobConfig

result = run_job(JobConfig.from_yaml("training/configs/quickstart.yaml"))
```
"""


def run_job(config) -> dict:
    """Runs the job `config` describes; returns its results (model, metrics, ...)."""
    if getattr(getattr(config, "data", None), "source", "simulator") == "files":
        from tfrec.jobs.tables import run
    else:
        from tfrec.jobs.simulated import run
    return run(config)


__all__ = ["run_job"]
