"""Curve data behind the report's figures: ROC, reliability, recall@K, cumulative gain.

Each function takes the evaluation arrays and returns plain numpy arrays or a
DataFrame, so the numbers can be tabulated or plotted anywhere.

Example:

```python
fpr, tpr = roc_curve(clicks, predicted_ctr)
reliability_curve(clicks, predicted_ctr, num_bins=20, strategy="quantile")
ks, recall = recall_curve(ranks, max_k=100)
share_of_users, share_of_value = cumulative_gain_curve(future_value, predicted_value)
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from tfrec.evaluation.metrics import _arrays, calibration_bins


def roc_curve(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1).

    Tied scores form one step, so the trapezoid area under the curve equals
    `tfrec.evaluation.metrics.auc` (ties count half).
    """
    y, s = _arrays(y_true, y_score)
    pos = y > 0.5
    if pos.all() or not pos.any():
        raise ValueError("roc_curve: y_true needs both positives and negatives")
    fpr, tpr, _ = skm.roc_curve(pos, s, drop_intermediate=False)
    return fpr, tpr


def reliability_curve(y_true, p, num_bins: int = 10, strategy: str = "uniform") -> pd.DataFrame:
    """Observed rate against mean prediction per bin of the prediction.

    Args:
        strategy: `uniform` (equal-width bins on [0, 1], the bins of
            `expected_calibration_error`) or `quantile` (equal-count bins,
            readable when predictions are all small, as CTRs are).

    Returns:
        One row per non-empty bin: `bin`, `rows`, `mean_predicted`, `observed_rate`.
    """
    y, p = _arrays(y_true, p)
    if strategy == "uniform":
        bins = calibration_bins(p, num_bins)
    elif strategy == "quantile":
        order = np.argsort(p, kind="stable")
        bins = np.empty(len(p), dtype=int)
        bins[order] = np.arange(len(p)) * num_bins // max(len(p), 1)
    else:
        raise ValueError(f"reliability_curve: strategy must be 'uniform' or 'quantile', got {strategy!r}")
    df = pd.DataFrame({"bin": bins, "y": y, "p": p})
    table = df.groupby("bin").agg(rows=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    return table.reset_index()


def recall_curve(ranks, max_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall@K for K = 1..max_k from 1-based ranks of each query's relevant item."""
    ranks = np.sort(np.asarray(ranks).ravel())
    ks = np.arange(1, max_k + 1)
    if not len(ranks):
        return ks, np.full(max_k, np.nan)
    return ks, np.searchsorted(ranks, ks, side="right") / len(ranks)


def cumulative_gain_curve(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Share of total value held by the top x share of users when sorted by prediction (descending).

    The curve behind the Gini coefficient: the normalised Gini is the area
    between this curve and the diagonal over the same area for the perfect
    ordering. Ties keep the input order, as in `tfrec.evaluation.metrics.gini`.
    """
    y, s = _arrays(y_true, y_pred)
    if y.sum() <= 0:
        raise ValueError("cumulative_gain_curve: y_true sums to zero")
    order = np.lexsort((np.arange(len(s)), -s))
    return np.r_[0.0, np.arange(1, len(y) + 1) / len(y)], np.r_[0.0, np.cumsum(y[order]) / y.sum()]
