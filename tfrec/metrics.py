"""Evaluation metrics on numpy arrays: CTR, user value and retrieval.

These work on whole evaluation sets at once (exact AUC by ranks, exact Gini),
which streaming Keras metrics only approximate; keras-rs metrics score
fixed-size lists, while catalog retrieval needs the rank of one positive among
all items, which `ranks_of_targets` computes in blocks.

Example:

```python
auc(clicks, predicted_ctr)
normalized_gini(future_value, predicted_value)
recall_at_k(ranks, k=50)       # ranks from ranks_of_targets(...)
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _arrays(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}")
    return y_true, y_pred


def auc(y_true, y_score) -> float:
    """Area under the ROC curve (ties count half). NaN if one class is absent."""
    y, s = _arrays(y_true, y_score)
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true, p, eps=1e-7) -> float:
    y, p = _arrays(y_true, p)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(y_true, p, num_bins=10) -> float:
    """Mean |observed rate - mean prediction| over equal-width bins, weighted by size."""
    y, p = _arrays(y_true, p)
    bins = np.clip((p * num_bins).astype(int), 0, num_bins - 1)
    total = 0.0
    for b in range(num_bins):
        m = bins == b
        if m.any():
            total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / max(len(y), 1))


def gini(y_true, y_pred) -> float:
    """Gini of the cumulative share of `y_true` when sorted by `y_pred` (descending)."""
    y, s = _arrays(y_true, y_pred)
    if y.sum() <= 0:
        return float("nan")
    order = np.lexsort((np.arange(len(s)), -s))  # stable: ties keep input order
    cum = np.cumsum(y[order]) / y.sum()
    n = len(y)
    # Twice the area between the cumulative-share curve and the diagonal.
    return float(2.0 * (cum.sum() - (n + 1) / 2.0) / n)


def normalized_gini(y_true, y_pred) -> float:
    """Gini of the model's ordering over the Gini of the perfect ordering (1.0 = perfect)."""
    y, s = _arrays(y_true, y_pred)
    best = gini(y, y)
    return float(gini(y, s) / best) if best and not np.isnan(best) else float("nan")


def spearman(y_true, y_pred) -> float:
    y, s = _arrays(y_true, y_pred)
    return float(pd.Series(y).rank().corr(pd.Series(s).rank()))


def decile_table(y_true, y_pred, num_bins=10) -> pd.DataFrame:
    """Rows grouped by predicted decile (1 = highest): mean prediction, mean actual, share of total.

    Also the absolute percentage error of the mean prediction per decile
    (the ZILN paper's decile-level MAPE uses its mean).
    """
    y, s = _arrays(y_true, y_pred)
    order = np.lexsort((np.arange(len(s)), -s))
    decile = np.empty(len(s), dtype=int)
    decile[order] = np.arange(len(s)) * num_bins // max(len(s), 1) + 1
    df = pd.DataFrame({"decile": decile, "predicted": s, "actual": y})
    table = df.groupby("decile").agg(rows=("actual", "size"), mean_predicted=("predicted", "mean"),
                                     mean_actual=("actual", "mean"), total_actual=("actual", "sum"))
    table["share_of_actual"] = table.total_actual / max(y.sum(), 1e-12)
    table["ape"] = (table.mean_predicted - table.mean_actual).abs() / table.mean_actual.where(table.mean_actual > 0)
    return table.reset_index()


def decile_mape(y_true, y_pred, num_bins=10) -> float:
    return float(decile_table(y_true, y_pred, num_bins)["ape"].mean())


def ranks_of_targets(query_embeddings, candidate_embeddings, target_index, block_size=2048,
                     exclude=None) -> np.ndarray:
    """1-based rank of each query's target among all candidates by dot product.

    Ties count against the target (pessimistic). `exclude` is an optional
    boolean `[num_candidates]` mask of candidates nobody may retrieve.
    """
    q = np.asarray(query_embeddings, dtype=np.float32)
    c = np.asarray(candidate_embeddings, dtype=np.float32)
    target_index = np.asarray(target_index, dtype=np.int64)
    ranks = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), block_size):
        scores = q[start:start + block_size] @ c.T
        if exclude is not None:
            scores[:, exclude] = -np.inf
        idx = target_index[start:start + block_size]
        target = scores[np.arange(len(idx)), idx]
        ranks[start:start + block_size] = (scores >= target[:, None]).sum(axis=1)
    return ranks


def recall_at_k(ranks, k) -> float:
    """Share of queries whose single relevant item ranks in the top k."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")


def ndcg_at_k(ranks, k) -> float:
    """NDCG@k with one relevant item per query: 1/log2(rank + 1) if rank <= k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    gains = np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)
    return float(gains.mean()) if len(ranks) else float("nan")


def mrr(ranks, k=None) -> float:
    ranks = np.asarray(ranks, dtype=np.float64)
    rr = 1.0 / ranks
    if k is not None:
        rr = np.where(ranks <= k, rr, 0.0)
    return float(rr.mean()) if len(ranks) else float("nan")
