"""Evaluation on the user's own tables, the model beside baselines that are always shown with it.

One evaluator per data shape (`tfrec.data.shapes`), each scoring the test
split with the metric sets of `tfrec.evaluation.metric_sets`, the model and
the simple baselines of `tfrec.baselines` on the same rows:

* search: CTR AUC / log loss / ECE, relevance RMSE, NDCG@K per query and
  retrieval Recall@K, against item popularity (and the logged order when
  positions are logged), BM25 of the query against the item text, the
  zero-shot cosine of the pretrained all-MiniLM-L6-v2 (where its package is
  installed) and, for the label heads, BM25 calibrated by isotonic
  regression on the training rows;
* interactions: retrieval Recall@K / NDCG@K / MRR over the whole catalog with
  the user's history as the query, and CTR AUC on sampled negatives, against
  popularity and item-to-item co-occurrence;
* transactions: normalised Gini, Spearman, decile MAPE and AUC of "spends at
  all" of the user-value head, against the calibration spend scaled to the
  horizon, an RFM regressor, BG/NBD + Gamma-Gamma and gradient boosting on
  the customer features.

`evaluate_tables` returns an `EvaluationResult` whose `metrics` have the
layout of the run's `metrics.json` (`{"search" | "interactions" | "value": ...}`,
and `versus_baselines`: the plain verdict of `tfrec.evaluation.summary.versus_baselines`);
`report_view` gives the same result in the report's layout (`ctr`,
`retrieval`, `value`) for `tfrec.evaluation.report.write_report`.

Example:

```python
result = evaluate_tables(model, prepared, ks=[10, 50], max_queries=2000)
result.metrics["value"]["model"]["normalized_gini"]
result.metrics["versus_baselines"]["lines"]   # e.g. ["value: model below BG/NBD + Gamma-Gamma on ..."]
write_report(report_view(result), "report.html")
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from tfrec.baselines import BM25, BGNBDGammaGamma, IsotonicCalibration, ItemCooccurrence, RFMBoosting, ZeroShotCosine
from tfrec.baselines import minilm_cosine as load_minilm_cosine
from tfrec.baselines.zero_shot import NAME as ZERO_SHOT
from tfrec.console import log
from tfrec.data import shapes as S
from tfrec.evaluation import metrics as M
from tfrec.evaluation.metric_sets import ctr_metrics, ranking_metrics, value_metrics
from tfrec.evaluation.result import EvaluationResult
from tfrec.evaluation.summary import versus_baselines
from tfrec.schema import is_relevant

#: Training rows the isotonic calibration of BM25 is fit on (a seeded sample of larger tables).
MAX_CALIBRATION_ROWS = 200_000
#: Most distinct texts (catalog items and test queries) the zero-shot encoder encodes in one evaluation.
MAX_ZERO_SHOT_TEXTS = 100_000
#: Weight of the normalised training popularity that breaks the text and co-occurrence baselines' ties.
TIEBREAK = 1e-9


def _skip(skipped: dict, name: str, reason: str) -> None:
    skipped[name] = reason
    log(f"baseline {name} not computed: {reason}")


def _retrieval_targets(queries, catalog, schema):
    """The queries whose item is in the catalog, and that item's catalog row."""
    row_of = pd.Series(np.arange(len(catalog)), index=catalog[schema.item_id].to_numpy())
    target = row_of.reindex(queries[schema.item_id].to_numpy()).to_numpy()
    keep = ~np.isnan(target)
    return queries.loc[keep], target[keep].astype(np.int64)


def _popularity(catalog, schema, train_positives) -> np.ndarray:
    """Training positives per catalog item."""
    counts = train_positives[schema.item_id].value_counts().reindex(catalog[schema.item_id]).fillna(0)
    return counts.to_numpy(dtype=np.float64)


def _tiebreak(popularity: np.ndarray) -> np.ndarray:
    return TIEBREAK * popularity / max(float(popularity.max(initial=0.0)), 1.0)


def _retrieval_ranks(model, queries, target, catalog, popularity):
    """Ranks of each query's item over the catalog: model and popularity."""
    from tfrec.models.inference import encode_items, encode_queries

    ranks = {"model": M.ranks_of_targets(encode_queries(model, queries), encode_items(model, catalog), target)}
    ranks["popularity"] = M.ranks_in_scores(popularity, target) if len(target) else np.zeros(0)
    return ranks


def _ranks_in_blocks(scores, target: np.ndarray, num_items: int) -> np.ndarray:
    """Ranks of each query's target by `scores(start, stop)` (`[stop - start, num_items]`), a block at a time."""
    step = max(1, (1 << 22) // max(num_items, 1))  # at most 4M scores (32 MB) at once
    ranks = np.zeros(len(target), dtype=np.int64)
    for start in range(0, len(target), step):
        stop = min(start + step, len(target))
        ranks[start:stop] = M.ranks_in_scores(scores(start, stop), target[start:stop])
    return ranks


def _sample(frame, n, seed):
    return frame.sample(n, random_state=seed) if len(frame) > n else frame


def _smoothed_item_mean(train, item, label, prior_weight=20.0):
    mean = train[label].mean()
    agg = train.groupby(item)[label].agg(["sum", "count"])
    return (agg["sum"] + prior_weight * mean) / (agg["count"] + prior_weight), mean


def _positive_mask(frame, schema):
    if schema.click_label:
        return frame[schema.click_label].to_numpy() > 0
    return is_relevant(frame[schema.relevance_label].to_numpy(), schema.relevance_range)


@dataclasses.dataclass
class _TextBaselines:
    """BM25 and the zero-shot cosine over the catalog's item texts; ties broken by training popularity."""

    bm25: BM25
    tiebreak: np.ndarray
    row_of: pd.Series  # item id -> catalog row
    zero_shot: ZeroShotCosine | None = None
    item_vectors: np.ndarray | None = None

    def documents(self, items) -> np.ndarray:
        return self.row_of.reindex(np.asarray(items)).fillna(-1).to_numpy(dtype=np.int64)

    def _with_tiebreak(self, scores, doc):
        return scores + np.where(doc >= 0, self.tiebreak[np.maximum(doc, 0)], 0.0)

    def bm25_rows(self, queries, items) -> np.ndarray:
        """BM25 of each (query, item) row, without the tie-break (for calibration)."""
        return self.bm25.score_pairs(list(queries), self.documents(items))

    def row_scores(self, queries, items) -> dict[str, np.ndarray]:
        """Each text baseline's score of each (query, item) row."""
        doc = self.documents(items)
        out = {"bm25": self._with_tiebreak(self.bm25.score_pairs(list(queries), doc), doc)}
        if self.zero_shot is not None and self.item_vectors is not None:
            q = self.zero_shot.embed(list(queries))
            cosine = np.einsum("ij,ij->i", q, self.item_vectors[np.maximum(doc, 0)]) * (doc >= 0)
            out[ZERO_SHOT] = self._with_tiebreak(cosine, doc)
        return out

    def ranks(self, queries, target) -> dict[str, np.ndarray]:
        """Each text baseline's rank of each query's target over the whole catalog."""
        texts, n = list(queries), len(self.tiebreak)
        out = {"bm25": _ranks_in_blocks(lambda a, b: self.bm25.scores(texts[a:b]) + self.tiebreak[None, :], target, n)}
        if self.zero_shot is not None and self.item_vectors is not None:
            q, items = self.zero_shot.embed(texts), self.item_vectors
            out[ZERO_SHOT] = _ranks_in_blocks(lambda a, b: q[a:b] @ items.T + self.tiebreak[None, :], target, n)
        return out


def _text_baselines(data: S.PreparedData, popularity, zero_shot, skipped: dict) -> _TextBaselines | None:
    schema, catalog, test = data.schema, data.catalog, data.test
    if not schema.item_text or catalog is None:
        for name in ("bm25", ZERO_SHOT):
            _skip(skipped, name, "the schema maps no item_text to compare the query with")
        return None
    texts = catalog[schema.item_text].fillna("").astype(str).tolist()
    text = _TextBaselines(
        bm25=BM25(k1=1.2, b=0.75).fit(texts),
        tiebreak=_tiebreak(popularity),
        row_of=pd.Series(np.arange(len(catalog)), index=catalog[schema.item_id].to_numpy()),
    )
    scorer: ZeroShotCosine | None
    distinct = len(set(texts) | set(test[schema.query_text].astype(str)))
    if zero_shot is not None and not isinstance(zero_shot, ZeroShotCosine) and zero_shot != "minilm":
        raise ValueError(f"zero_shot must be 'minilm', a ZeroShotCosine or None, got {zero_shot!r}")
    if zero_shot is None:
        scorer, reason = None, "turned off (zero_shot=None)"
    elif distinct > MAX_ZERO_SHOT_TEXTS:
        scorer, reason = None, f"{distinct:,} distinct texts to encode, more than the {MAX_ZERO_SHOT_TEXTS:,} allowed"
    elif isinstance(zero_shot, ZeroShotCosine):
        scorer, reason = zero_shot, None
    else:
        scorer, reason = load_minilm_cosine()
    if scorer is None:
        _skip(skipped, ZERO_SHOT, reason or "unavailable")
    else:
        text.zero_shot, text.item_vectors = scorer, scorer.embed(texts)
    return text


def _calibrated_bm25(text: _TextBaselines, train, test, schema, label, seed) -> np.ndarray:
    """BM25 mapped to `label` by isotonic regression on (a sample of) the training rows, for the test rows."""
    fit_on = _sample(train, MAX_CALIBRATION_ROWS, seed)
    calibration = IsotonicCalibration().fit(
        text.bm25_rows(fit_on[schema.query_text], fit_on[schema.item_id]), fit_on[label]
    )
    return calibration.predict(text.bm25_rows(test[schema.query_text], test[schema.item_id]))


def evaluate_search(
    model,
    data: S.PreparedData,
    ks,
    max_queries,
    seed=0,
    min_query_rows=2,
    arrays: dict | None = None,
    zero_shot: str | ZeroShotCosine | None = "minilm",
    skipped: dict | None = None,
) -> dict:
    """CTR / relevance, per-query NDCG and retrieval on the test queries, beside popularity, BM25 and zero-shot.

    `arrays`, if given, receives the labels, predictions and ranks behind the
    metrics; `skipped` the baselines not computed and why. `zero_shot`:
    `"minilm"` (the offline all-MiniLM-L6-v2, where installed), a
    `ZeroShotCosine`, or None (none).
    """
    arrays = {} if arrays is None else arrays
    skipped = {} if skipped is None else skipped
    from tfrec.models.inference import predict_dataframe

    schema, train, test = data.schema, data.train, data.test
    item = schema.item_id
    if schema.position:
        # One pass: the rows at their logged positions (for CTR), then at the
        # top slot (P(click | seen), for ranking within the query).
        both = predict_dataframe(model, pd.concat([test, test.assign(**{schema.position: 1.0})], ignore_index=True))
        logged = {k: v[: len(test)] for k, v in both.items()}
        at_top = {k: v[len(test) :] for k, v in both.items()}
    else:
        logged = at_top = predict_dataframe(model, test)
    popularity = _popularity(data.catalog, schema, train[_positive_mask(train, schema)])
    text = _text_baselines(data, popularity, zero_shot, skipped)
    result: dict[str, Any] = {"rows": len(test), "queries": int(test[S.QUERY_KEY_COLUMN].nunique())}
    scorers: dict[str, np.ndarray] = {}
    gains = None
    # Only the sections of tasks the model has (a task weighted 0 is not built).
    if schema.click_label and "ctr" in logged:
        y = test[schema.click_label].to_numpy()
        item_ctr, mean_ctr = _smoothed_item_mean(train, item, schema.click_label)
        base = test[item].map(item_ctr).fillna(mean_ctr).to_numpy()
        predictions = {"model": logged["ctr"], "popularity": base}
        if text is not None:
            predictions["bm25_calibrated"] = _calibrated_bm25(text, train, test, schema, schema.click_label, seed)
        result["ctr"] = ctr_metrics(y, predictions)
        arrays["ctr"] = (y, predictions)
        scorers = {"model": at_top["ctr"], "popularity": base}
        gains = y
    if schema.relevance_label and "relevance" in at_top:
        y = test[schema.relevance_label].to_numpy()
        item_rel, mean_rel = _smoothed_item_mean(train, item, schema.relevance_label)
        base = test[item].map(item_rel).fillna(mean_rel).to_numpy()
        good = is_relevant(y, schema.relevance_range)
        predictions = {"model": at_top["relevance"], "item_mean": base, "global_mean": np.full(len(y), mean_rel)}
        if text is not None:
            predictions["bm25_calibrated"] = _calibrated_bm25(text, train, test, schema, schema.relevance_label, seed)
        result["relevance"] = {name: {"rmse": M.rmse(y, p), "auc": M.auc(good, p)} for name, p in predictions.items()}
        scorers = {"model": at_top["relevance"], "item_mean": base}
        gains = y - schema.relevance_range[0]
    if schema.position and gains is not None:
        scorers["logged_order"] = -test[schema.position].to_numpy(dtype=np.float64)
    if gains is not None:  # a ranking head scored the rows
        if text is not None:
            scorers.update(text.row_scores(test[schema.query_text], test[item]))
        ndcg: dict[str, Any] = {}
        for name, scores in scorers.items():
            ndcg[name] = {}
            for k in ks:
                value, n = M.grouped_ndcg(test[S.QUERY_KEY_COLUMN], gains, scores, k, min_rows=min_query_rows)
                ndcg[name][f"ndcg@{k}"] = value
            ndcg["queries_scored"] = n
        result["query_ndcg"] = ndcg
    positive = _positive_mask(test, schema)
    queries = _sample(test[positive].drop_duplicates([S.QUERY_KEY_COLUMN, item]), max_queries, seed)
    queries, target = _retrieval_targets(queries, data.catalog, schema)
    ranks = _retrieval_ranks(model, queries, target, data.catalog, popularity)
    if text is not None:
        ranks.update(text.ranks(queries[schema.query_text], target))
    arrays["ranks"] = ranks
    result["retrieval"] = ranking_metrics(ranks, ks)
    result["retrieval"]["queries"] = len(ranks["model"])
    return result


def evaluate_interactions(
    model, data: S.PreparedData, ks, max_queries, seed=0, arrays: dict | None = None, skipped: dict | None = None
) -> dict:
    """Retrieval over the whole catalog with the history as the query, and CTR on sampled negatives.

    Beside popularity and item-to-item co-occurrence in the training purchases.
    """
    arrays = {} if arrays is None else arrays
    from tfrec.models.inference import predict_dataframe

    schema, train, test, catalog = data.schema, data.train, data.test, data.catalog
    if catalog is None:
        raise ValueError("evaluate_interactions: the prepared data has no item catalog")
    click = schema.click_label
    train_positives = train[train[click] > 0]
    popularity = _popularity(catalog, schema, train_positives)
    cooccurrence = ItemCooccurrence(catalog[schema.item_id]).fit(
        train_positives[schema.user_id], train_positives[schema.item_id]
    )
    positives = test[test[click] > 0]
    queries = _sample(positives.drop_duplicates([schema.user_id, schema.item_id]), max_queries, seed)
    queries, target = _retrieval_targets(queries, catalog, schema)
    ranks = _retrieval_ranks(model, queries, target, catalog, popularity)
    histories = queries[schema.user_history].tolist()
    ranks["cooccurrence"] = _ranks_in_blocks(lambda a, b: cooccurrence.scores(histories[a:b]), target, len(catalog))
    arrays["ranks"] = ranks
    result: dict[str, Any] = {"retrieval": ranking_metrics(ranks, ks)}
    result["retrieval"]["queries"] = len(ranks["model"])
    y = test[click].to_numpy()
    if (y == 0).any() and "ctr" in model.task_names:
        p = predict_dataframe(model, test, outputs=("ctr",))["ctr"]
        counts = train_positives[schema.item_id].value_counts()
        base = test[schema.item_id].map(counts).fillna(0).to_numpy(dtype=np.float64)
        co = cooccurrence.score_pairs(test[schema.user_history].tolist(), test[schema.item_id])
        # Popularity counts and co-occurrence sums are no probabilities: only their AUC means something.
        result["ctr"] = {
            **ctr_metrics(y, {"model": p}),
            "popularity": {"auc": M.auc(y, base)},
            "cooccurrence": {"auc": M.auc(y, co)},
        }
        arrays["ctr"] = (y, {"model": p})
        result["ctr"]["rows"] = len(y)
    return result


def evaluate_transactions(model, data: S.PreparedData, arrays: dict | None = None, skipped: dict | None = None) -> dict:
    """User value against the calibration spend scaled to the horizon, RFM ridge, BG/NBD + Gamma-Gamma and GBM.

    BG/NBD + Gamma-Gamma is fit on the test customers' calibration-period
    features (no labels: the buy-till-you-die way); the regressors on the
    training window's labels, as the model is.
    """
    arrays = {} if arrays is None else arrays
    skipped = {} if skipped is None else skipped
    from tfrec.models.inference import predict_user_value
    from tfrec.models.rfm import RFMRegressor

    test = data.test
    horizon = data.info["horizon_days"]
    y = test[S.VALUE_COLUMN].to_numpy()
    fit_on = pd.concat([data.train, data.valid], ignore_index=True)
    predictions = {
        "model": predict_user_value(model, test)["user_value"],
        "calibration_scaled": test["monetary"].to_numpy() * horizon / test["observed_days"].to_numpy(),
        "rfm": RFMRegressor().fit(fit_on, fit_on[S.VALUE_COLUMN]).predict(test),
    }
    try:
        predictions["bg_nbd_gamma_gamma"] = BGNBDGammaGamma().fit(test).predict(test, horizon)
    except Exception as e:  # lifetimes missing, or its optimiser failed on this table: say so, go on
        _skip(skipped, "bg_nbd_gamma_gamma", f"{type(e).__name__}: {e}")
    predictions["rfm_gbm"] = RFMBoosting.for_schema(data.schema).fit(fit_on, fit_on[S.VALUE_COLUMN]).predict(test)
    arrays["value"] = (y, predictions)
    result = value_metrics(y, predictions)
    for name, p in predictions.items():
        result[name]["mean_predicted"] = float(np.mean(p))
    result["customers"] = len(test)
    result["mean_actual"] = float(np.mean(y))
    result["zero_share"] = float(np.mean(y == 0))
    return result


def evaluate_tables(
    model,
    data: S.PreparedData,
    ks,
    max_queries: int,
    seed: int = 0,
    min_query_rows: int = 2,
    context: dict | None = None,
    zero_shot: str | ZeroShotCosine | None = "minilm",
) -> EvaluationResult:
    """The metrics of `data.shape`, model beside its baselines, and the arrays they are computed from.

    `result.metrics` is `{"search": ...}`, `{"interactions": ...}` or
    `{"value": ...}`, with `versus_baselines` (the verdict lines: where the
    model is below a baseline, by how much; the baselines not computed and why).
    `zero_shot` is the search shape's zero-shot text baseline (see `evaluate_search`).
    """
    ks = list(ks)
    arrays: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    metrics: dict[str, Any]
    if data.shape == "search":
        metrics = {
            "search": evaluate_search(
                model, data, ks, max_queries, seed, min_query_rows, arrays, zero_shot=zero_shot, skipped=skipped
            )
        }
    elif data.shape == "interactions":
        metrics = {"interactions": evaluate_interactions(model, data, ks, max_queries, seed, arrays, skipped)}
    else:
        metrics = {"value": evaluate_transactions(model, data, arrays, skipped)}
    metrics["versus_baselines"] = versus_baselines(metrics, skipped)
    ctr, value = arrays.get("ctr"), arrays.get("value")
    return EvaluationResult(
        metrics=metrics,
        ks=ks,
        ctr_labels=None if ctr is None else ctr[0],
        ctr_predictions=None if ctr is None else ctr[1],
        retrieval_ranks=arrays.get("ranks"),
        value_labels=None if value is None else value[0],
        value_predictions=None if value is None else value[1],
        context=dict(context or {}),
    )


def report_view(result: EvaluationResult) -> EvaluationResult:
    """`result` with its metrics in the report's layout (`ctr` and `retrieval` of the shape, `value`).

    The verdict against the baselines goes into the report's header.
    """
    flat = {}
    for part in ("search", "interactions"):
        block = result.metrics.get(part, {})
        flat.update({k: block[k] for k in ("ctr", "retrieval") if k in block})
    if "value" in result.metrics:
        flat["value"] = result.metrics["value"]
    context = dict(result.context)
    verdict = result.metrics.get("versus_baselines") or versus_baselines(result.metrics)
    if verdict["lines"]:
        context["versus baselines"] = " ".join(verdict["lines"])
    return dataclasses.replace(result, metrics=flat, context=context)
