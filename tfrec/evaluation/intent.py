"""Query intent on simulator data: the model's category distribution per query against the planted one.

Each sampled test session's true intent is `SimulatedData.true_query_intent`
(the category mix of the clicks it would give if every item were shown at
position 1); its true category is that distribution's argmax. Three scorers
predict a distribution over the categories:

* `model`: the `QueryIntentTask`'s `intent_probabilities` (categories the
  head never saw in training get 0);
* `majority`: the share of each category among the training clicks, the same
  for every query (its top-1 is the majority category);
* `top_retrieved`: the categories of the model's own retrieval over the
  whole catalog (two-tower score): ranked by where each first appears, so its
  top-1 is the category of the top retrieved item; its distribution is the
  category mix of the top `depth` items.

Reported for each: `top1` (predicted argmax is the true argmax), `top3` (the
true argmax is among the predicted top 3; ties count against it, as
`ranks_in_scores` does) and `total_variation` (mean TV distance to the true
distribution, 0 is exact).

Example:

```python
section = intent_evaluation(model, sim, train_df, sessions)    # sessions: test rows, one per session
section["model"]["top1"], section["majority"]["top1"], section["top_retrieved"]["top1"]
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.evaluation.metrics import ranks_in_scores, recall_at_k, total_variation
from tfrec.models.inference import encode_items, encode_queries, predict_intent

#: The simulator's category column (what `SimulatedData.true_query_intent` reads).
CATEGORY_COLUMN = "item_category"


def _scores(truth, scores, distribution) -> dict:
    target = truth.argmax(axis=1)
    ranks = ranks_in_scores(scores, target)
    return {
        "top1": recall_at_k(ranks, 1),
        "top3": recall_at_k(ranks, 3),
        "total_variation": total_variation(truth, distribution),
    }


def model_intent(model, sessions: pd.DataFrame, categories) -> np.ndarray:
    """The model's `intent_probabilities` of the rows of `sessions`, as columns of `categories` (0 where unknown)."""
    probabilities = predict_intent(model, sessions)
    column = {c: j for j, c in enumerate(model.intent_task.vocabulary)}
    out = np.zeros((len(sessions), len(categories)))
    for j, category in enumerate(categories):
        if category in column:
            out[:, j] = probabilities[:, column[category]]
    return out


def intent_evaluation(
    model, sim, train_df, sessions: pd.DataFrame, query_embeddings=None, item_embeddings=None, depth: int = 10
) -> dict:
    """The `intent` section: `model`, `majority` and `top_retrieved` against the planted intent of `sessions`.

    Args:
        model: a `TwoTowerModel` with a `QueryIntentTask`.
        sim: the `SimulatedData` (its truth and catalog).
        train_df: the training rows (the majority baseline's click counts).
        sessions: one test row per session (`session_queries`).
        query_embeddings, item_embeddings: the query tower's embeddings of
            `sessions` and the item tower's of `sim.items` (computed if None).
        depth: retrieved items whose category mix is `top_retrieved`'s distribution.
    """
    categories = sim.intent_categories
    truth = sim.true_query_intent(sessions.session_id.to_numpy())
    predicted = model_intent(model, sessions, categories)
    result: dict = {"model": _scores(truth, predicted, predicted)}

    clicked = train_df.loc[train_df.click > 0, CATEGORY_COLUMN].astype(str)
    counts = clicked.value_counts().reindex(categories).fillna(0).to_numpy(dtype=np.float64)
    shares = counts / max(counts.sum(), 1.0)
    result["majority"] = _scores(truth, shares, np.broadcast_to(shares, truth.shape))

    q = encode_queries(model, sessions) if query_embeddings is None else query_embeddings
    items = encode_items(model, sim.items) if item_embeddings is None else item_embeddings
    column = {c: j for j, c in enumerate(categories)}
    item_category = np.array([column[c] for c in sim.items[CATEGORY_COLUMN]], dtype=np.int64)
    scores = q @ items.T
    reach = min(len(items), max(depth, 100))
    top = np.argpartition(-scores, reach - 1, axis=1)[:, :reach]
    top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
    ranked = item_category[top]  # [queries, reach] categories in retrieval order
    first = np.full((len(sessions), len(categories)), -np.inf)
    for position in range(reach - 1, -1, -1):  # the earliest position wins
        first[np.arange(len(sessions)), ranked[:, position]] = -position
    mix = np.zeros((len(sessions), len(categories)))
    for position in range(min(depth, reach)):
        mix[np.arange(len(sessions)), ranked[:, position]] += 1.0
    result["top_retrieved"] = _scores(truth, first, mix / mix.sum(axis=1, keepdims=True))

    result["queries"] = len(sessions)
    result["categories"] = len(categories)
    result["depth"] = int(min(depth, reach))
    result["planted_top_share"] = float(truth.max(axis=1).mean()) if len(truth) else float("nan")
    return result
