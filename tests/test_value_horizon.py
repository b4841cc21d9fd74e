"""User value for any horizon: a horizon as long as the history trains on shorter windows, labels scaled."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_tables import _example_config, transactions_table

from tfrec.data import shapes as S
from tfrec.schema import FeatureSchema

SCHEMA = FeatureSchema(user_id="customer", event_time="when", user_categorical=["region"])
DAY = pd.Timedelta(days=1)


def _lines(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": [c for c, _, _ in rows],
            "when": pd.to_datetime([d for _, d, _ in rows]),
            "amount": [a for _, _, a in rows],
            "region": "north",
        }
    )


# 120 days of history (2023-01-01 .. 2023-04-30) and a 120-day horizon (2023-05-01 .. 2023-08-28).
HAND_MADE = _lines(
    [
        ("a", "2023-01-01", 100.0),
        ("a", "2023-03-10", 50.0),  # in the last 60 days before the cutoff
        ("a", "2023-06-01", 30.0),  # horizon
        ("b", "2023-01-20", 20.0),
        ("b", "2023-03-15", -5.0),  # a return in the label window ...
        ("b", "2023-04-20", 10.0),  # ... netted: 5 in the window
        ("c", "2023-04-01", 40.0),  # first purchase in the label window: no training row
        ("c", "2023-07-01", 70.0),  # horizon
    ]
)


def _all_training(data: S.PreparedData) -> pd.DataFrame:
    return pd.concat([data.train, data.valid], ignore_index=True).sort_values(["window_end", "customer"])


def test_hand_made_labels_are_the_window_spend_scaled_to_the_horizon():
    data = S.prepare_transactions(
        HAND_MADE, SCHEMA, amount="amount", cutoff="2023-04-30", horizon_end="2023-08-28", training_windows=2
    )
    info = data.info
    assert info["horizon_days"] == 120 and info["train_label_days"] == 60 and info["label_scale"] == 2.0
    assert "training on 60-day label windows" in info["train_label_choice"]
    assert "scaled x2.00" in info["train_label_choice"]
    train = _all_training(data)
    # Window 1: features before 2023-03-02, label in [2023-03-02, 2023-05-01) x 2.
    # Window 2: half a label window earlier: features before 2023-01-31, label in [2023-01-31, 2023-04-01) x 2.
    first = train[train.window_end == pd.Timestamp("2023-05-01")].set_index("customer")
    second = train[train.window_end == pd.Timestamp("2023-04-01")].set_index("customer")
    assert sorted(first.index) == ["a", "b"] and sorted(second.index) == ["a", "b"]
    assert first.loc["a", "future_value"] == 100.0 and first.loc["b", "future_value"] == 10.0
    assert second.loc["a", "future_value"] == 100.0 and second.loc["b", "future_value"] == 0.0  # net -5, floored
    assert first.loc["a", "monetary"] == 100.0 and first.loc["a", "observed_days"] == 60.0
    assert info["training_windows"] == [
        ["2023-01-01 00:00:00", "2023-03-02 00:00:00", "2023-05-01 00:00:00"],
        ["2023-01-01 00:00:00", "2023-01-31 00:00:00", "2023-04-01 00:00:00"],
    ]
    # Test: features over the whole calibration period, the real (unscaled) horizon spend.
    test = data.test.set_index("customer")
    assert test["future_value"].to_dict() == {"a": 30.0, "b": 0.0, "c": 70.0}
    assert test.loc["a", "monetary"] == 150.0 and test.loc["c", "observed_days"] == 120.0


def test_too_short_history_names_the_settings_that_work():
    with pytest.raises(S.ShapeError) as raised:
        S.prepare_transactions(HAND_MADE, SCHEMA, amount="amount", cutoff="2023-02-09", horizon_end="2023-03-21")
    message = str(raised.value)
    assert "data.cutoff" in message and "data.horizon_end" in message and "28-day" in message
    assert "data.cutoff to 2023-02-25 or later" in message and "data.horizon_end to 2023-03-20 or earlier" in message
    # Both suggestions work: a later cutoff (here the horizon shrinks below the history), an earlier horizon end.
    later = S.prepare_transactions(HAND_MADE, SCHEMA, amount="amount", cutoff="2023-02-25", horizon_end="2023-03-21")
    assert later.info["train_label_days"] == 24 and later.info["label_scale"] == 1.0
    longest = S.prepare_transactions(HAND_MADE, SCHEMA, amount="amount", cutoff="2023-02-25", horizon_end="2023-04-22")
    assert longest.info["train_label_days"] == 28 and longest.info["label_scale"] == 2.0
    # Under 56 days of history a horizon shorter than it keeps full-length windows, however few days of features.
    earlier = S.prepare_transactions(HAND_MADE, SCHEMA, amount="amount", cutoff="2023-02-09", horizon_end="2023-03-20")
    assert earlier.info["label_scale"] == 1.0 and earlier.info["train_label_days"] == 39
    with pytest.raises(S.ShapeError, match="move data.cutoff later"):
        S.prepare_transactions(HAND_MADE, SCHEMA, amount="amount", cutoff="2022-12-01")


def test_horizon_equal_to_calibration_trains_before_the_cutoff_only():
    df = transactions_table(customers=200)
    kw = {"amount": "amount", "cutoff": "2023-06-30", "horizon_end": "2023-12-31", "training_windows": 3}
    data = S.prepare_transactions(df, SCHEMA, **kw)
    info = data.info
    assert info["horizon_days"] == 184 and info["train_label_days"] == 90
    assert info["label_scale"] == pytest.approx(184 / 90)
    assert len(info["training_windows"]) == 2  # a third would have under 28 days of features
    cutoff = pd.Timestamp("2023-07-01")
    train = _all_training(data)
    assert (train.window_end <= cutoff).all() and len(data.train) > 100 and len(data.valid) > 0
    # No data from the cutoff on reaches training: the same rows without any of it.
    before = S.prepare_transactions(df[df.when < cutoff], SCHEMA, **kw)
    pd.testing.assert_frame_equal(data.train, before.train)
    pd.testing.assert_frame_equal(data.valid, before.valid)
    # A training label is the window's net spend (floored at 0) times H/h.
    for _, row in train.sample(20, random_state=0).iterrows():
        lines = df[(df.customer == row.customer) & (df.when < row.window_end) & (df.when >= row.window_end - 90 * DAY)]
        assert row.future_value == pytest.approx(max(lines.amount.sum(), 0.0) * 184 / 90)
        assert (df[df.customer == row.customer].when < row.window_end - 90 * DAY).any()  # features before it
    # Test: features at the cutoff, the real horizon's spend, unscaled.
    test = data.test.set_index("customer")
    for c in test.index[:20]:
        lines = df[df.customer == c]
        assert test.loc[c, "future_value"] == pytest.approx(max(lines[lines.when >= cutoff].amount.sum(), 0.0))
        assert test.loc[c, "monetary"] == pytest.approx(max(lines[lines.when < cutoff].amount.sum(), 0.0))


def test_a_horizon_leaving_under_28_days_of_features_is_scaled_too():
    # 168 days of horizon leave 13 of the 181 days of history for the features of a full-length window.
    df = transactions_table(customers=100)
    data = S.prepare_transactions(df, SCHEMA, amount="amount", cutoff="2023-06-30", horizon_end="2023-12-15")
    assert data.info["train_label_days"] == 90 and data.info["label_scale"] == pytest.approx(168 / 90)
    assert data.info["train_label_choice"].startswith("horizon 168 days leaves 13 of the 181 days of history")


def test_a_horizon_that_fits_keeps_todays_windows():
    df = transactions_table(customers=150)
    data = S.prepare_transactions(
        df, SCHEMA, amount="amount", cutoff="2023-09-30", horizon_end="2023-12-31", training_windows=2
    )
    assert data.info["train_label_days"] == 92 and data.info["label_scale"] == 1.0
    assert data.info["train_label_choice"] == (
        "horizon 92 days, 273 days of history before the cutoff: training on 92-day label windows ending at the "
        "cutoff (181 days of features before the first), labels unscaled"
    )
    # Today's windows: 92-day labels ending at the cutoff and 46 days before it, features before each.
    start, horizon = df.when.min(), 92 * DAY
    expected = []
    for label_stop in (pd.Timestamp("2023-10-01"), pd.Timestamp("2023-10-01") - horizon / 2):
        rows = S.customer_features(df, SCHEMA, "amount", label_stop - horizon, start)
        spend = S.net_spend(df, SCHEMA, "amount", label_stop - horizon, label_stop)
        rows["future_value"] = rows["customer"].map(spend).fillna(0.0)
        expected.append(rows.assign(window_end=label_stop))
    got = pd.concat([data.train, data.valid]).sort_values(["window_end", "customer"], ascending=[False, True])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), pd.concat(expected, ignore_index=True))


def test_value_job_with_horizon_equal_to_calibration_runs_and_reports(tmp_path, capsys):
    from tfrec.jobs.files import run

    transactions_table(customers=300).to_csv(tmp_path / "tx.csv", index=False)
    config = _example_config(
        tmp_path, "transactions", [str(tmp_path / "tx.csv")], cutoff="2023-06-30", horizon_end="2023-12-31"
    )
    config.export.enabled = False
    result = run(config)
    out = capsys.readouterr().out
    assert "horizon 184 days >= 181 days of history before the cutoff: training on 90-day label windows" in out
    assert "labels scaled x2.04 to the horizon" in out
    value = result["metrics"]["value"]
    for name in ("model", "calibration_scaled", "rfm", "rfm_gbm"):
        assert -1.0 <= value[name]["normalized_gini"] <= 1.0, name
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["split_info"]["label_scale"] == pytest.approx(184 / 90)
    assert written["split_info"]["train_label_days"] == 90 and written["split_info"]["horizon_days"] == 184
