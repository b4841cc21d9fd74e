"""The simulator's Plackett-Luce logging ranker and its logged propensities."""

import itertools

import numpy as np
import pandas as pd
import pytest

from tfrec.data import logging_policy
from tfrec.data.simulator import SimulatorConfig, simulate


def _enumerated_marginals(scores, temperature):
    """P(item at position) by summing Plackett-Luce probabilities of every permutation."""
    w = np.exp(np.asarray(scores) / temperature)
    k = len(w)
    out = np.zeros((k, k))
    for perm in itertools.permutations(range(k)):
        p, left = 1.0, list(range(k))
        for i in perm:
            p *= w[i] / w[left].sum()
            left.remove(i)
        for position, i in enumerate(perm):
            out[i, position] += p
    return out


def test_exact_marginals_equal_enumeration_over_permutations():
    scores = np.random.default_rng(0).normal(0, 2, (6, 5))
    marginals = logging_policy.plackett_luce_position_probabilities(scores, 1.3)
    for row in range(len(scores)):
        np.testing.assert_allclose(marginals[row], _enumerated_marginals(scores[row], 1.3), atol=1e-12)
    np.testing.assert_allclose(marginals.sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(marginals.sum(2), 1.0, atol=1e-12)


def test_sampled_rankings_follow_the_marginals():
    scores = np.array([[1.5, 0.2, -0.4, 0.9]])
    marginals = logging_policy.plackett_luce_position_probabilities(scores, 0.8)[0]
    orders = logging_policy.plackett_luce_sample(np.repeat(scores, 100_000, 0), 0.8, np.random.default_rng(1))
    freq = np.stack([np.bincount(orders[:, p], minlength=4) / len(orders) for p in range(4)], axis=1)
    # 100k draws: the standard error of a frequency is at most 0.0016.
    np.testing.assert_allclose(freq, marginals, atol=0.007)


def test_monte_carlo_marginals_for_long_slates_are_close_to_exact_ones():
    scores = np.random.default_rng(2).normal(0, 1, (3, logging_policy.EXACT_MAX_ITEMS))
    exact = logging_policy.plackett_luce_position_probabilities(scores, 1.0)
    w = np.exp(scores - scores.max(1, keepdims=True))
    estimate = logging_policy._monte_carlo(w, samples=20_000, seed=0)
    np.testing.assert_allclose(estimate, exact, atol=0.02)
    longer = logging_policy.plackett_luce_position_probabilities(np.zeros((2, 14)), 1.0, samples=500)
    np.testing.assert_allclose(longer.sum(1), 1.0)


def test_low_temperature_is_the_sorted_order_and_scores_are_validated():
    scores = np.array([[0.0, 3.0, 1.0]])
    marginals = logging_policy.plackett_luce_position_probabilities(scores, 0.01)
    np.testing.assert_allclose(marginals[0], [[0, 0, 1], [1, 0, 0], [0, 1, 0]], atol=1e-9)
    with pytest.raises(ValueError, match="temperature"):
        logging_policy.plackett_luce_position_probabilities(scores, 0.0)
    with pytest.raises(ValueError, match="finite"):
        logging_policy.plackett_luce_sample(np.array([[0.0, np.nan]]), 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="logging_temperature"):
        SimulatorConfig(logging_temperature=-1)


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulatorConfig(num_users=800, num_items=400, num_sessions=6000, slate_size=6, seed=5))


def test_simulator_logs_the_propensity_of_each_shown_position(sim):
    imp = sim.impressions
    marginals = sim.truth["logging_position_probabilities"]
    assert marginals.shape == (6000, 6, 6)
    logged = marginals[:, np.arange(6), np.arange(6)].ravel()
    np.testing.assert_allclose(imp.propensity.to_numpy(), logged, rtol=1e-6)
    assert imp.propensity.between(0, 1, inclusive="right").all()
    # Recomputing the marginals from the planted logits gives the same numbers.
    first = imp[imp.session_id < 50]
    cand = pd.Index(sim.items.item_id).get_indexer(first.item_id).reshape(50, 6)
    logits = sim.true_click_logits(np.arange(50), cand)
    again = logging_policy.plackett_luce_position_probabilities(logits, sim.config.logging_temperature)
    np.testing.assert_allclose(again, marginals[:50], rtol=1e-5, atol=1e-7)


def test_inverse_propensity_weighting_recovers_a_new_rankings_true_clicks(sim):
    imp = sim.impressions
    # A new ranking of the logged candidates: by planted attractiveness.
    new_position = imp.groupby("session_id").true_attractiveness.rank(ascending=False, method="first")
    weight = (new_position == imp.position) / imp.propensity
    per_session = (weight * imp.click).groupby(imp.session_id).sum()
    truth = (new_position**-sim.config.position_bias * imp.true_attractiveness).groupby(imp.session_id).sum()
    se = per_session.std() / np.sqrt(len(per_session))
    assert abs(per_session.mean() - truth.mean()) < 3 * se
    assert truth.mean() > imp.groupby("session_id").click.sum().mean()  # better than what was logged
