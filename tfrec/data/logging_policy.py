"""A stochastic logging ranker: Plackett-Luce over a score, with its exact propensities.

Off-policy evaluation (`tfrec.evaluation.off_policy`) needs, for every logged
impression, the probability with which the logging policy showed that item at
that position. A Plackett-Luce ranker over scores `s` at temperature `t` fills
position 1 with item `i` with probability `exp(s_i / t) / sum_j exp(s_j / t)`,
then position 2 from the remaining items the same way, and so on. Sampling it
is the Gumbel-max trick: sort `s / t + Gumbel noise` (a production ranker with
exploration; `s + t * Gumbel` is also what a noisy deterministic ranker looks
like).

Its item-position marginals `P(item i at position p)` have no closed form; for
slates of at most `EXACT_MAX_ITEMS` items they are computed exactly by dynamic
programming over the subsets of items already placed (`2 ** K` states per
session, vectorised over sessions), otherwise estimated by Monte Carlo.
Written here because no maintained library computes Plackett-Luce position
marginals (scipy and scikit-learn have no ranking distributions).

Example:

```python
import numpy as np
scores = np.array([[2.0, 1.0, 0.0]])
order = plackett_luce_sample(scores, 1.0, np.random.default_rng(0))      # [[i1, i2, i3]]
marginals = plackett_luce_position_probabilities(scores, 1.0)            # [1, 3 items, 3 positions]
marginals[0].sum(0)                                                     # each position: 1
```
"""

from __future__ import annotations

import numpy as np

EXACT_MAX_ITEMS = 12
_CHUNK_STATES = 2**23  # sessions x subset states held at once (64 MB per float64 array)


def _weights(scores, temperature: float) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"logging policy: scores must be [sessions, items], got shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("logging policy: scores must be finite")
    if not temperature > 0:
        raise ValueError(f"logging policy: temperature must be > 0, got {temperature}")
    z = scores / temperature
    # Clipped so that no weight underflows to 0 (gaps over 700 temperatures tie).
    return np.exp(np.maximum(z - z.max(axis=1, keepdims=True), -700.0))


def plackett_luce_sample(scores, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One ranking per row: `[sessions, items]` item indices, position 1 first."""
    _weights(scores, temperature)  # validates
    z = np.asarray(scores, dtype=np.float64) / temperature
    return np.argsort(-(z + rng.gumbel(size=z.shape)), axis=1, kind="stable")


def plackett_luce_position_probabilities(scores, temperature: float, samples: int = 4000, seed: int = 0) -> np.ndarray:
    """`P(item k at position p)`: `[sessions, items, positions]`, rows and columns sum to 1.

    Exact for at most `EXACT_MAX_ITEMS` items per row; for longer rows a
    Monte Carlo estimate from `samples` rankings per row (seeded).
    """
    w = _weights(scores, temperature)
    n, k = w.shape
    if k > EXACT_MAX_ITEMS:
        return _monte_carlo(w, samples, seed)
    out = np.empty((n, k, k))
    chunk = max(1, _CHUNK_STATES // (1 << k))
    for start in range(0, n, chunk):
        out[start : start + chunk] = _exact(w[start : start + chunk])
    return out


def _exact(w: np.ndarray) -> np.ndarray:
    """Dynamic programme over placed subsets: `prob[m]` is P(the first |m| positions hold subset m)."""
    n, k = w.shape
    states = 1 << k
    prob = np.zeros((states, n))
    prob[0] = 1.0
    # Total weight of each subset, built from smaller subsets.
    subset_weight = np.zeros((states, n))
    for m in range(1, states):
        low = m & -m
        subset_weight[m] = subset_weight[m ^ low] + w[:, low.bit_length() - 1]
    full = states - 1
    popcount = np.array([bin(m).count("1") for m in range(states)])
    free_items = [np.array([i for i in range(k) if not m >> i & 1]) for m in range(states)]
    out = np.zeros((n, k, k))
    # Subsets in increasing numeric order: every subset comes after the ones it grows from.
    for m in range(states - 1):
        p = prob[m]
        if not p.any():
            continue
        remaining = subset_weight[full ^ m]  # summed, not subtracted from the total: no cancellation
        position = popcount[m]
        free = free_items[m]
        step = (p / remaining)[:, None] * w[:, free]
        out[:, free, position] += step
        prob[m | (1 << free)] += step.T
    return out


def _monte_carlo(w: np.ndarray, samples: int, seed: int) -> np.ndarray:
    n, k = w.shape
    rng = np.random.default_rng(seed)
    z = np.log(w)
    out = np.zeros((n, k, k))
    rows = np.arange(n)[:, None]
    positions = np.arange(k)[None, :]
    for _ in range(samples):
        order = np.argsort(-(z + rng.gumbel(size=z.shape)), axis=1)
        out[rows, order, positions] += 1.0
    return out / samples
