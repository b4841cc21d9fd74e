"""`EvaluationResult`: the metrics of one evaluation and the arrays behind them.

The metrics dict is what `metrics.json` holds; the arrays (labels,
predictions and ranks of every scorer) are what the report draws its curves
from, so nothing is scored twice.

Example:

```python
result = evaluate_simulated(model, sim, split, ks=[10, 50])
result.metrics["ctr"]["model"]["auc"]
result.ctr_predictions["oracle"]          # per test row
write_report(result, "report.html")
```
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class EvaluationResult:
    """Metrics and the arrays behind them; a section absent from the data is None.

    Attributes:
        metrics: JSON-able dict with `ctr`, `retrieval`, `value` and
            `business` entries, each `{scorer: {metric: value}}` plus counts.
        ks: the cut-offs of Recall@K, NDCG@K and the business metrics.
        ctr_labels: `[rows]` test clicks (0/1).
        ctr_predictions: scorer -> `[rows]` predicted click probability.
        retrieval_ranks: scorer -> `[queries]` 1-based rank of the clicked
            item among the whole catalog.
        value_labels: `[users]` realised future value of the evaluated users.
        value_predictions: scorer -> `[users]` predicted value.
        context: what was evaluated, for the report's header (data, sizes, model).
    """

    metrics: dict
    ks: list[int]
    ctr_labels: np.ndarray | None = None
    ctr_predictions: dict[str, np.ndarray] | None = None
    retrieval_ranks: dict[str, np.ndarray] | None = None
    value_labels: np.ndarray | None = None
    value_predictions: dict[str, np.ndarray] | None = None
    context: dict = dataclasses.field(default_factory=dict)
