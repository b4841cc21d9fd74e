"""Hyperparameter search with KerasTuner over a job's config keys (`tfrec tune`).

* `space.py`: the search space YAML (`SearchSpace`), checked against the job
  config, and `apply_values` (a trial's values into the job mapping);
* `objective.py`: the metric of `metrics.json` the search optimises (`Objective`);
* `tuner.py`: `JobTuner` (a `keras_tuner.Tuner` running one job per trial) and `tune`;
* `report.py`: `summary.html` and `summary.png` of the trials.

Importing this package loads neither TensorFlow nor KerasTuner; `tune` does.

Example:

```python
from tfrec.tuning import tune

result = tune("training/configs/quickstart.yaml", "space.yaml", trials=8, algorithm="random")
```
"""

from tfrec.lazy_exports import lazy_getattr

_LAZY = {
    "SearchSpace": "tfrec.tuning.space",
    "SearchSpaceError": "tfrec.tuning.space",
    "apply_values": "tfrec.tuning.space",
    "Objective": "tfrec.tuning.objective",
    "default_objective": "tfrec.tuning.objective",
    "JobTuner": "tfrec.tuning.tuner",
    "TuneResult": "tfrec.tuning.tuner",
    "tune": "tfrec.tuning.tuner",
    "write_summary": "tfrec.tuning.report",
}
__getattr__ = lazy_getattr(__name__, _LAZY)
__all__ = list(_LAZY)
