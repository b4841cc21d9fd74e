"""Tests of the UCI Online Retail adapter (tfrec.data.online_retail).

The expected numbers are recomputed here from the raw file with plain pandas,
independently of the adapter's code. The module needs the real file
(../shared/data/online_retail.parquet); a clone without it skips it.
"""

import pathlib

import numpy as np
import pandas as pd
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "online_retail.parquet"

if not DATA.is_file():
    pytest.skip(
        f"Online Retail data not found at {DATA} (only development and CI checkouts have ../shared/data)",
        allow_module_level=True,
    )

from tfrec.data.online_retail import (  # noqa: E402
    OnlineRetailData,
    find_online_retail,
    load_online_retail,
)
from tfrec.data.validation import validate  # noqa: E402

CAL_STOP = pd.Timestamp("2011-09-01")  # default cutoff 2011-08-31, inclusive
HOR_STOP = pd.Timestamp("2011-12-10")  # default horizon_end 2011-12-09, inclusive
SERVICE = {"POST", "D", "M", "C2", "DOT", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS", "S", "B"}


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data() -> OnlineRetailData:
    return load_online_retail(DATA)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The raw file with the helper columns the independent checks need."""
    df = pd.read_parquet(DATA)
    code = df["StockCode"].str.strip().str.upper()
    df["uid"] = df["CustomerID"].astype("string")
    df["service"] = code.isin(SERVICE) | code.str.startswith("GIFT_")
    df["cancel"] = df["InvoiceNo"].str.startswith("C")
    df["spend"] = df["Quantity"] * df["UnitPrice"]
    df["calib"] = df["InvoiceDate"] < CAL_STOP
    df["horizon"] = (df["InvoiceDate"] >= CAL_STOP) & (df["InvoiceDate"] < HOR_STOP)
    # Lines that can count for a customer: an id, a product, a positive price.
    df["ok"] = df["CustomerID"].notna() & ~df["service"] & (df["UnitPrice"] > 0)
    return df


@pytest.fixture(scope="module")
def expected_purchases(raw) -> pd.DataFrame:
    """Calibration purchase lines (no description is missing where there is
    a customer id in the real file, so none is filled or rejected)."""
    m = raw["ok"] & raw["calib"] & ~raw["cancel"] & (raw["Quantity"] > 0)
    assert raw.loc[m, "Description"].notna().all()
    return raw[m]


# ----------------------------------------------------------- row accounting
def test_accounting_invariant(data):
    acc = data.accounting
    assert acc["rows_read"] == 541909
    rejected = sum(acc["rejected_by_reason"].values())
    assert acc["rows_rejected"] == rejected
    assert acc["rows_used"] + rejected == acc["rows_read"]
    assert sum(acc["used_by_part"].values()) == acc["rows_used"]
    assert acc["used_by_part"]["events"] == len(data.events)
    assert all(v >= 0 for v in acc["rejected_by_reason"].values())


def test_rejection_counts_match_independent_recount(data, raw, expected_purchases):
    rej = data.accounting["rejected_by_reason"]
    assert rej["no_customer_id"] == raw["CustomerID"].isna().sum() == 135080
    has_id = raw["CustomerID"].notna()
    assert rej["non_product_code"] == (has_id & raw["service"]).sum()
    assert rej["non_positive_price"] == (has_id & ~raw["service"] & (raw["UnitPrice"] <= 0)).sum()
    # Every line with a customer id and a non-cancellation invoice has Quantity > 0.
    assert rej["non_positive_quantity"] == 0
    assert rej["after_horizon"] == 0  # the data end on 2011-12-09
    assert rej["before_start"] == 0
    assert rej["missing_description"] == 0
    # Horizon purchases of customers without a calibration purchase.
    known = set(expected_purchases["uid"])
    new_in_horizon = raw["ok"] & raw["horizon"] & ~raw["cancel"] & ~raw["uid"].isin(known)
    assert rej["no_calibration_purchase"] == new_in_horizon.sum()


def test_cancellations(data, raw, expected_purchases):
    assert raw["cancel"].sum() == 9288
    assert (raw.loc[raw["cancel"], "Quantity"] < 0).all()
    known = set(expected_purchases["uid"])
    c = raw[raw["cancel"]]
    netted = c["ok"] & c["uid"].isin(known)
    not_netted = c["ok"] & ~c["uid"].isin(known)
    no_id = c["CustomerID"].isna()
    service = c["CustomerID"].notna() & c["service"]
    # The four groups partition the 9288 cancellations.
    assert netted.sum() + not_netted.sum() + no_id.sum() + service.sum() == 9288
    assert no_id.sum() == 383
    parts = data.accounting["used_by_part"]
    assert parts["calibration_cancellations"] == (netted & c["calib"]).sum()
    assert parts["horizon_cancellations"] == (netted & c["horizon"]).sum()
    assert data.accounting["rejected_by_reason"]["cancellation"] == not_netted.sum()


# ------------------------------------------------------------------ tables
def test_events_match_independent_selection(data, expected_purchases):
    ev = data.events
    exp = expected_purchases
    assert len(ev) == len(exp)
    assert ev["user_id"].nunique() == exp["CustomerID"].nunique()
    assert np.isclose(ev["revenue"].sum(), exp["spend"].sum())
    assert ev["quantity"].sum() == exp["Quantity"].sum()
    assert (ev["quantity"] > 0).all() and (ev["price"] > 0).all()
    assert np.allclose(ev["revenue"], ev["quantity"] * ev["price"])
    assert ev["user_id"].str.fullmatch(r"\d+").all()
    assert "17850" in set(ev["user_id"])
    assert (ev["item_id"] == ev["item_id"].str.strip().str.upper()).all()
    assert (ev["item_text"] == ev["item_text"].str.strip()).all()
    assert (ev["item_text"] != "").all()
    assert ev["event_time"].is_monotonic_increasing
    assert set(ev["item_id"]) == set(data.items["item_id"])


def test_customer_count(data, expected_purchases):
    assert len(data.customers) == expected_purchases["CustomerID"].nunique()
    assert data.customers["user_id"].is_unique
    assert set(data.customers["user_id"]) == set(data.events["user_id"])


def test_calibration_features_independent(data, expected_purchases, raw):
    cust = data.customers.set_index("user_id")
    g = expected_purchases.groupby("uid")
    assert (cust["frequency"] == g["InvoiceNo"].nunique().reindex(cust.index)).all()
    net = (
        g["spend"]
        .sum()
        .add(
            raw[raw["ok"] & raw["calib"] & raw["cancel"]].groupby("uid")["spend"].sum(),
            fill_value=0.0,
        )
    )
    assert np.allclose(cust["monetary"], net.reindex(cust.index).clip(lower=0))
    last_day = g["InvoiceDate"].max().dt.normalize().reindex(cust.index)
    assert np.allclose(cust["recency_days"], (pd.Timestamp("2011-08-31") - last_day).dt.days)
    # 12346 bought 74215 of one item for 77183.60 and cancelled it the same day.
    assert cust.loc["12346", "monetary"] == 0.0


def test_future_value_independent(data, raw):
    cust = data.customers.set_index("user_id")
    # All customers, vectorised: net horizon spend, cancellations included.
    h = raw[raw["ok"] & raw["horizon"]]
    expected = h.groupby("uid")["spend"].sum().reindex(cust.index, fill_value=0.0)
    assert np.allclose(cust["future_value"], expected.clip(lower=0))
    # A few customers, one at a time, spelled out.
    for uid in ["12347", "17850", "12346", "14646", "13089", "15311"]:
        rows = raw[
            (raw["CustomerID"] == int(uid))
            & (raw["InvoiceDate"] >= CAL_STOP)
            & (raw["InvoiceDate"] < HOR_STOP)
            & (raw["UnitPrice"] > 0)
            & ~raw["service"]
        ]
        value = max(0.0, float((rows["Quantity"] * rows["UnitPrice"]).sum()))
        assert cust.loc[uid, "future_value"] == pytest.approx(value), uid


def test_no_horizon_leak_into_features(data):
    assert data.events["event_time"].max() < CAL_STOP
    assert data.events["event_time"].min() >= pd.Timestamp("2010-12-01")
    c = data.customers
    assert (c["recency_days"] >= 0).all()
    assert (c["tenure_days"] >= c["recency_days"]).all()
    assert (c["frequency"] >= 1).all() and (c["n_items"] >= 1).all()
    assert (c["monetary"] >= 0).all() and (c["future_value"] >= 0).all()


def test_features_do_not_depend_on_horizon():
    short = load_online_retail(DATA, horizon_end="2011-10-31")
    full = load_online_retail(DATA)
    features = [c for c in full.customers.columns if c != "future_value"]
    pd.testing.assert_frame_equal(short.customers[features], full.customers[features])
    pd.testing.assert_frame_equal(short.events, full.events)
    pd.testing.assert_frame_equal(short.items, full.items)
    assert (short.customers["future_value"] != full.customers["future_value"]).any()
    acc = short.accounting
    assert acc["rows_used"] + acc["rows_rejected"] == acc["rows_read"] == 541909
    assert acc["rejected_by_reason"]["after_horizon"] > 0


def test_zero_share(data, raw, expected_purchases):
    share = data.summary()["future_value_zero_share"]
    assert 0.0 < share < 1.0
    h = raw[raw["ok"] & raw["horizon"]].groupby("uid")["spend"].sum()
    customers = expected_purchases["uid"].unique()
    positive = (h.reindex(customers, fill_value=0.0) > 0).sum()
    assert share == pytest.approx(1.0 - positive / len(customers))


def test_summary(data):
    s = data.summary()
    assert s["n_customers"] == len(data.customers)
    assert s["n_items"] == len(data.items)
    assert s["n_events"] == len(data.events)
    assert s["rows_read"] == 541909
    assert s["calibration"] == ("2010-12-01", "2011-08-31")
    assert s["horizon"] == ("2011-09-01", "2011-12-09")


def test_items_catalog(data):
    items = data.items
    assert items["item_id"].is_unique
    assert (items["price"] > 0).all()
    assert items["n_purchases"].sum() == len(data.events)
    median = data.events.groupby("item_id")["price"].median()
    assert np.allclose(items.set_index("item_id")["price"], median.reindex(items["item_id"]))


def test_start_limits_calibration():
    d = load_online_retail(DATA, start="2011-03-01")
    assert d.events["event_time"].min() >= pd.Timestamp("2011-03-01")
    acc = d.accounting
    assert acc["rejected_by_reason"]["before_start"] > 0
    assert acc["rows_used"] + acc["rows_rejected"] == acc["rows_read"]
    assert d.summary()["calibration"] == ("2011-03-01", "2011-08-31")


# ----------------------------------------------------------------- schemas
def test_schemas_validate(data):
    for frame, schema in (
        (data.events, data.events_schema()),
        (data.customers, data.customers_schema()),
    ):
        assert set(schema.column_names()) <= set(frame.columns)
        report = validate(frame, schema, on_bad_rows="raise")
        assert report.rows_used == len(frame)
    assert data.customers_schema().value_label == "future_value"
    assert data.events_schema().item_price == "price"


# --------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"cutoff": "2011-12-09", "horizon_end": "2011-12-09"}, "cutoff"),
        ({"cutoff": "2011-12-31", "horizon_end": "2011-12-09"}, "horizon_end"),
        ({"cutoff": "not a date"}, "cutoff"),
        ({"horizon_end": "2011-13-45"}, "horizon_end"),
        ({"cutoff": "2011-08-31 12:00"}, "cutoff"),
        ({"start": "2011-09-30"}, "start"),
    ],
)
def test_argument_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_online_retail(DATA, **kwargs)


def test_missing_file(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        load_online_retail(tmp_path / "nope.parquet")
    monkeypatch.setenv("TFREC_ONLINE_RETAIL", str(tmp_path / "gone.parquet"))
    with pytest.raises(FileNotFoundError, match="TFREC_ONLINE_RETAIL"):
        find_online_retail()
    monkeypatch.setenv("TFREC_ONLINE_RETAIL", str(DATA))
    assert find_online_retail() == DATA
    monkeypatch.delenv("TFREC_ONLINE_RETAIL")
    monkeypatch.chdir(tmp_path)  # not found from CWD, found from the repo root
    assert find_online_retail().resolve() == DATA.resolve()


def test_missing_column(tmp_path):
    path = tmp_path / "bad.parquet"
    pd.read_parquet(DATA).head(10).drop(columns=["Country"]).to_parquet(path)
    with pytest.raises(ValueError, match=r"Country.*bad\.parquet"):
        load_online_retail(path)
