"""Evaluation metrics on numpy arrays: CTR, user value and retrieval; each metric is defined here once.

These work on whole evaluation sets at once (exact AUC, exact Gini), which
streaming Keras metrics only approximate; keras-rs metrics score fixed-size
lists, while catalog retrieval needs the rank of one positive among all items,
which `ranks_of_targets` computes in blocks. Where `sklearn.metrics` or
`scipy.stats` compute a metric, they do; each other function says why not.

Example:

```python
auc(clicks, predicted_ctr)
normalized_gini(future_value, predicted_value)
recall_at_k(ranks, k=50)       # ranks from ranks_of_targets(...)
grouped_ndcg(query_ids, relevance, scores, k=10)
```
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics as skm


def _arrays(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_pred has {y_pred.size}")
    return y_true, y_pred


def auc(y_true, y_score) -> float:
    """Area under the ROC curve (ties count half). NaN if one class is absent or a score is not finite."""
    y, s = _arrays(y_true, y_score)
    pos = y > 0.5
    if pos.all() or not pos.any() or not np.isfinite(s).all():
        return float("nan")  # sklearn raises here; an evaluation table shows NaN
    return float(skm.roc_auc_score(pos, s))


def log_loss(y_true, p, eps=1e-7) -> float:
    """Mean binary cross-entropy, predictions clipped to [eps, 1 - eps] (saturated float32 sigmoids stay finite)."""
    y, p = _arrays(y_true, p)
    if not len(y) or np.isnan(p).any():  # a diverged model: NaN in the table, not an exception
        return float("nan")
    # sklearn clips at float64's eps only, so clip at `eps` first; labels=[0, 1] allows one-class sets.
    return float(skm.log_loss(y > 0.5, np.clip(p, eps, 1 - eps), labels=[False, True]))


def calibration_bins(p, num_bins=10) -> np.ndarray:
    """Equal-width bin of each probability on [0, 1] (0 .. num_bins - 1; 1.0 falls in the last bin)."""
    return np.clip((np.asarray(p, dtype=np.float64) * num_bins).astype(int), 0, num_bins - 1)


def expected_calibration_error(y_true, p, num_bins=10) -> float:
    """Mean |observed rate - mean prediction| over equal-width bins, weighted by size."""
    # Not sklearn: its calibration_curve drops the bin sizes that weight the mean.
    y, p = _arrays(y_true, p)
    bins = calibration_bins(p, num_bins)
    total = 0.0
    for b in range(num_bins):
        m = bins == b
        if m.any():
            total += m.sum() * abs(y[m].mean() - p[m].mean())
    return float(total / max(len(y), 1))


def gini(y_true, y_pred) -> float:
    """Gini of the cumulative share of `y_true` when sorted by `y_pred` (descending)."""
    # Not in sklearn/scipy: the (insurance) Gini of an ordering, ties in input order.
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
    """Spearman rank correlation (ties get average ranks); NaN when either side is constant."""
    y, s = _arrays(y_true, y_pred)
    if len(y) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(y, s).statistic)


def decile_table(y_true, y_pred, num_bins=10) -> pd.DataFrame:
    """Rows grouped by predicted decile (1 = highest): mean prediction, mean actual, share of total.

    Also the absolute percentage error of the mean prediction per decile
    (the ZILN paper's decile-level MAPE uses its mean). Not in sklearn/scipy.
    """
    y, s = _arrays(y_true, y_pred)
    order = np.lexsort((np.arange(len(s)), -s))
    decile = np.empty(len(s), dtype=int)
    decile[order] = np.arange(len(s)) * num_bins // max(len(s), 1) + 1
    df = pd.DataFrame({"decile": decile, "predicted": s, "actual": y})
    table = df.groupby("decile").agg(
        rows=("actual", "size"),
        mean_predicted=("predicted", "mean"),
        mean_actual=("actual", "mean"),
        total_actual=("actual", "sum"),
    )
    table["share_of_actual"] = table.total_actual / max(y.sum(), 1e-12)
    table["ape"] = (table.mean_predicted - table.mean_actual).abs() / table.mean_actual.where(table.mean_actual > 0)
    return table.reset_index()


def decile_mape(y_true, y_pred, num_bins=10) -> float:
    return float(decile_table(y_true, y_pred, num_bins)["ape"].mean())


def ranks_of_targets(query_embeddings, candidate_embeddings, target_index, block_size=2048, exclude=None) -> np.ndarray:
    """1-based rank of each query's target among all candidates by dot product.

    Ties count against the target (pessimistic). `exclude` is an optional
    boolean `[num_candidates]` mask of candidates nobody may retrieve.
    Not scipy's rankdata: the whole `[queries, catalog]` score matrix is never
    held at once, only blocks of it.
    """
    q = np.asarray(query_embeddings, dtype=np.float32)
    c = np.asarray(candidate_embeddings, dtype=np.float32)
    target_index = np.asarray(target_index, dtype=np.int64)
    ranks = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), block_size):
        scores = q[start : start + block_size] @ c.T
        if exclude is not None:
            scores[:, exclude] = -np.inf
        ranks[start : start + block_size] = ranks_in_scores(scores, target_index[start : start + block_size])
    return ranks


def ranks_in_scores(scores, target_index) -> np.ndarray:
    """1-based rank of each query's target by `scores`; ties count against the target.

    `scores` is `[queries, candidates]`, or one `[candidates]` row that every
    query shares (e.g. popularity).
    """
    scores = np.asarray(scores)
    target_index = np.asarray(target_index, dtype=np.int64)
    if scores.ndim == 1:
        return (scores[None, :] >= scores[target_index][:, None]).sum(axis=1)
    target = scores[np.arange(len(target_index)), target_index]
    return (scores >= target[:, None]).sum(axis=1)


def recall_at_k(ranks, k) -> float:
    """Share of queries whose single relevant item ranks in the top k."""
    # Not sklearn's top_k_accuracy_score: that needs the score matrix; here the ranks are known.
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")


def _discount(ranks, k) -> np.ndarray:
    """The DCG discount 1/log2(rank + 1) of 1-based ranks, 0 past k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def ndcg_at_k(ranks, k) -> float:
    """NDCG@k with one relevant item per query: 1/log2(rank + 1) if rank <= k."""
    # Not sklearn's ndcg_score: that scores a [queries, items] matrix; here each query has one target
    # whose rank among the whole catalog is known (its ideal DCG is 1).
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(_discount(ranks, k).mean()) if len(ranks) else float("nan")


def grouped_ndcg(groups, gains, scores, k: int, min_rows: int = 2) -> tuple[float, int]:
    """Mean graded NDCG@k over groups (queries) of rows ordered by `scores`.

    Gains are used as `2^gain - 1`. Ties in `scores` count against the
    better rows (pessimistic), so a constant scorer earns no credit. Only
    groups with at least `min_rows` rows and a positive gain count.
    Returns (mean NDCG, number of groups).
    """
    # Not sklearn's ndcg_score: it averages over tied scores (a constant scorer would earn credit)
    # and needs groups padded to one length; without ties the two agree (tests/test_metrics.py).
    df = pd.DataFrame(
        {
            "g": np.asarray(groups),
            "gain": np.asarray(gains, dtype=np.float64),
            "score": np.asarray(scores, dtype=np.float64),
        }
    )
    df["gain"] = np.power(2.0, df["gain"]) - 1.0
    size = df.groupby("g")["gain"].transform("size")
    best = df.groupby("g")["gain"].transform("max")
    df = df[(size >= min_rows) & (best > 0)]
    if not len(df):
        return float("nan"), 0
    ordered = df.sort_values(["g", "score", "gain"], ascending=[True, False, True], kind="stable")
    rank = ordered.groupby("g").cumcount().to_numpy() + 1
    dcg = pd.Series(ordered["gain"].to_numpy() * _discount(rank, k)).groupby(ordered["g"].to_numpy()).sum()
    ideal = df.sort_values(["g", "gain"], ascending=[True, False], kind="stable")
    irank = ideal.groupby("g").cumcount().to_numpy() + 1
    idcg = pd.Series(ideal["gain"].to_numpy() * _discount(irank, k)).groupby(ideal["g"].to_numpy()).sum()
    return float((dcg / idcg).mean()), len(idcg)


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    y, p = _arrays(y_true, y_pred)
    return float(skm.root_mean_squared_error(y, p)) if len(y) else float("nan")


def mrr(ranks, k=None) -> float:
    """Mean reciprocal rank of each query's single relevant item (0 past k, if given)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    rr = 1.0 / ranks
    if k is not None:
        rr = np.where(ranks <= k, rr, 0.0)
    return float(rr.mean()) if len(ranks) else float("nan")


def total_variation(p_true, p_pred) -> float:
    """Mean total variation distance `0.5 * sum |p - q|` between rows of two `[rows, classes]` distributions.

    0 where the distributions agree, 1 where they share no mass.
    """
    # Not in sklearn/scipy (scipy.spatial.distance has Jensen-Shannon, not total variation).
    p, q = np.asarray(p_true, dtype=np.float64), np.asarray(p_pred, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"p_true has shape {p.shape} but p_pred has {q.shape}")
    return float(0.5 * np.abs(p - q).sum(axis=-1).mean()) if len(p) else float("nan")
