"""Where this process stands in a training cluster, read from `TF_CONFIG`.

In a multi-worker job every worker runs the same command; only the chief
writes the model, checkpoints, logs and reports. The chief is the task of
type `chief`, or worker 0 when the cluster has no `chief` entry (the
convention of `tf.distribute` and Keras).

Example:

```python
task = cluster_task()
if task.is_chief:
    model.save(path)
```
"""

from __future__ import annotations

import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's role: `task_type`, `task_index`, `num_workers`, `is_chief`."""

    task_type: str | None = None
    task_index: int = 0
    num_workers: int = 1

    @property
    def is_chief(self) -> bool:
        if self.task_type is None or self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self._has_chief

    _has_chief: bool = False

    def describe(self) -> str:
        if self.task_type is None:
            return "single process"
        role = "chief" if self.is_chief else "non-chief"
        return f"{self.task_type} {self.task_index} of {self.num_workers} ({role})"


def cluster_task(environ=None) -> ClusterTask:
    """The `ClusterTask` described by `TF_CONFIG` (a single process when unset)."""
    raw = (environ or os.environ).get("TF_CONFIG")
    if not raw:
        return ClusterTask()
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    if "type" not in task or "index" not in task:
        raise ValueError(f"TF_CONFIG.task must have 'type' and 'index', got {task!r}")
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    if workers == 0:
        raise ValueError("TF_CONFIG.cluster names no 'worker' or 'chief' tasks")
    return ClusterTask(
        task_type=task["type"],
        task_index=int(task["index"]),
        num_workers=workers,
        _has_chief=bool(cluster.get("chief")),
    )
