import numpy as np
import pandas as pd
import pytest

from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.data.validation import validate

CFG = SimulatorConfig(num_users=4000, num_items=1500, num_sessions=20_000, seed=11)


@pytest.fixture(scope="module")
def sim():
    return simulate(CFG)


def test_deterministic_by_seed(sim):
    again = simulate(CFG)
    pd.testing.assert_frame_equal(sim.impressions, again.impressions)
    pd.testing.assert_frame_equal(sim.users, again.users)
    other = simulate(SimulatorConfig(num_users=4000, num_items=1500, num_sessions=20_000, seed=12))
    assert not sim.impressions.click.equals(other.impressions.click)


def test_output_fits_its_schema(sim):
    report = validate(sim.impressions, sim.schema(), on_bad_rows="raise")
    assert report.rows_used == len(sim.impressions) == CFG.num_sessions * CFG.slate_size
    validate(sim.users, sim.user_schema(), on_bad_rows="raise")
    validate(sim.items, sim.item_schema(), on_bad_rows="raise")


def test_realised_ctr_matches_true_ctr(sim):
    imp = sim.impressions
    n = len(imp)
    p = imp.true_ctr.to_numpy()
    # Sum of Bernoulli(p): mean within 4 standard errors.
    se = np.sqrt((p * (1 - p)).sum()) / n
    assert abs(imp.click.mean() - p.mean()) < 4 * se
    # Also per position, where the position bias is planted.
    for pos, grp in imp.groupby("position"):
        q = grp.true_ctr.to_numpy()
        se = np.sqrt((q * (1 - q)).sum()) / len(grp)
        assert abs(grp.click.mean() - q.mean()) < 4.5 * se, pos
    by_pos = imp.groupby("position").click.mean().to_numpy()
    assert by_pos[0] > 2 * by_pos[-1]  # position bias is visible


def test_value_distribution_has_planted_zero_share(sim):
    users = sim.users
    zero = (users.future_value == 0).to_numpy()
    p_nonzero = users.true_value_probability.to_numpy()
    assert abs(p_nonzero.mean() - (1 - CFG.value_zero_share)) < 1e-6
    se = np.sqrt((p_nonzero * (1 - p_nonzero)).sum()) / len(users)
    assert abs(zero.mean() - CFG.value_zero_share) < 4 * se
    positive = users.future_value[~zero]
    assert (positive > 0).all()
    # Lognormal: log of positive values has the planted sigma given propensity.
    z = users.true_propensity[~zero].to_numpy()
    resid = np.log(positive.to_numpy()) - (3.5 + 0.7 * z)
    assert abs(resid.std() - CFG.value_sigma) < 0.05
    # Propensity drives value: high-propensity users spend more.
    hi = users.true_propensity > 1
    assert users.future_value[hi].mean() > 2 * users.future_value[~hi].mean()


def test_titles_are_words_and_carry_the_latent_signal(sim):
    items = sim.items
    assert items.item_title.str.split().str.len().min() >= 4
    # Items that share a title word are closer in latent space than random pairs.
    lat = sim.item_latent
    words = items.item_title.str.split().str[2].to_numpy()
    same = words == words[0]
    sim_same = lat[same] @ lat[0]
    sim_all = lat @ lat[0]
    assert sim_same.mean() > sim_all.mean() + 0.5


def test_graded_relevance_tracks_clicks(sim):
    by_grade = sim.impressions.groupby("relevance").click.mean()
    assert list(by_grade.index) == [0.0, 1.0, 2.0, 3.0]
    assert by_grade.is_monotonic_increasing


def test_config_errors():
    with pytest.raises(ValueError, match="num_items"):
        SimulatorConfig(num_items=0)
    with pytest.raises(ValueError, match="value_zero_share"):
        SimulatorConfig(value_zero_share=1.0)
