"""What a tuning search optimises: one metric of each trial's `metrics.json`, with its direction.

An objective is a dotted path into the run's `metrics.json`, optionally with
the direction after a colon:

* `retrieval.model.recall@50` (simulator jobs), `search.retrieval.model.recall@50`,
  `interactions.retrieval.model.recall@50`, `value.model.normalized_gini`
  (jobs on your own tables), `ctr.model.auc`, `search.query_ndcg.model.ndcg@10`:
  metrics of the test split;
* `history.val_loss`, `history.val_ndcg@10`: validation metrics per epoch;
  the best epoch counts (early stopping keeps that epoch's weights);
* `NAME:max` / `NAME:min` for a metric whose direction is not known.

The direction of the usual metrics is known (`recall@K`, `ndcg@K`, `mrr`,
`auc`, `normalized_gini`, `spearman`, ... are maximised; `log_loss`, `ece`,
`rmse`, `decile_mape` and losses minimised). `default_objective(job)` picks
the model's Recall@50 (or the `evaluation.ks` cut-off nearest below) for the
job's shape, and the normalised Gini of the value head for transactions.

Note: the test-split metrics of `metrics.json` then both choose the best
trial and report it, so the best trial's test numbers are optimistic; judge
`best.yaml` on fresh data, or tune on a validation metric (`history.val_loss`).

Example:

```python
objective = Objective.parse("retrieval.model.recall@50")        # direction max
objective.read({"retrieval": {"model": {"recall@50": 0.31}}})   # 0.31
Objective.parse("history.val_loss").read({"history": {"val_loss": [0.9, 0.7, 0.8]}})   # 0.7
```
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import re

__all__ = ["Objective", "ObjectiveError", "default_objective", "direction_of", "read_metrics"]

_MAX = {
    "recall",
    "ndcg",
    "val_ndcg",
    "mrr",
    "auc",
    "spend_auc",
    "normalized_gini",
    "gini",
    "spearman",
    "clicks",
    "revenue",
    "clicks_share_of_oracle",
    "revenue_share_of_oracle",
    "precision",
    "hit_rate",
}
_MIN = {"log_loss", "ece", "rmse", "mae", "mse", "decile_mape", "mape", "loss", "train_seconds", "seconds"}


class ObjectiveError(ValueError):
    """An objective that is unknown, has no known direction, or is missing from a run's metrics."""


def direction_of(name: str) -> str | None:
    """`max`, `min` or None (unknown) for the metric named by the last part of the dotted `name`."""
    last = re.sub(r"@[0-9]+$", "", name.rsplit(".", 1)[-1])
    if last in _MAX:
        return "max"
    if last in _MIN or last.endswith("_loss"):
        return "min"
    return None


@dataclasses.dataclass(frozen=True)
class Objective:
    """A metric of `metrics.json` and whether larger is better.

    Args:
        name: the dotted path into `metrics.json`, e.g. `retrieval.model.recall@50`.
        direction: `max` or `min`.
    """

    name: str
    direction: str

    def __post_init__(self):
        if not self.name or any(not part for part in self.name.split(".")):
            raise ObjectiveError(f"objective: expected a dotted metrics.json key, got {self.name!r}")
        if self.direction not in ("max", "min"):
            raise ObjectiveError(f"objective {self.name!r}: direction must be 'max' or 'min', got {self.direction!r}")

    @classmethod
    def parse(cls, text: str) -> Objective:
        """`NAME` (a metric of known direction) or `NAME:max` / `NAME:min`."""
        name, sep, direction = text.strip().rpartition(":")
        if not sep:
            name, direction = text.strip(), ""
        direction = direction or direction_of(name) or ""
        if not direction:
            raise ObjectiveError(f"objective {name!r}: its direction is not known; write {name}:max or {name}:min")
        return cls(name, direction)

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"

    def read(self, metrics: dict, where: str = "metrics.json") -> float:
        """The objective's value in `metrics` (a per-epoch list: its best epoch); errors name it and `where`."""
        node = metrics
        parts = self.name.split(".")
        i = 0
        while i < len(parts):
            if not isinstance(node, dict):
                break
            # The longest run of parts that is one key (metric names may hold dots).
            for j in range(len(parts), i, -1):
                key = ".".join(parts[i:j])
                if key in node:
                    node, i = node[key], j
                    break
            else:
                have = ", ".join(sorted(map(str, node))) or "nothing"
                at = ".".join(parts[:i]) or "the top level"
                raise ObjectiveError(f"objective {self.name!r}: not in {where} ({at} has: {have})")
        if i < len(parts):
            raise ObjectiveError(f"objective {self.name!r}: not in {where} ({'.'.join(parts[:i])} is a value)")
        if isinstance(node, list):
            epochs = [v for v in node if _finite(v)]
            if not epochs:
                raise ObjectiveError(f"objective {self.name!r}: no epoch has a value in {where}")
            return float(max(epochs) if self.direction == "max" else min(epochs))
        if not isinstance(node, numbers.Real) or isinstance(node, bool):
            raise ObjectiveError(f"objective {self.name!r}: expected a number in {where}, got {node!r}")
        return float(node)

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is better than `b`."""
        return a > b if self.direction == "max" else a < b


def _finite(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def default_objective(job) -> Objective:
    """The objective for a `JobConfig` when none is given.

    Recall@K of the model's retrieval on the test split, K = 50 when
    `evaluation.ks` has it, else the largest K below 50, else the smallest
    K: `retrieval.model.recall@K` for simulator jobs,
    `search.retrieval.model.recall@K` / `interactions.retrieval.model.recall@K`
    for those shapes of your own tables; `value.model.normalized_gini` for
    transactions.
    """
    ks = sorted(job.evaluation.ks)
    below = [k for k in ks if k <= 50]
    k = max(below) if below else ks[0]
    data = job.data
    if data.source == "files":
        if data.shape == "transactions":
            return Objective("value.model.normalized_gini", "max")
        if data.shape in ("search", "interactions"):
            return Objective(f"{data.shape}.retrieval.model.recall@{k}", "max")
        raise ObjectiveError("objective: data.shape is not set, so there is no default; give --objective")
    return Objective(f"retrieval.model.recall@{k}", "max")


def read_metrics(run_dir) -> dict:
    """The `metrics.json` of a run directory (FileNotFoundError naming it when the run wrote none)."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"run directory {run_dir!r} has no metrics.json (did the job finish?)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)
