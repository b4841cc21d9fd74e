import pandas as pd
import pytest

from tfrec.data.split import time_split


def test_time_split_is_disjoint_ordered_and_complete():
    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=1000, freq="h"), "x": range(1000)})
    df = df.sample(frac=1.0, random_state=0)
    split = time_split(df, "t", valid_fraction=0.1, test_fraction=0.2)
    assert sum(split.sizes().values()) == 1000
    assert split.train.t.max() < split.valid.t.min() <= split.valid.t.max() < split.test.t.min()
    assert abs(len(split.test) - 200) <= 1 and abs(len(split.valid) - 100) <= 1
    assert set(split.train.x) | set(split.valid.x) | set(split.test.x) == set(range(1000))


def test_time_split_explicit_boundaries_and_ties():
    t = pd.to_datetime(["2024-01-01"] * 5 + ["2024-02-01"] * 5 + ["2024-03-01"] * 5)
    df = pd.DataFrame({"t": t})
    split = time_split(df, "t", valid_start="2024-02-01", test_start="2024-03-01")
    assert split.sizes() == {"train": 5, "valid": 5, "test": 5}


def test_time_split_errors():
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None])})
    with pytest.raises(ValueError, match="missing timestamps"):
        time_split(df, "t")
    with pytest.raises(ValueError, match="column 'when'"):
        time_split(df, "when")
    with pytest.raises(ValueError, match="valid_fraction"):
        time_split(df.dropna(), "t", valid_fraction=1.5)
