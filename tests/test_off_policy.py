"""Off-policy estimators (IPS, SNIPS, DR) against closed forms, an enumerated Plackett-Luce world and the simulator."""

import itertools

import numpy as np
import pandas as pd
import pytest

from tfrec.evaluation.off_policy import off_policy_report, position_reward_model, rank_positions


def _logs(rng, sessions=400, k=4, propensity=None):
    rows = []
    for s in range(sessions):
        for p in range(1, k + 1):
            rows.append({"session_id": s, "position": p, "click": int(rng.random() < 0.3 / p), "value": rng.random()})
    logs = pd.DataFrame(rows)
    logs["propensity"] = propensity if propensity is not None else rng.uniform(0.05, 1.0, len(logs))
    return logs


class PlackettLuceWorld:
    """K items with planted attractiveness `a` and value `v`, examination `p ** -0.7`, a Plackett-Luce logger.

    Its item-position marginals are exact: every permutation enumerated with its Plackett-Luce probability.
    """

    def __init__(self, k=4, seed=0, logging_scores=None):
        rng = np.random.default_rng(seed)
        self.k = k
        self.a = rng.uniform(0.1, 0.9, k)
        self.v = rng.uniform(1.0, 10.0, k)
        self.exam = np.arange(1, k + 1) ** -0.7
        scores = rng.normal(0, 1, k) if logging_scores is None else np.asarray(logging_scores, float)
        self.perms, self.prob, self.mu = self.enumerate(scores)

    def enumerate(self, scores):
        """`(perms [n, K] item at each position, P(perm) [n], marginals [item, position])`."""
        perms = np.array(list(itertools.permutations(range(self.k))))
        weights = np.exp(scores)
        prob = np.ones(len(perms))
        for j, perm in enumerate(perms):
            left = weights.sum()
            for item in perm:
                prob[j] *= weights[item] / left
                left -= weights[item]
        marginals = np.zeros((self.k, self.k))
        for perm, p in zip(perms, prob):
            marginals[perm, np.arange(self.k)] += p
        return perms, prob, marginals

    def truth(self, pi):
        """Clicks and revenue per session of a candidate with item-position probabilities `pi` [item, position]."""
        clicks = pi * self.exam[None, :] * self.a[:, None]
        return {"click": float(clicks.sum()), "purchase_value": float((clicks * self.v[:, None]).sum())}

    def logs(self, perm_index, rng=None):
        """One session per permutation index; rewards drawn (with `rng`) or their expectations (without)."""
        items = self.perms[perm_index].ravel()
        position = np.tile(np.arange(1, self.k + 1), len(perm_index))
        mean_click = self.exam[position - 1] * self.a[items]
        click = (rng.random(len(items)) < mean_click).astype(float) if rng is not None else mean_click
        return pd.DataFrame(
            {
                "session_id": np.repeat(np.arange(len(perm_index)), self.k),
                "position": position,
                "item": items,
                "propensity": self.mu[items, position - 1],
                "click": click,
                "purchase_value": click * self.v[items],
            }
        )

    def sample(self, sessions, rng):
        return self.logs(rng.choice(len(self.perms), sessions, p=self.prob), rng)

    def perfect_model(self, logs):
        """`rhat(i, p)`, exact: the expected click (and revenue) of each row's item at every position."""
        clicks = self.a[logs.item.to_numpy()][:, None] * self.exam[None, :]
        return {"click": clicks, "purchase_value": clicks * self.v[logs.item.to_numpy()][:, None]}


def _deterministic(world, rank_of_item):
    """A deterministic candidate as `[item, position]` 0/1 probabilities (rank_of_item: 1-based position)."""
    pi = np.zeros((world.k, world.k))
    pi[np.arange(world.k), np.asarray(rank_of_item) - 1] = 1.0
    return pi


def test_a_candidate_equal_to_the_logging_policy_estimates_the_logged_mean():
    rng = np.random.default_rng(0)
    logs = _logs(rng)
    logged = logs.groupby("session_id").click.sum().mean()
    # A stochastic candidate with the logging policy's own probabilities: every weight is 1.
    same = off_policy_report(logs, rewards=["click"], candidate_probability=logs.propensity, resamples=200)
    for name in ("ips", "snips", "dr"):
        assert same["click"][name]["value"] == pytest.approx(logged, rel=1e-12)
        assert same["click"][name]["lift"] == pytest.approx(0.0, abs=1e-12)
        assert same["click"][name]["lift_ci_low"] == pytest.approx(0.0, abs=1e-12)
        assert same["click"][name]["relative_lift_ci_high"] == pytest.approx(0.0, abs=1e-12)
        assert not same["click"][name]["degenerate"]
    assert same["ess"] == pytest.approx(len(logs))
    assert same["ess_by_position"] == pytest.approx([400] * 4)
    # Per impression slot: the CTR.
    assert same["click"]["ips"]["per_impression"] == pytest.approx(logs.click.mean(), rel=1e-12)
    assert same["click"]["logging"]["per_impression"] == pytest.approx(logs.click.mean(), rel=1e-12)
    # A deterministic logging policy (propensity 1) and the candidate keeping its order.
    fixed = _logs(rng, propensity=1.0)
    report = off_policy_report(fixed, fixed.position, ["click", "value"], resamples=200)
    for reward in ("click", "value"):
        want = fixed.groupby("session_id")[reward].sum().mean()
        for name in ("ips", "snips", "dr"):
            assert report[reward][name]["value"] == pytest.approx(want, rel=1e-12)
        assert report[reward]["ips"]["ci_low"] <= want <= report[reward]["ips"]["ci_high"]
        # Same resamples for both: the paired lift interval is exactly 0.
        assert report[reward]["ips"]["lift_ci_low"] == report[reward]["ips"]["lift_ci_high"] == 0.0


def test_snips_normalises_per_position_when_sessions_differ_in_length():
    rng = np.random.default_rng(3)
    logs = _logs(rng)
    length = rng.integers(1, 5, logs.session_id.nunique())  # 1 to 4 rows per session
    logs = logs[logs.position <= length[logs.session_id]].reset_index(drop=True)
    logged = logs.groupby("session_id").click.sum().mean()
    report = off_policy_report(logs, rewards=["click"], candidate_probability=logs.propensity, resamples=100)
    # Weights 1: each position's weighted mean is its mean click, times the share of sessions reaching it.
    for name in ("ips", "snips", "dr"):
        assert report["click"][name]["value"] == pytest.approx(logged, rel=1e-12)
    assert report["click"]["ips"]["per_impression"] == pytest.approx(logs.click.mean(), rel=1e-12)
    assert report["impressions_per_session"] == pytest.approx(len(logs) / logs.session_id.nunique())


def test_ips_and_dr_are_exactly_unbiased_on_an_enumerated_plackett_luce_world():
    world = PlackettLuceWorld(k=4, seed=1)
    np.testing.assert_allclose(world.mu.sum(0), 1.0)
    np.testing.assert_allclose(world.mu.sum(1), 1.0)
    rank_of_item = np.argsort(np.argsort(-world.a * world.v)) + 1  # the revenue-oracle order
    truth = world.truth(_deterministic(world, rank_of_item))
    noise = np.random.default_rng(5).lognormal(0, 0.5, (4, 4))  # a wrong reward model: fixed per (item, position)
    expected = {(r, e): 0.0 for r in truth for e in ("ips", "dr", "dr_perfect")}
    # Every permutation as its own log, with the expected rewards: the estimators' exact expectations.
    for j, p in enumerate(world.prob):
        logs = world.logs(np.array([j]))
        positions = rank_of_item[logs.item.to_numpy()]
        perfect = world.perfect_model(logs)
        wrong = {r: perfect[r] * noise[logs.item.to_numpy()] for r in perfect}
        plain = off_policy_report(logs, positions, reward_model=wrong, resamples=10)
        exact = off_policy_report(logs, positions, reward_model=perfect, resamples=10)
        for reward in truth:
            expected[reward, "ips"] += p * plain[reward]["ips"]["value"]
            expected[reward, "dr"] += p * plain[reward]["dr"]["value"]
            expected[reward, "dr_perfect"] += p * exact[reward]["dr"]["value"]
            # A perfect reward model and expected rewards: every single log gives the truth.
            assert exact[reward]["dr"]["value"] == pytest.approx(truth[reward], rel=1e-12)
    for (reward, _), value in expected.items():
        assert value == pytest.approx(truth[reward], rel=1e-12)


def test_a_stochastic_candidate_with_all_its_position_probabilities():
    world = PlackettLuceWorld(k=3, seed=2)
    _, _, pi = world.enumerate(3.0 * world.a)  # a Plackett-Luce candidate that favours attractive items
    truth = world.truth(pi)
    expected = {"ips": 0.0, "snips": 0.0, "dr": 0.0}
    for j, p in enumerate(world.prob):
        logs = world.logs(np.array([j]))
        probability = pi[logs.item.to_numpy()]  # [rows, positions]
        model = {"click": world.perfect_model(logs)["click"] * 0.7}
        report = off_policy_report(
            logs, rewards=["click"], reward_model=model, candidate_probability=probability, resamples=10
        )
        for name in ("ips", "dr"):
            expected[name] += p * report["click"][name]["value"]
        # Only the probabilities at the logged positions: IPS alike.
        at_logged = probability[np.arange(len(logs)), logs.position - 1]
        one_d = off_policy_report(logs, rewards=["click"], candidate_probability=at_logged, resamples=10)
        assert one_d["click"]["ips"]["value"] == pytest.approx(report["click"]["ips"]["value"], rel=1e-12)
    assert expected["ips"] == pytest.approx(truth["click"], rel=1e-12)
    assert expected["dr"] == pytest.approx(truth["click"], rel=1e-12)


def test_estimates_average_to_the_truth_over_simulated_logs_and_perfect_dr_has_less_variance():
    world = PlackettLuceWorld(k=4, seed=4)
    rank_of_item = np.argsort(np.argsort(-world.a)) + 1
    truth = world.truth(_deterministic(world, rank_of_item))
    rng = np.random.default_rng(0)
    values = {name: [] for name in ("ips", "snips", "dr", "dr_zero")}
    for _ in range(150):
        logs = world.sample(100, rng)
        positions = rank_of_item[logs.item.to_numpy()]
        perfect = off_policy_report(logs, positions, reward_model=world.perfect_model(logs), resamples=10)
        zero = {"click": np.zeros((len(logs), 4)), "purchase_value": np.zeros((len(logs), 4))}
        zeros = off_policy_report(logs, positions, reward_model=zero, resamples=10)
        for reward in truth:
            # DR with a reward model of zeros is IPS.
            assert zeros[reward]["dr"]["value"] == pytest.approx(zeros[reward]["ips"]["value"], rel=1e-12)
        values["ips"].append([zeros[r]["ips"]["value"] for r in truth])
        values["snips"].append([zeros[r]["snips"]["value"] for r in truth])
        values["dr"].append([perfect[r]["dr"]["value"] for r in truth])
    want = np.array([truth["click"], truth["purchase_value"]])
    spread = {}
    for name in ("ips", "snips", "dr"):
        v = np.array(values[name])
        se = v.std(0, ddof=1) / np.sqrt(len(v))
        spread[name] = v.std(0)
        assert np.all(np.abs(v.mean(0) - want) < 4 * se), (name, v.mean(0), want, se)
    assert np.all(spread["dr"] < 0.9 * spread["ips"]), spread  # ~0.75 (clicks), ~0.6 (revenue): click noise stays


def test_intervals_cover_the_truth_in_repeated_logs():
    world = PlackettLuceWorld(k=4, seed=6)
    rank_of_item = np.argsort(np.argsort(-world.a)) + 1
    truth = world.truth(_deterministic(world, rank_of_item))["click"]
    rng = np.random.default_rng(1)
    covered = {"ips": 0, "snips": 0, "dr": 0}
    draws = 40
    for seed in range(draws):
        logs = world.sample(400, rng)
        positions = rank_of_item[logs.item.to_numpy()]
        model = {"click": world.perfect_model(logs)["click"] * rng.lognormal(0, 0.3, (len(logs), 4))}
        report = off_policy_report(logs, positions, ["click"], reward_model=model, resamples=300, seed=seed)
        for name in covered:
            entry = report["click"][name]
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
            covered[name] += entry["ci_low"] <= truth <= entry["ci_high"]
    for name, hits in covered.items():
        assert hits >= 33, (name, hits)  # 95% intervals: 38 of 40 expected


def test_an_oracle_ranking_beats_the_logging_policy_with_a_positive_lift_interval():
    # The logger favours the least attractive items; the candidate ranks by attractiveness.
    world = PlackettLuceWorld(k=4, seed=7)
    world = PlackettLuceWorld(k=4, seed=7, logging_scores=-2.0 * np.log(world.a))
    rank_of_item = np.argsort(np.argsort(-world.a)) + 1
    truth = world.truth(_deterministic(world, rank_of_item))["click"]
    true_logging = world.truth(world.mu)["click"]
    assert truth > 1.1 * true_logging
    logs = world.sample(3000, np.random.default_rng(2))
    positions = rank_of_item[logs.item.to_numpy()]
    model = {"click": position_reward_model(world.a[logs.item.to_numpy()], logs)}
    report = off_policy_report(logs, positions, ["click"], reward_model=model, resamples=500)
    for name in ("ips", "snips", "dr"):
        entry = report["click"][name]
        assert entry["lift_ci_low"] > 0 and entry["relative_lift_ci_low"] > 0, (name, entry)
        assert entry["lift_ci_low"] <= truth - true_logging <= entry["lift_ci_high"], (name, entry)
        assert entry["relative_lift"] == pytest.approx(entry["lift"] / report["click"]["logging"]["value"])


def test_ess_ips_snips_by_hand_and_rank_positions():
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
    assert report["ess_by_position"] == pytest.approx([1.0, 1.0])
    assert report["max_weight_share"] == pytest.approx(w.max() / w.sum())
    assert report["click"]["ips"]["degenerate"] and "effective sample size" in report["click"]["ips"]["warning"]
    # DR with a reward model of zeros is IPS; SNIPS per position: position 1 -> 0, position 2 -> 1 (x 2 sessions / 2).
    zeros = {"click": np.zeros((4, 2))}
    dr = off_policy_report(logs, positions, ["click"], reward_model=zeros, resamples=50)
    assert dr["click"]["dr"]["value"] == pytest.approx(report["click"]["ips"]["value"])
    assert report["click"]["snips"]["value"] == pytest.approx(0.0 + 1.0)
    # DR by hand with rhat = 0.5 everywhere: DM = 0.5 x 2 rows per session; correction on session 9's rows.
    half = off_policy_report(logs, positions, ["click"], reward_model={"click": np.full((4, 2), 0.5)}, resamples=50)
    assert half["click"]["dr"]["value"] == pytest.approx(1.0 + ((0 - 0.5) / 0.8 + (1 - 0.5) / 0.4) / 2)
    # The column name works as well as the array.
    named = off_policy_report(logs.assign(rank=positions), "rank", ["click"], resamples=50)
    assert named["click"]["ips"] == report["click"]["ips"]
    # Ties: the earlier row, or the better logged position when given; sessions need not be contiguous.
    np.testing.assert_array_equal(rank_positions([1.0, 1.0, 0.5], [1, 1, 1]), [1, 2, 3])
    np.testing.assert_array_equal(rank_positions([1.0, 1.0, 0.5], [1, 1, 1], logged_position=[2, 1, 3]), [2, 1, 3])
    np.testing.assert_array_equal(rank_positions([0.2, 5.0, 0.9, 0.1], ["a", "b", "a", "b"]), [2, 1, 1, 2])


def test_tiny_propensities_make_the_report_degenerate():
    rng = np.random.default_rng(8)
    logs = _logs(rng, sessions=500, propensity=0.5)
    logs.loc[0, "propensity"] = 1e-4  # one matched row with weight 10,000
    report = off_policy_report(logs, logs.position, ["click"], resamples=50)
    assert report["degenerate"] and report["click"]["dr"]["degenerate"]
    assert "one row carries" in report["warning"] and report["max_weight_share"] > 0.5
    healthy = off_policy_report(logs.assign(propensity=0.5), logs.position, ["click"], resamples=50)
    assert not healthy["degenerate"] and healthy["warning"] == ""
    assert off_policy_report(logs.assign(propensity=0.5), logs.position, ["click"], resamples=50, min_ess=1e6)[
        "degenerate"
    ]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.drop(columns=["propensity"]), "no column 'propensity'"),
        (lambda d: d.drop(columns=["session_id"]), "no column 'session_id'"),
        (lambda d: d.drop(columns=["position"]), "no column 'position'"),
        (lambda d: d.assign(propensity=0.0), "'propensity' must be in \\(0, 1\\].*8 rows"),
        (lambda d: d.assign(propensity=1.5), "'propensity' must be in \\(0, 1\\]"),
        (lambda d: d.assign(propensity=np.nan), "'propensity' has 8 missing"),
        (lambda d: d.assign(click=np.nan), "'click' has 8 missing"),
        (lambda d: d.assign(session_id=np.nan), "'session_id' has 8 missing"),
        (lambda d: d.assign(position=1), "column 'position': 6 rows repeat a position of their session"),
        (lambda d: d.assign(position=0.5), "'position' must hold whole numbers >= 1.*8 rows"),
        (lambda d: d.assign(position=0), "'position' must hold whole numbers >= 1"),
    ],
)
def test_bad_logs_get_errors_naming_the_column(change, message):
    logs = _logs(np.random.default_rng(1), sessions=2)
    with pytest.raises(ValueError, match=message):
        off_policy_report(change(logs), logs.position, ["click"], resamples=20)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"candidate_position": [1, 2, 3, 5, 1, 2, 3, 4]},
            "candidate_position must be whole numbers from 1 to.*1 rows",
        ),
        ({"candidate_position": [1, 1, 3, 4, 1, 2, 3, 4]}, "candidate_position: 1 rows repeat"),
        ({"candidate_position": [1, 2, 3]}, "candidate_position must have one value per row"),
        ({"candidate_position": "nope"}, "no column 'nope'"),
        ({}, "got neither"),
        ({"candidate_position": [1, 2, 3, 4] * 2, "candidate_probability": [1.0] * 8}, "not both"),
        ({"candidate_probability": [1.5] * 8}, "candidate_probability must be probabilities"),
        ({"candidate_probability": np.full((8, 3), 0.25)}, "candidate_probability must be \\[rows\\] or \\[rows, 4\\]"),
        ({"candidate_probability": np.full((8, 4), 0.5)}, "rows sum to over 1"),
        (
            {"candidate_probability": [0.5] * 8, "reward_model": {"click": np.zeros((8, 4))}},
            "DR with a reward model needs",
        ),
        ({"candidate_position": [1, 2, 3, 4] * 2, "reward_model": {"click": np.zeros((8, 3))}}, "must be \\[rows"),
        ({"candidate_position": [1, 2, 3, 4] * 2, "reward_model": {"value": np.zeros((8, 4))}}, "not in rewards"),
        ({"candidate_position": [1, 2, 3, 4] * 2, "confidence": 1.0}, "confidence must be in"),
        ({"candidate_position": [1, 2, 3, 4] * 2, "resamples": 5}, "resamples must be"),
        ({"candidate_position": [1, 2, 3, 4] * 2, "rewards": []}, "rewards is empty"),
    ],
)
def test_bad_arguments_get_errors_naming_the_argument(kwargs, message):
    logs = _logs(np.random.default_rng(1), sessions=2)
    kwargs = {"rewards": ["click"], "resamples": 20, **kwargs}
    with pytest.raises(ValueError, match=message):
        off_policy_report(logs, **kwargs)


def test_rank_positions_rejects_missing_scores_and_sessions():
    with pytest.raises(ValueError, match="scores has 1 missing"):
        rank_positions([1.0, np.nan], [0, 0])
    with pytest.raises(ValueError, match="session_ids has 1 missing"):
        rank_positions([1.0, 2.0], [0, None])
    with pytest.raises(ValueError, match="scores has 2 rows, session_ids 3"):
        rank_positions([1.0, 2.0], [0, 0, 1])


def _true_online_value(imp, positions, bias):
    exam = positions.astype(float) ** -bias
    clicks = (exam * imp.true_attractiveness).groupby(imp.session_id).sum().mean()
    revenue = (exam * imp.true_attractiveness * imp.true_purchase_value_if_clicked).groupby(imp.session_id).sum().mean()
    return {"click": clicks, "purchase_value": revenue}


@pytest.mark.slow
def test_intervals_cover_a_new_rankings_true_online_value_on_the_simulator():
    from tfrec.data.simulator import SimulatorConfig, simulate

    covered = {(reward, name): 0 for reward in ("click", "purchase_value") for name in ("ips", "snips", "dr")}
    seeds = range(10)
    for seed in seeds:
        sim = simulate(SimulatorConfig(num_users=300, num_items=200, num_sessions=1500, slate_size=6, seed=seed))
        imp = sim.impressions
        rng = np.random.default_rng(seed)
        score = np.log(imp.true_attractiveness.to_numpy()) + rng.normal(0, 0.5, len(imp))
        positions = rank_positions(score, imp.session_id)
        truth = _true_online_value(imp, positions, sim.config.position_bias)
        ctr = imp.true_attractiveness.to_numpy() * np.exp(rng.normal(0, 0.3, len(imp)))
        value = imp.true_purchase_value_if_clicked.to_numpy()
        model = {
            "click": position_reward_model(ctr, imp),
            "purchase_value": position_reward_model(ctr, imp, value=value),
        }
        report = off_policy_report(imp, positions, reward_model=model, resamples=300, seed=seed)
        for reward, name in covered:
            entry = report[reward][name]
            covered[reward, name] += entry["ci_low"] <= truth[reward] <= entry["ci_high"]
        assert truth["click"] > report["click"]["logging"]["value"]  # a better ranking than the logged one
    for key, hits in covered.items():
        assert hits >= 7, (key, hits)


def test_offline_ab_of_a_trained_model_in_the_simulated_evaluation(small_trained):
    from tfrec.evaluation.report import ab_section_html
    from tfrec.evaluation.simulated import offline_ab_evaluation

    sim, df, model = small_trained
    report = offline_ab_evaluation(model, sim, df, df, resamples=200)
    for reward in ("click", "purchase_value"):
        truth = report["true_online"][reward]
        assert truth > 0 and report["true_logging"][reward] > 0
        for name in ("ips", "snips", "dr"):
            entry = report[reward][name]
            half = (entry["ci_high"] - entry["ci_low"]) / 2
            assert abs(entry["value"] - truth) <= 1.7 * half + 1e-9, (reward, name, entry, truth)
    page = ab_section_html(report)
    assert "DR" in page and "true online" in page


def test_tfrec_ab_on_logged_impressions_with_an_export_and_a_run_model(small_trained, small_export, tmp_path, capsys):
    import json

    from tfrec.cli import main

    sim, df, model = small_trained
    logs = tmp_path / "logs.parquet"
    df.to_parquet(logs)
    out = tmp_path / "ab"
    export_dir = str(small_export / "tfrec")
    assert main(["ab", "--logs", str(logs), "--candidate", export_dir, "--output", str(out), "--resamples", "50"]) == 0
    printed = capsys.readouterr().out
    assert "| candidate | click | DR |" in printed and "logging policy" in printed
    result = json.loads((out / "ab.json").read_text())
    assert result["logs"] == len(df)
    assert {"ips", "snips", "dr", "logging"} <= set(result["candidate"]["click"])
    assert "tfrec offline A/B" in (out / "ab.html").read_text()
    # The export and the in-process model rank alike, so their estimates agree.
    from tfrec.evaluation.simulated import offline_ab_evaluation

    direct = offline_ab_evaluation(model, sim, df, df, resamples=50)
    assert result["candidate"]["click"]["ips"]["value"] == pytest.approx(direct["click"]["ips"]["value"], rel=1e-6)
    # Logs without propensities: a clear error naming the column.
    df.drop(columns=["propensity"]).to_parquet(logs)
    with pytest.raises(ValueError, match="propensity"):
        from tfrec.jobs.offline_ab import offline_ab

        offline_ab([str(logs)], export_dir)
