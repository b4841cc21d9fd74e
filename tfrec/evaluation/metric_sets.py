"""The metric set of each task, for several scorers at once.

Each function takes labels (or ranks) and `{scorer name: predictions}` and
returns `{scorer name: {metric: value}}`, the layout of `metrics.json`.

Example:

```python
ctr_metrics(clicks, {"model": p_model, "oracle": true_ctr})
ranking_metrics({"model": ranks}, ks=[10, 50])
value_metrics(future_value, {"model": predicted_value})
```
"""

from __future__ import annotations

import numpy as np

from tfrec.evaluation import metrics as M


def ctr_metrics(y, scores: dict) -> dict:
    """AUC, log loss and expected calibration error (10 equal-width bins) per scorer."""
    return {
        name: {"auc": M.auc(y, p), "log_loss": M.log_loss(y, p), "ece": M.expected_calibration_error(y, p)}
        for name, p in scores.items()
    }


def ranking_metrics(ranks: dict, ks) -> dict:
    """Recall@K and NDCG@K for every K, and MRR, per scorer (one relevant item per query)."""
    result = {}
    for name, r in ranks.items():
        row = {f"recall@{k}": M.recall_at_k(r, k) for k in ks}
        row.update({f"ndcg@{k}": M.ndcg_at_k(r, k) for k in ks})
        row["mrr"] = M.mrr(r)
        result[name] = row
    return result


def value_metrics(y, scores: dict) -> dict:
    """Normalised Gini, Spearman, decile MAPE and AUC of "spends at all" per scorer."""
    y = np.asarray(y, dtype=np.float64)
    return {
        name: {
            "normalized_gini": M.normalized_gini(y, p),
            "spearman": M.spearman(y, p),
            "decile_mape": M.decile_mape(y, p),
            "spend_auc": M.auc(y > 0, p),
        }
        for name, p in scores.items()
    }
