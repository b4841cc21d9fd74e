"""The click-revenue trade-off of the fused ranking (`ObjectiveFusion`), beside the oracle's.

For each sampled test query the model retrieves `candidates` items (by the
objective below with its retrieval logit in place of `log(ctr)`, as the
`rank` signature does), scores them with its CTR head (and relevance, user
value) and ranks them by the fused objective
`c * log(ctr) + r * relevance / max + p * log(price) + u * log(1 + value) * log(price)`
for a sweep of the price weight `p` (the other weights as configured). Each
setting's top `k` is valued with the simulator's true click probabilities and
examination curve (`tfrec.evaluation.business`): expected clicks and revenue
per 1,000 queries. The oracle ranks the whole catalog by the same objective
with the true click probability (`log a + p * log(price)`): `p = 0` is the
clicks oracle, `p = 1` the revenue oracle, and between them its points trace
the best revenue achievable at each level of clicks (the frontier; mixing two
rankings at random reaches the straight line between two points).

Reported: each point of both curves; the model's best revenue as a share of
the oracle's best; and, for each model point, its revenue over the frontier's
revenue at the same expected clicks (at least as many clicks: the frontier
revenue at that level).

Example:

```python
curve = fusion_tradeoff(model, sim, sessions, price_weights=[0, 0.5, 1.0], k=10)
curve["best_revenue_share"], curve["min_revenue_share_at_same_clicks"]
```
"""

from __future__ import annotations

import numpy as np

from tfrec.evaluation import business
from tfrec.layers.objective_fusion import ObjectiveFusion
from tfrec.models.inference import candidate_scores, predict_user_value, tower_outputs

DEFAULT_PRICE_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def frontier_revenue(oracle_clicks, oracle_revenue, clicks) -> np.ndarray:
    """The oracle frontier's revenue at `clicks`: the most of any mix of oracle points with at least those clicks.

    Example: points (clicks, revenue) (10, 0) and (6, 8): at 8 clicks the mix
    of both halves gets 4: `frontier_revenue([10, 6], [0, 8], [8])` is `[4.0]`.
    """
    c = np.asarray(oracle_clicks, dtype=np.float64)
    r = np.asarray(oracle_revenue, dtype=np.float64)
    order = np.argsort(-c)
    c, r = c[order], r[order]
    # Upper concave hull of the points, from most clicks to fewest (revenue rising).
    hull: list[tuple[float, float]] = []
    for point in zip(c, r):
        if hull and point[1] <= hull[-1][1]:
            continue  # fewer clicks and no more revenue: never on the frontier
        while len(hull) >= 2:
            (c1, r1), (c2, r2) = hull[-2], hull[-1]
            # Drop the middle point when it lies under the line from hull[-2] to the new point.
            if (r2 - r1) * (c1 - point[0]) <= (point[1] - r1) * (c1 - c2):
                hull.pop()
            else:
                break
        hull.append(point)
    hc = np.array([h[0] for h in hull])[::-1]  # increasing clicks
    hr = np.array([h[1] for h in hull])[::-1]
    return np.interp(np.asarray(clicks, dtype=np.float64), hc, hr, left=hr[0], right=hr[-1])


def ranking_inputs(model, rows, catalog) -> dict:
    """What `rank_candidates` reads, computed once for `rows` (queries) and `catalog`.

    The tower outputs of both, the retrieval logits `[queries, items]`
    (embedding dot product over the temperature), the catalog's prices, the
    queries' and items' texts, and the users' predicted value where the model
    has a value task.
    """
    schema = model.schema
    query = tower_outputs(model, rows, "query")
    items = tower_outputs(model, catalog, "item")
    user_value = None
    if getattr(model, "value_task", None) is not None:
        user_value = predict_user_value(model, rows)["user_value"].reshape(-1)
    return {
        "query": query,
        "items": items,
        "logits": query["embedding"] @ items["embedding"].T / model.config.temperature,
        "price": catalog[schema.item_price].to_numpy(np.float64),
        "query_text": rows[schema.query_text].to_numpy() if schema.query_text else None,
        "item_text": catalog[schema.item_text].to_numpy() if schema.item_text else None,
        "user_value": user_value,
    }


def rank_candidates(model, inputs: dict, fusion: ObjectiveFusion, candidates: int, k: int):
    """The `rank` signature's steps in process: `(catalog rows [queries, k], fused scores, ctr)` of the top `k`.

    Candidates are the `candidates` items best by `fusion` with the retrieval
    logit in place of `log(ctr)`; the model's heads score them (CTR, and
    relevance where it has one) and `fusion` ranks them. `inputs`:
    `ranking_inputs(model, rows, catalog)`.
    """
    logits, price, user_value = inputs["logits"], inputs["price"], inputs["user_value"]
    coarse = {"log_ctr": logits, "price": np.broadcast_to(price[None, :], logits.shape)}
    if user_value is not None:
        coarse["user_value"] = user_value
    retrieved = business.top_k(np.asarray(fusion(coarse)), min(candidates, logits.shape[1]))
    pairs = candidate_scores(
        model, inputs["query"], inputs["items"], retrieved, inputs["query_text"], inputs["item_text"]
    )
    signals = {"ctr": pairs["ctr"], "price": price[retrieved]}
    if "relevance" in pairs:
        signals["relevance"] = pairs["relevance"]
    if user_value is not None:
        signals["user_value"] = user_value
    fused = np.asarray(fusion(signals))
    top = business.top_k(fused, k)
    return (
        np.take_along_axis(retrieved, top, 1),
        np.take_along_axis(fused, top, 1),
        np.take_along_axis(pairs["ctr"], top, 1),
    )


def fusion_tradeoff(
    model,
    sim,
    sessions,
    price_weights=DEFAULT_PRICE_WEIGHTS,
    k: int = 10,
    candidates: int | None = None,
    weights: dict | None = None,
    oracle_weights=None,
) -> dict:
    """Expected clicks and revenue@k of the fused ranking over a sweep of the price weight, and the oracle's.

    Args:
        model: a trained `TwoTowerModel` with a CTR task.
        sim: the `SimulatedData` (truth and catalog).
        sessions: test rows, one per query (`session_queries`).
        price_weights: the price weights `p` swept.
        k: positions valued.
        candidates: items the model retrieves and reranks per query
            (default: the model config's `fusion.candidates`).
        weights: the other fusion weights (default: the model config's).
        oracle_weights: price weights of the oracle's curve (default: a fine
            grid over `[0, max(price_weights)]`).
    """
    if getattr(model, "ctr_task", None) is None:
        raise ValueError("fusion_tradeoff: the model has no CTR task (the training data had no click label)")
    fusion_config = model.config.fusion
    candidates = int(candidates or fusion_config.candidates)
    catalog = sim.items
    n_items = len(catalog)
    candidates = min(candidates, n_items)
    k = min(k, candidates)
    base = {"click_weight": fusion_config.click_weight, "relevance_weight": fusion_config.relevance_weight}
    base["value_weight"] = fusion_config.value_weight
    base.update(weights or {})
    schema = model.schema

    inputs = ranking_inputs(model, sessions, catalog)
    price = inputs["price"]
    relevance_max = float(schema.relevance_range[1]) if schema.relevance_range else 1.0

    def ranked(fusion):
        return rank_candidates(model, inputs, fusion, candidates, k)[0]

    attractiveness = 1.0 / (1.0 + np.exp(-sim.true_click_logits(sessions.session_id.to_numpy())))
    exam = business.examination_curve(k, sim.config.position_bias)

    def value(ranking):
        return (
            business.expected_clicks_at_k(attractiveness, ranking, k, exam),
            business.expected_revenue_at_k(attractiveness, ranking, price, k, exam),
        )

    model_points = []
    for p in price_weights:
        fusion = ObjectiveFusion(**{**base, "price_weight": float(p)}, relevance_max=relevance_max)
        clicks, revenue = value(ranked(fusion))
        model_points.append({"price_weight": float(p), "clicks": clicks, "revenue": revenue})
    if oracle_weights is None:
        oracle_weights = np.linspace(0.0, max(1.0, float(max(price_weights))), 13)
    log_a, log_price = np.log(attractiveness), np.log(np.maximum(price, 1e-6))[None, :]
    oracle_points = []
    for p in oracle_weights:
        clicks, revenue = value(business.top_k(log_a + float(p) * log_price, k))
        oracle_points.append({"price_weight": float(p), "clicks": clicks, "revenue": revenue})

    oc = [o["clicks"] for o in oracle_points]
    orev = [o["revenue"] for o in oracle_points]
    at_same = frontier_revenue(oc, orev, [m["clicks"] for m in model_points])
    for point, frontier in zip(model_points, at_same):
        point["frontier_revenue"] = float(frontier)
        point["revenue_share_at_same_clicks"] = float(point["revenue"] / frontier) if frontier > 0 else float("nan")
    best = max(model_points, key=lambda m: m["revenue"])
    return {
        "k": k,
        "candidates": candidates,
        "queries": len(sessions),
        "weights": {**base, "relevance_max": relevance_max},
        "model": model_points,
        "oracle": oracle_points,
        "best_price_weight": best["price_weight"],
        "best_revenue_share": float(best["revenue"] / max(orev)),
        "clicks_share_at_price_weight_0": float(model_points[0]["clicks"] / max(oc)) if price_weights[0] == 0 else None,
        "min_revenue_share_at_same_clicks": float(min(m["revenue_share_at_same_clicks"] for m in model_points)),
    }
