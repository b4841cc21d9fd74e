"""Business value of a ranking: expected clicks@K and revenue@K per 1,000 queries.

A ranker shows, for each query, items in positions 1..K. With

* `a[q, i]`: the probability that query `q`'s user clicks item `i` *if they
  look at it* (the attractiveness; on simulator data the planted truth
  `sigmoid(SimulatedData.true_click_logits)`, elsewhere a model's estimate),
* `e[p]`: the probability that position `p` is looked at (the examination
  curve; the simulator's is `p ** -position_bias`, `None` here means every
  shown position is seen), and
* `price[i]`: the item's price,

the expected clicks of query `q` in the top K are `sum_{p<=K} e[p] a[q, r_p]`
and the expected revenue `sum_{p<=K} e[p] a[q, r_p] price[r_p]`, where `r_p`
is the item the ranker puts at position `p`. Both are averaged over queries
and scaled to 1,000 queries. Revenue assumes each click converts into one sale
at list price: it is click-weighted price (gross merchandise value of the
clicks), an upper bound on revenue that ranks rankers the same way as revenue
does when conversion does not depend on the item.

Because `e` decreases with the position, sorting items by `a` maximises the
expected clicks and sorting by `a * price` maximises the expected revenue
(rearrangement inequality): with the true `a`, those are the oracle rankings,
the best any ranker can do, and `share_of_oracle` is how much of the
achievable value a ranker captures.

Example:

```python
exam = examination_curve(10, position_bias=0.6)
ranking = top_k(model_scores, 10)
expected_clicks_at_k(true_attractiveness, ranking, k=10, examination=exam)   # per 1,000 queries
table = business_value(true_attractiveness, price, {"model": ranking}, ks=[10], examination=exam)
```
"""

from __future__ import annotations

import numpy as np

PER_QUERIES = 1000


def examination_curve(k: int, position_bias: float) -> np.ndarray:
    """P(position p is looked at) = `p ** -position_bias` for p = 1..k (position 1 is always seen)."""
    if k < 1:
        raise ValueError(f"examination_curve: k must be >= 1, got {k}")
    if position_bias < 0:
        raise ValueError(f"examination_curve: position_bias must be >= 0, got {position_bias}")
    return np.arange(1, k + 1, dtype=np.float64) ** -float(position_bias)


def top_k(scores, k: int) -> np.ndarray:
    """Indices of the `k` highest scores of each row, best first; ties go to the lower index.

    Example: `top_k([[0.1, 0.9, 0.5]], 2)` is `[[1, 2]]`.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    n, m = scores.shape
    if not 1 <= k <= m:
        raise ValueError(f"top_k: k must be in [1, {m}] (the number of items), got {k}")
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    # Sort the k candidates by (-score, index): deterministic ties.
    cand = np.take_along_axis(scores, part, 1)
    order = np.lexsort((part, -cand), axis=-1)
    return np.take_along_axis(part, order, 1)


def random_ranking(num_queries: int, num_items: int, k: int, seed: int = 0) -> np.ndarray:
    """`k` distinct items per query drawn uniformly at random (the random ranker)."""
    rng = np.random.default_rng(seed)
    return top_k(rng.random((num_queries, num_items)), k)


def _check(click_probability, ranking, k, examination):
    a = np.atleast_2d(np.asarray(click_probability, dtype=np.float64))
    r = np.atleast_2d(np.asarray(ranking))
    if r.shape[0] != a.shape[0]:
        raise ValueError(f"ranking has {r.shape[0]} queries but click_probability has {a.shape[0]}")
    if r.shape[1] < k:
        raise ValueError(f"ranking has {r.shape[1]} positions per query, fewer than k={k}")
    if r.size and (r.min() < 0 or r.max() >= a.shape[1]):
        raise ValueError(f"ranking holds item indices outside [0, {a.shape[1]})")
    if examination is None:
        e = np.ones(k)
    else:
        e = np.asarray(examination, dtype=np.float64).ravel()
        if len(e) < k:
            raise ValueError(f"examination has {len(e)} positions, fewer than k={k}")
        e = e[:k]
    return a, r[:, :k], e


def expected_clicks_at_k(click_probability, ranking, k: int, examination=None, per: int = PER_QUERIES) -> float:
    """Expected clicks in the top `k` per `per` queries.

    Args:
        click_probability: `[queries, items]` P(click | item seen) for each query.
        ranking: `[queries, >= k]` item indices in display order (position 1 first).
        k: positions counted.
        examination: `[>= k]` P(position seen); None = every position is seen.
        per: queries to scale to (1,000).

    Example: one query, P(click | seen) 0.5 and 0.2, positions seen with 1 and
    0.5: `expected_clicks_at_k([[0.5, 0.2]], [[0, 1]], 2, [1, 0.5])` is
    `1000 * (0.5 + 0.5 * 0.2) = 600`.
    """
    a, r, e = _check(click_probability, ranking, k, examination)
    if not len(a):
        return float("nan")
    shown = np.take_along_axis(a, r, 1)
    return float(per * (shown * e).sum(1).mean())


def expected_revenue_at_k(click_probability, ranking, price, k: int, examination=None, per: int = PER_QUERIES) -> float:
    """Expected click-weighted price (revenue if each click buys one at list price) in the top `k` per `per` queries.

    `price` is `[items]`; the other arguments are as in `expected_clicks_at_k`.
    Example: `expected_revenue_at_k([[0.5, 0.2]], [[0, 1]], [10, 100], 2, [1, 0.5])`
    is `1000 * (0.5 * 10 + 0.5 * 0.2 * 100) = 15000`.
    """
    a, r, e = _check(click_probability, ranking, k, examination)
    price = np.asarray(price, dtype=np.float64).ravel()
    if len(price) != a.shape[1]:
        raise ValueError(f"price has {len(price)} items but click_probability has {a.shape[1]}")
    if not len(a):
        return float("nan")
    shown = np.take_along_axis(a, r, 1) * price[r]
    return float(per * (shown * e).sum(1).mean())


def oracle_rankings(click_probability, price, k: int) -> dict[str, np.ndarray]:
    """The best rankings for true click probabilities: by P(click) (clicks) and by P(click) x price (revenue)."""
    a = np.atleast_2d(np.asarray(click_probability, dtype=np.float64))
    price = np.asarray(price, dtype=np.float64).ravel()
    return {"oracle_clicks": top_k(a, k), "oracle_revenue": top_k(a * price[None, :], k)}


def business_value(click_probability, price, rankings: dict, ks, examination=None, per: int = PER_QUERIES) -> dict:
    """Expected clicks and revenue at each K for several rankers, and their share of the oracle's.

    Args:
        click_probability: `[queries, items]` true (simulator) or estimated P(click | seen).
        price: `[items]` prices.
        rankings: ranker name -> `[queries, >= max(ks)]` item indices.
        ks: cut-offs.
        examination: `[>= max(ks)]` P(position seen), or None.

    Returns:
        `{ranker: {"clicks@K": ..., "revenue@K": ..., "clicks_share_of_oracle@K": ...,
        "revenue_share_of_oracle@K": ...}}` with the two oracle rankers
        (`oracle_clicks`, `oracle_revenue`) added; the shares divide by the
        best of the oracles for that quantity (`oracle_clicks` for clicks,
        `oracle_revenue` for revenue). With estimated probabilities the
        "oracle" is only the best ranking *under the estimate*.
    """
    ks = sorted(int(k) for k in ks)
    all_rankings = dict(rankings)
    all_rankings.update(oracle_rankings(click_probability, price, max(ks)))
    out: dict[str, dict[str, float]] = {name: {} for name in all_rankings}
    for k in ks:
        for name, ranking in all_rankings.items():
            out[name][f"clicks@{k}"] = expected_clicks_at_k(click_probability, ranking, k, examination, per)
            out[name][f"revenue@{k}"] = expected_revenue_at_k(click_probability, ranking, price, k, examination, per)
        best_clicks = out["oracle_clicks"][f"clicks@{k}"]
        best_revenue = out["oracle_revenue"][f"revenue@{k}"]
        for name in all_rankings:
            out[name][f"clicks_share_of_oracle@{k}"] = (
                out[name][f"clicks@{k}"] / best_clicks if best_clicks > 0 else float("nan")
            )
            out[name][f"revenue_share_of_oracle@{k}"] = (
                out[name][f"revenue@{k}"] / best_revenue if best_revenue > 0 else float("nan")
            )
    return out
