"""Off-policy estimators (IPS, SNIPS, DR) against closed forms and the simulator's true online value."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.evaluation.off_policy import off_policy_report, position_reward_model, rank_positions


def _logs(rng, sessions=400, k=4, propensity=None):
    rows = []
    for s in range(sessions):
        for p in range(1, k + 1):
            rows.append({"session_id": s, "position": p, "click": int(rng.random() < 0.3 / p), "value": rng.random()})
    logs = pd.DataFrame(rows)
    logs["propensity"] = propensity if propensity is not None else rng.uniform(0.05, 1.0, len(logs))
    return logs


def test_a_candidate_equal_to_the_logging_policy_estimates_the_logged_mean():
    rng = np.random.default_rng(0)
    logs = _logs(rng)
    logged = logs.groupby("session_id").click.sum().mean()
    # A stochastic candidate with the logging policy's own probabilities: every weight is 1.
    same = off_policy_report(logs, logs.position, ["click"], candidate_probability=logs.propensity, resamples=200)
    for name in ("ips", "snips", "dr"):
        assert same["click"][name]["value"] == pytest.approx(logged, rel=1e-12)
        assert same["click"][name]["lift"] == pytest.approx(0.0, abs=1e-12)
    assert same["ess"] == pytest.approx(len(logs))
    # A deterministic logging policy (propensity 1) and the candidate keeping its order.
    fixed = _logs(rng, propensity=1.0)
    report = off_policy_report(fixed, fixed.position, ["click", "value"], resamples=200)
    for reward in ("click", "value"):
        want = fixed.groupby("session_id")[reward].sum().mean()
        assert report[reward]["ips"]["value"] == pytest.approx(want, rel=1e-12)
        assert report[reward]["ips"]["ci_low"] <= want <= report[reward]["ips"]["ci_high"]


def test_ess_ips_by_hand_and_rank_positions():
    logs = pd.DataFrame(
        {
            "session_id": [7, 7, 9, 9],
            "position": [1, 2, 1, 2],
            "propensity": [0.5, 0.25, 0.8, 0.4],
            "click": [1, 1, 0, 1],
        }
    )
    positions = rank_positions([0.1, 0.3, 2.0, 1.0], logs.session_id)
    np.testing.assert_array_equal(positions, [2, 1, 1, 2])
    report = off_policy_report(logs, positions, ["click"], resamples=50)
    # Only session 9's rows keep their positions: w = 1/0.8 and 1/0.4; clicks 0 and 1.
    assert report["click"]["ips"]["value"] == pytest.approx((0 + 1 / 0.4) / 2)
    w = np.array([1 / 0.8, 1 / 0.4])
    assert report["ess"] == pytest.approx(w.sum() ** 2 / (w**2).sum())
    assert report["click"]["ips"]["degenerate"] and "effective sample size" in report["click"]["ips"]["warning"]
    # DR with a reward model of zeros is IPS; SNIPS per position: position 1 -> 0, position 2 -> 1.
    zeros = {"click": np.zeros((4, 2))}
    dr = off_policy_report(logs, positions, ["click"], reward_model=zeros, resamples=50)
    assert dr["click"]["dr"]["value"] == pytest.approx(report["click"]["ips"]["value"])
    assert report["click"]["snips"]["value"] == pytest.approx(0.0 + 1.0)
    np.testing.assert_array_equal(rank_positions([1.0, 1.0, 0.5], [1, 1, 1]), [1, 2, 3])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.drop(columns=["propensity"]), "no column 'propensity'"),
        (lambda d: d.assign(propensity=0.0), "'propensity' must be in \\(0, 1\\]"),
        (lambda d: d.assign(propensity=1.5), "'propensity' must be in \\(0, 1\\]"),
        (lambda d: d.assign(click=np.nan), "'click' has 8 missing"),
        (lambda d: d.assign(position=1), "repeat a \\(session_id, position\\)"),
        (lambda d: d.assign(position=0.5), "whole numbers"),
    ],
)
def test_bad_logs_get_errors_naming_the_column(change, message):
    logs = _logs(np.random.default_rng(1), sessions=2)
    with pytest.raises(ValueError, match=message):
        off_policy_report(change(logs), np.ones(len(logs), int), ["click"], resamples=20)


def _true_online_value(imp, positions, bias):
    exam = positions.astype(float) ** -bias
    clicks = (exam * imp.true_attractiveness).groupby(imp.session_id).sum().mean()
    revenue = (exam * imp.true_attractiveness * imp.true_purchase_value_if_clicked).groupby(imp.session_id).sum().mean()
    return {"click": clicks, "purchase_value": revenue}


def test_intervals_cover_a_new_rankings_true_online_value_on_the_simulator():
    covered = {name: 0 for name in ("ips", "snips", "dr")}
    seeds = range(8)
    for seed in seeds:
        sim = simulate(SimulatorConfig(num_users=300, num_items=200, num_sessions=1500, slate_size=5, seed=seed))
        imp = sim.impressions
        rng = np.random.default_rng(seed)
        score = np.log(imp.true_attractiveness.to_numpy()) + rng.normal(0, 0.5, len(imp))
        positions = rank_positions(score, imp.session_id)
        truth = _true_online_value(imp, positions, sim.config.position_bias)
        ctr = imp.true_attractiveness.to_numpy() * np.exp(rng.normal(0, 0.3, len(imp)))
        model = {"click": position_reward_model(ctr, imp)}
        report = off_policy_report(imp, positions, ["click"], reward_model=model, resamples=300, seed=seed)
        for name in covered:
            entry = report["click"][name]
            covered[name] += entry["ci_low"] <= truth["click"] <= entry["ci_high"]
        assert truth["click"] > report["click"]["logging"]["value"]  # a better ranking than the logged one
    for name, hits in covered.items():
        assert hits >= 6, (name, hits)
