"""Evaluation on simulator data, beside the oracle (planted truth) and baselines.

The simulator knows every true click probability and expected value, so each
task has an *oracle* scorer, the best achievable:

* CTR: the true click probability of each test impression, against the
  model's and a baseline's (smoothed item CTR in training x the position's
  CTR ratio), by AUC, log loss and calibration;
* retrieval: the rank of each clicked test item among the whole catalog by
  the model's two-tower score, by the true attractiveness (oracle) and by
  training clicks (popularity);
* user value: the model's expected value against the true expected value
  (oracle) and the training users' segment mean, on users whose value label
  training never saw;
* business value: expected clicks and revenue in the top K per 1,000 test
  queries (`tfrec.evaluation.business`) when the whole catalog is ranked by
  the model, by popularity, at random, or by the truth (oracles), with the
  simulator's own examination curve `p ** -position_bias`;
* the ranking stage (with a CTR task): the click-revenue trade-off of the
  fused objective over retrieved candidates against the oracle's frontier
  (`tfrec.evaluation.fusion`);
* query intent (with an intent task): top-1 / top-3 accuracy of the predicted
  category distribution against the planted one, beside the majority
  category and the category of the top retrieved item (`tfrec.evaluation.intent`).

Example:

```python
result = evaluate_simulated(model, sim, split, ks=[10, 50, 100], max_queries=3000,
                            value_holdout=holdout_mask(sim.users.user_id, 0.2))
result.metrics["business"]["model"]["revenue@10"]
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.simulator import SimulatedData
from tfrec.evaluation import business
from tfrec.evaluation.fusion import fusion_tradeoff
from tfrec.evaluation.intent import intent_evaluation
from tfrec.evaluation.metric_sets import ctr_metrics, ranking_metrics, value_metrics
from tfrec.evaluation.metrics import ranks_in_scores, ranks_of_targets
from tfrec.evaluation.off_policy import off_policy_report, position_reward_model, rank_positions
from tfrec.evaluation.result import EvaluationResult
from tfrec.models.inference import (
    encode_items,
    encode_queries,
    predict_dataframe,
    predict_user_value,
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ctr_scores(model, train_df: pd.DataFrame, test_df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Click probability of each test impression: `model`, `oracle` (true CTR), `popularity` baseline."""
    out = predict_dataframe(model, test_df, outputs=("ctr",))
    # Baseline: smoothed item CTR in training times the position's CTR ratio.
    global_ctr = train_df.click.mean()
    by_item = train_df.groupby("item_id").click.agg(["sum", "count"])
    item_ctr = (by_item["sum"] + 20 * global_ctr) / (by_item["count"] + 20)
    pos_ratio = train_df.groupby("position").click.mean() / global_ctr
    baseline = (
        test_df.item_id.map(item_ctr).fillna(global_ctr).to_numpy()
        * test_df.position.map(pos_ratio).fillna(1.0).to_numpy()
    )
    return {"model": out["ctr"], "oracle": test_df.true_ctr.to_numpy(), "popularity": baseline}


def _training_popularity(sim, train_df):
    return train_df[train_df.click == 1].item_id.value_counts().reindex(sim.items.item_id).fillna(0).to_numpy()


def clicked_queries(test_df, max_queries: int, seed: int = 0) -> pd.DataFrame:
    """The retrieval queries: distinct clicked (session, item) test rows, at most `max_queries` (seeded sample)."""
    clicked = test_df[test_df.click == 1].drop_duplicates(["session_id", "item_id"])
    return clicked.sample(max_queries, random_state=seed) if len(clicked) > max_queries else clicked


def session_queries(test_df, max_queries: int, seed: int = 0) -> pd.DataFrame:
    """The business-value queries: one row per test session, at most `max_queries` (seeded sample)."""
    sessions = test_df.drop_duplicates("session_id")
    return sessions.sample(max_queries, random_state=seed) if len(sessions) > max_queries else sessions


def retrieval_ranks(
    model,
    sim: SimulatedData,
    train_df,
    test_df,
    max_queries: int,
    seed: int = 0,
    query_embeddings=None,
    item_embeddings=None,
) -> dict[str, np.ndarray]:
    """Rank of each clicked test item (up to `max_queries` distinct session-item pairs) in the whole catalog.

    `query_embeddings` (of `clicked_queries(...)`'s rows) and `item_embeddings`
    (of `sim.items`) skip encoding them again.
    """
    clicked = clicked_queries(test_df, max_queries, seed)
    catalog = sim.items
    row_of = pd.Series(np.arange(len(catalog)), index=catalog.item_id)
    target = row_of[clicked.item_id].to_numpy()
    q = encode_queries(model, clicked) if query_embeddings is None else query_embeddings
    items = encode_items(model, catalog) if item_embeddings is None else item_embeddings
    ranks = {"model": ranks_of_targets(q, items, target)}
    popularity = _training_popularity(sim, train_df)
    ranks["popularity"] = ranks_in_scores(popularity, target)
    ranks["oracle"] = ranks_in_scores(sim.true_click_logits(clicked.session_id.to_numpy()), target)
    return ranks


def value_scores(model, sim: SimulatedData, value_holdout=None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Future value of the held-out users and each scorer's prediction (`model`, `oracle`, `segment_mean`).

    `value_holdout` is a boolean mask over `sim.users` of the users whose
    value label training never saw (None: all users, and the segment means
    come from all users too).
    """
    users = sim.users
    held = np.ones(len(users), bool) if value_holdout is None else np.asarray(value_holdout, bool)
    if held.shape != (len(users),):
        raise ValueError(f"value_holdout has shape {held.shape}, expected ({len(users)},) (one flag per user)")
    test_users = users[held]
    train_users = users[~held] if (~held).any() else users
    seg_mean = train_users.groupby("user_segment").future_value.mean()
    baseline = test_users.user_segment.map(seg_mean).fillna(train_users.future_value.mean()).to_numpy()
    scores = {
        "model": predict_user_value(model, test_users)["user_value"],
        "oracle": test_users.true_expected_value.to_numpy(),
        "segment_mean": baseline,
    }
    return test_users.future_value.to_numpy(), scores


def business_evaluation(
    model,
    sim: SimulatedData,
    train_df,
    test_df,
    ks,
    max_queries: int,
    seed: int = 0,
    query_embeddings=None,
    item_embeddings=None,
) -> dict:
    """Expected clicks and revenue@K per 1,000 test queries: model, popularity, random, oracles.

    Each sampled test session is one query; its whole catalog is ranked and
    valued with the simulator's true P(click | seen) (the attractiveness at
    position 1) and examination curve. `query_embeddings` (of
    `session_queries(...)`'s rows) and `item_embeddings` skip encoding them again.
    """
    sessions = session_queries(test_df, max_queries, seed)
    catalog = sim.items
    k_max = min(max(ks), len(catalog))
    ks = [k for k in ks if k <= k_max]
    attractiveness = _sigmoid(sim.true_click_logits(sessions.session_id.to_numpy()))
    q = encode_queries(model, sessions) if query_embeddings is None else query_embeddings
    items = encode_items(model, catalog) if item_embeddings is None else item_embeddings
    model_scores = q @ items.T
    popularity = _training_popularity(sim, train_df)
    rankings = {
        "model": business.top_k(model_scores, k_max),
        "popularity": np.repeat(business.top_k(popularity[None, :], k_max), len(sessions), 0),
        "random": business.random_ranking(len(sessions), len(catalog), k_max, seed=seed),
    }
    exam = business.examination_curve(k_max, sim.config.position_bias)
    result = business.business_value(attractiveness, catalog.item_price.to_numpy(), rankings, ks, exam)
    result["queries"] = len(sessions)
    result["ks"] = ks
    result["examination"] = (
        f"P(position p seen) = p ** -{sim.config.position_bias:g} (the simulator's "
        "examination curve, continued past its slate of "
        f"{sim.config.slate_size})"
    )
    return result


def offline_ab_evaluation(model, sim: SimulatedData, train_df, test_df, resamples: int = 500, seed: int = 0) -> dict:
    """The offline A/B of the model against the logging policy on the test logs, with the true online values.

    The model ranks each logged session's items by its CTR at the top
    position; `off_policy_report` estimates its clicks and purchase value per
    session (DR's reward model: the model's CTR, its examination curve
    calibrated on the logs, times `price x` the training logs' purchase value
    per clicked unit of price). The truth: `sum over items of
    position ** -position_bias x P(click | seen)` (times the expected purchase
    value of a click) for the model's ranking and for the logged one.
    """
    rows = test_df.reset_index(drop=True)
    ctr = predict_dataframe(model, rows.drop(columns=[sim.schema().position]), outputs=["ctr"])["ctr"]
    positions = rank_positions(ctr, rows.session_id)
    clicked_price = float((train_df.click * train_df.item_price).sum())
    per_price = float(train_df.purchase_value.sum()) / clicked_price if clicked_price > 0 else 0.0
    value = rows.item_price.to_numpy(np.float64) * per_price
    reward_model = {
        "click": position_reward_model(ctr, rows),
        "purchase_value": position_reward_model(ctr, rows, value=value),
    }
    report = off_policy_report(
        rows, positions, ["click", "purchase_value"], reward_model=reward_model, resamples=resamples, seed=seed
    )
    a, v = rows.true_attractiveness.to_numpy(), rows.true_purchase_value_if_clicked.to_numpy()
    bias = sim.config.position_bias
    sessions = rows.session_id.to_numpy()

    def per_session(x):
        return float(pd.Series(x).groupby(sessions).sum().mean())

    candidate_exam = positions.astype(np.float64) ** -bias
    logged_exam = rows.position.to_numpy(np.float64) ** -bias
    report["true_online"] = {
        "click": per_session(candidate_exam * a),
        "purchase_value": per_session(candidate_exam * a * v),
    }
    report["true_logging"] = {"click": per_session(logged_exam * a), "purchase_value": per_session(logged_exam * a * v)}
    return report


def evaluate_simulated(
    model,
    sim: SimulatedData,
    split,
    ks,
    max_queries: int = 5000,
    value_holdout=None,
    seed: int = 0,
    context: dict | None = None,
) -> EvaluationResult:
    """Every section of the evaluation on the test split of simulator data.

    Args:
        model: a trained `TwoTowerModel`.
        sim: the `SimulatedData` the model was trained on.
        split: its `time_split` (train rows feed the baselines, test rows are scored).
        ks: cut-offs for Recall@K, NDCG@K and the business metrics.
        max_queries: most test queries for retrieval and business value.
        value_holdout: boolean mask over `sim.users` of users whose value label
            training never saw (the user-value section scores only them).
        seed: seed of the query samples and the random ranker.
        context: extra lines for the report header.
    """
    ks = sorted(int(k) for k in ks)
    train_df, test_df = split.train, split.test
    # Sections of tasks the model was built without (loss weight 0) are not evaluated.
    tasks = set(model.task_names)
    y_ctr = test_df.click.to_numpy() if "ctr" in tasks else None
    ctr = ctr_scores(model, train_df, test_df) if "ctr" in tasks else None
    # Encode every query and the catalog once for retrieval and business value.
    clicked, sessions = clicked_queries(test_df, max_queries, seed), session_queries(test_df, max_queries, seed)
    q = encode_queries(model, pd.concat([clicked, sessions]))
    items = encode_items(model, sim.items)
    ranks = retrieval_ranks(model, sim, train_df, test_df, max_queries, seed, q[: len(clicked)], items)
    y_value, value = value_scores(model, sim, value_holdout) if "value" in tasks else (None, None)
    metrics = {
        "retrieval": {**ranking_metrics(ranks, ks), "queries": len(ranks["model"])},
        "business": business_evaluation(model, sim, train_df, test_df, ks, max_queries, seed, q[len(clicked) :], items),
    }
    if ctr is not None:
        metrics = {"ctr": ctr_metrics(y_ctr, ctr), **metrics}
        # 1,000 queries: each price weight scores its own candidates with the CTR head.
        metrics["fusion"] = fusion_tradeoff(model, sim, sessions.head(1000), k=min(10, ks[0]) if ks else 10)
        if "propensity" in test_df.columns:
            metrics["ab"] = offline_ab_evaluation(model, sim, train_df, test_df, seed=seed)
    if value is not None and y_value is not None:
        metrics["value"] = {**value_metrics(y_value, value), "users": len(y_value)}
    if "intent" in tasks:
        metrics["intent"] = intent_evaluation(model, sim, train_df, sessions, q[len(clicked) :], items)
    cfg = sim.config
    info = {
        "data": (
            f"simulator (seed {cfg.seed}): {cfg.num_users:,} users, {cfg.num_items:,} items, "
            f"{cfg.num_sessions:,} sessions x {cfg.slate_size} slots"
        ),
        "test split": f"{len(test_df):,} impressions from {test_df.event_time.min()} on",
        "CTR baseline": "smoothed item CTR in training x the position's CTR ratio",
        "retrieval baseline": "items ranked by training clicks (popularity)",
        "user value baseline": "mean future value of the user's segment among training users",
        "oracle": "the simulator's true click probabilities and expected values (the best achievable)",
        "intent baselines": "the majority category of training clicks; the category of the top retrieved item",
    }
    info.update(context or {})
    return EvaluationResult(
        metrics=metrics,
        ks=ks,
        ctr_labels=y_ctr,
        ctr_predictions=ctr,
        retrieval_ranks=ranks,
        value_labels=y_value,
        value_predictions=value,
        context=info,
    )
