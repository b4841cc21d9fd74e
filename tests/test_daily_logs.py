"""Day-by-day simulated logs with drift (tfrec.data.daily_logs) and `tfrec simulate --days`."""

import numpy as np
import pandas as pd
import pytest

from tfrec.data.daily_logs import DriftConfig, simulate_days
from tfrec.data.simulator import SimulatorConfig

BASE = SimulatorConfig(num_users=200, num_items=80, num_sessions=150, seed=5)


@pytest.fixture(scope="module")
def days():
    return simulate_days(BASE, DriftConfig(days=3, new_items_per_day=0.05, new_users_per_day=0.05))


def test_each_day_is_its_own_log_and_new_items_and_users_arrive(days):
    assert [len(d.items) for d in days] == [80, 84, 88]
    assert [len(d.users) for d in days] == [200, 210, 220]
    for n, d in enumerate(days):
        day = pd.Timestamp(BASE.start) + pd.Timedelta(days=n)
        assert (d.impressions.event_time >= day).all() and (d.impressions.event_time < day + pd.Timedelta(days=1)).all()
        assert set(d.impressions.item_id) <= set(d.items.item_id)
        assert set(d.impressions.user_id) <= set(d.users.user_id)
    # Items keep their id, title and category; the catalog only grows.
    first, last = days[0].items.set_index("item_id"), days[-1].items.set_index("item_id")
    assert set(first.index) < set(last.index)
    pd.testing.assert_frame_equal(
        first[["item_title", "item_category"]], last.loc[first.index, ["item_title", "item_category"]]
    )
    # Session ids are unique across days.
    ids = [set(d.impressions.session_id) for d in days]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2])


def test_prices_and_preferences_drift_only_when_asked():
    still = simulate_days(BASE, DriftConfig(days=2, preference_drift=0.0, price_drift=0.0, new_items_per_day=0))
    moving = simulate_days(BASE, DriftConfig(days=2, preference_drift=0.5, price_drift=0.2, new_items_per_day=0))
    np.testing.assert_array_equal(still[0].items.item_price, still[1].items.item_price)
    np.testing.assert_array_equal(still[0].user_latent, still[1].user_latent)
    assert not np.allclose(moving[0].items.item_price, moving[1].items.item_price)
    assert np.abs(moving[0].user_latent - moving[1].user_latent).mean() > 0.04


def test_planted_truth_of_each_day_matches_its_log(days):
    for d in days:
        imp = d.impressions
        row_of = pd.Series(np.arange(len(d.items)), index=d.items.item_id)
        logits = d.true_click_logits(imp.session_id.to_numpy(), row_of[imp.item_id].to_numpy()[:, None])[:, 0]
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), imp.true_attractiveness, rtol=1e-10)


def test_a_days_purchases_end_the_buyers_history_the_next_day(days):
    bought = days[0].impressions[days[0].impressions.purchase == 1].sort_values("event_time", kind="stable")
    assert len(bought) > 0
    history = days[1].users.set_index("user_id").user_history
    for user, items in bought.groupby("user_id").item_id:
        expected = list(items)[-BASE.history_max :]
        assert list(history[user])[-len(expected) :] == expected


def test_deterministic_and_validated():
    a = simulate_days(BASE, DriftConfig(days=2))
    b = simulate_days(BASE, DriftConfig(days=2))
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x.impressions, y.impressions)
    with pytest.raises(ValueError, match="drift.days"):
        DriftConfig(days=0)
    with pytest.raises(ValueError, match="drift.price_drift"):
        DriftConfig(price_drift=-1)


def test_simulate_command_writes_one_log_per_day(tmp_path, capsys):
    from tfrec.cli import main
    from tfrec.schema import FeatureSchema

    out = tmp_path / "logs.parquet"
    assert main(["simulate", "--out", str(out), "--sessions", "50", "--days", "2", "--seed", "3"]) == 0
    day1, day2 = pd.read_parquet(tmp_path / "logs.day01.parquet"), pd.read_parquet(tmp_path / "logs.day02.parquet")
    assert day2.event_time.min() > day1.event_time.max()
    assert FeatureSchema.from_yaml(str(tmp_path / "logs.schema.yaml")).item_id == "item_id"
    assert "day 2:" in capsys.readouterr().out
    assert main(["simulate", "--out", str(out), "--days", "2", "--price-drift", "-1"]) == 2
    assert "drift.price_drift" in capsys.readouterr().err
