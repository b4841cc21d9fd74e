"""Evaluation on the user's own tables, the model beside baselines that are always shown with it.

One evaluator per data shape (`tfrec.data.shapes`), each scoring the test
split with the metric sets of `tfrec.evaluation.metric_sets`:

* search: CTR AUC / log loss / ECE, relevance RMSE, NDCG@K per query and
  retrieval Recall@K, against item popularity (and the logged order when
  positions are logged);
* interactions: retrieval Recall@K / NDCG@K / MRR over the whole catalog with
  the user's history as the query, and CTR AUC on sampled negatives, against
  popularity;
* transactions: normalised Gini, Spearman, decile MAPE and AUC of "spends at
  all" of the user-value head, against the calibration spend scaled to the
  horizon and an RFM regressor.

`evaluate_tables` returns an `EvaluationResult` whose `metrics` have the
layout of the run's `metrics.json` (`{"search" | "interactions" | "value": ...}`);
`report_view` gives the same result in the report's layout (`ctr`,
`retrieval`, `value`) for `tfrec.evaluation.report.write_report`.

Example:

```python
result = evaluate_tables(model, prepared, ks=[10, 50], max_queries=2000)
result.metrics["value"]["model"]["normalized_gini"]
write_report(report_view(result), "report.html")
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from tfrec.data import shapes as S
from tfrec.evaluation import metrics as M
from tfrec.evaluation.metric_sets import ctr_metrics, ranking_metrics, value_metrics
from tfrec.evaluation.result import EvaluationResult
from tfrec.schema import is_relevant


def _retrieval_ranks(model, queries, catalog, schema, train_positives):
    """Ranks of each query's item over the catalog: model and popularity."""
    from tfrec.models.inference import encode_items, encode_queries

    row_of = pd.Series(np.arange(len(catalog)), index=catalog[schema.item_id].to_numpy())
    target = row_of.reindex(queries[schema.item_id].to_numpy()).to_numpy()
    keep = ~np.isnan(target)
    queries, target = queries.loc[keep], target[keep].astype(np.int64)
    ranks = {"model": M.ranks_of_targets(encode_queries(model, queries), encode_items(model, catalog), target)}
    pop = train_positives[schema.item_id].value_counts().reindex(catalog[schema.item_id]).fillna(0).to_numpy()
    ranks["popularity"] = M.ranks_in_scores(pop, target) if len(target) else np.zeros(0)
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


def evaluate_search(
    model, data: S.PreparedData, ks, max_queries, seed=0, min_query_rows=2, arrays: dict | None = None
) -> dict:
    """CTR / relevance, per-query NDCG and retrieval on the test queries, beside popularity.

    `arrays`, if given, receives the labels, predictions and ranks behind the metrics.
    """
    arrays = {} if arrays is None else arrays
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
    result: dict[str, Any] = {"rows": len(test), "queries": int(test[S.QUERY_KEY_COLUMN].nunique())}
    scorers: dict[str, np.ndarray] = {}
    gains = None
    # Only the sections of tasks the model has (a task weighted 0 is not built).
    if schema.click_label and "ctr" in logged:
        y = test[schema.click_label].to_numpy()
        item_ctr, mean_ctr = _smoothed_item_mean(train, item, schema.click_label)
        base = test[item].map(item_ctr).fillna(mean_ctr).to_numpy()
        result["ctr"] = ctr_metrics(y, {"model": logged["ctr"], "popularity": base})
        arrays["ctr"] = (y, {"model": logged["ctr"], "popularity": base})
        scorers = {"model": at_top["ctr"], "popularity": base}
        gains = y
    if schema.relevance_label and "relevance" in at_top:
        y = test[schema.relevance_label].to_numpy()
        item_rel, mean_rel = _smoothed_item_mean(train, item, schema.relevance_label)
        base = test[item].map(item_rel).fillna(mean_rel).to_numpy()
        good = is_relevant(y, schema.relevance_range)
        result["relevance"] = {
            name: {"rmse": M.rmse(y, p), "auc": M.auc(good, p)}
            for name, p in (
                ("model", at_top["relevance"]),
                ("item_mean", base),
                ("global_mean", np.full(len(y), mean_rel)),
            )
        }
        scorers = {"model": at_top["relevance"], "item_mean": base}
        gains = y - schema.relevance_range[0]
    if schema.position and gains is not None:
        scorers["logged_order"] = -test[schema.position].to_numpy(dtype=np.float64)
    if gains is not None:  # a ranking head scored the rows
        ndcg: dict[str, Any] = {}
        for name, scores in scorers.items():
            ndcg[name] = {}
            for k in ks:
                value, n = M.grouped_ndcg(test[S.QUERY_KEY_COLUMN], gains, scores, k, min_rows=min_query_rows)
                ndcg[name][f"ndcg@{k}"] = value
            ndcg["queries_scored"] = n
        result["query_ndcg"] = ndcg
    positive = _positive_mask(test, schema)
    train_pos = train[_positive_mask(train, schema)]
    queries = _sample(test[positive].drop_duplicates([S.QUERY_KEY_COLUMN, item]), max_queries, seed)
    ranks = _retrieval_ranks(model, queries, data.catalog, schema, train_pos)
    arrays["ranks"] = ranks
    result["retrieval"] = ranking_metrics(ranks, ks)
    result["retrieval"]["queries"] = len(ranks["model"])
    return result


def evaluate_interactions(model, data: S.PreparedData, ks, max_queries, seed=0, arrays: dict | None = None) -> dict:
    """Retrieval over the whole catalog with the history as the query, and CTR on sampled negatives."""
    arrays = {} if arrays is None else arrays
    from tfrec.models.inference import predict_dataframe

    schema, train, test = data.schema, data.train, data.test
    click = schema.click_label
    positives = test[test[click] > 0]
    queries = _sample(positives.drop_duplicates([schema.user_id, schema.item_id]), max_queries, seed)
    ranks = _retrieval_ranks(model, queries, data.catalog, schema, train[train[click] > 0])
    arrays["ranks"] = ranks
    result: dict[str, Any] = {"retrieval": ranking_metrics(ranks, ks)}
    result["retrieval"]["queries"] = len(ranks["model"])
    y = test[click].to_numpy()
    if (y == 0).any() and "ctr" in model.task_names:
        p = predict_dataframe(model, test, outputs=("ctr",))["ctr"]
        counts = train[train[click] > 0][schema.item_id].value_counts()
        base = test[schema.item_id].map(counts).fillna(0).to_numpy(dtype=np.float64)
        # Popularity counts are no probabilities: only their AUC means something.
        result["ctr"] = {**ctr_metrics(y, {"model": p}), "popularity": {"auc": M.auc(y, base)}}
        arrays["ctr"] = (y, {"model": p})
        result["ctr"]["rows"] = len(y)
    return result


def evaluate_transactions(model, data: S.PreparedData, arrays: dict | None = None) -> dict:
    """User value against the calibration spend scaled to the horizon and an RFM regressor."""
    arrays = {} if arrays is None else arrays
    from tfrec.models.inference import predict_user_value
    from tfrec.models.rfm import RFMRegressor

    test = data.test
    y = test[S.VALUE_COLUMN].to_numpy()
    fit_on = pd.concat([data.train, data.valid], ignore_index=True)
    predictions = {
        "model": predict_user_value(model, test)["user_value"],
        "calibration_scaled": test["monetary"].to_numpy()
        * data.info["horizon_days"]
        / test["observed_days"].to_numpy(),
        "rfm": RFMRegressor().fit(fit_on, fit_on[S.VALUE_COLUMN]).predict(test),
    }
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
) -> EvaluationResult:
    """The metrics of `data.shape`, model beside its baselines, and the arrays they are computed from.

    `result.metrics` is `{"search": ...}`, `{"interactions": ...}` or `{"value": ...}`.
    """
    ks = list(ks)
    arrays: dict[str, Any] = {}
    if data.shape == "search":
        metrics = {"search": evaluate_search(model, data, ks, max_queries, seed, min_query_rows, arrays)}
    elif data.shape == "interactions":
        metrics = {"interactions": evaluate_interactions(model, data, ks, max_queries, seed, arrays)}
    else:
        metrics = {"value": evaluate_transactions(model, data, arrays)}
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
    """`result` with its metrics in the report's layout: `ctr` and `retrieval` of the shape, `value`."""
    flat = {}
    for part in ("search", "interactions"):
        block = result.metrics.get(part, {})
        flat.update({k: block[k] for k in ("ctr", "retrieval") if k in block})
    if "value" in result.metrics:
        flat["value"] = result.metrics["value"]
    return dataclasses.replace(result, metrics=flat)
