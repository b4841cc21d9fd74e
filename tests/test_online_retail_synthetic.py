"""Online Retail adapter on a small synthetic file with hand-worked answers.

Runs everywhere: it needs no ../shared data.
"""

import collections

import numpy as np
import pandas as pd
import pytest

from tfrec.data.online_retail import load_online_retail


# ------------------------------------------------- small synthetic example
def _synthetic() -> tuple[pd.DataFrame, collections.Counter]:
    """A tiny file: cutoff 2011-01-31, horizon_end 2011-02-28; each line's
    expected fate by hand in the last field."""
    na = None
    rows = [
        # invoice, code,   description,    qty, price, date,                customer, fate
        ("1001", " a1 ", "  Red Mug ", 2, 3.0, "2011-01-05 10:00", 101, "event"),
        ("1001", "B2", na, 1, 10.0, "2011-01-05 10:00", 101, "event"),
        ("1002", "B2", "Blue Bowl", 1, 10.0, "2011-01-10 09:00", 102, "event"),
        ("1002", "a1", "   ", 1, 3.0, "2011-01-10 09:00", 102, "event"),
        ("1003", "B2", "Blue Bowl", 1, 10.0, "2011-01-11 09:00", na, "no_customer_id"),
        ("1004", "B2", "BLUE BOWL SET", 1, 12.0, "2011-01-12 09:00", 102, "event"),
        ("C1005", "A1", "Red Mug", -1, 3.0, "2011-01-20 09:00", 101, "cal_cancel"),
        ("1006", "Z9", na, 1, 5.0, "2011-01-15 09:00", 103, "missing_description"),
        ("C1007", "Z9", na, -1, 5.0, "2011-01-16 09:00", 103, "cancellation"),
        ("1008", "A1", "Red Mug", 5, 3.0, "2011-02-10 09:00", 101, "horizon"),
        ("C1009", "A1", "Red Mug", -2, 3.0, "2011-02-11 09:00", 101, "hor_cancel"),
        ("1010", "B2", "Blue Bowl", 2, 10.0, "2011-02-15 09:00", 102, "horizon"),
        ("C1011", "B2", "Blue Bowl", -1, 10.0, "2011-02-16 09:00", 102, "hor_cancel"),
        ("1012", "A1", "Red Mug", 1, 3.0, "2011-02-20 09:00", 104, "no_calibration_purchase"),
        ("1013", "POST", "POSTAGE", 1, 18.0, "2011-01-10 09:00", 102, "non_product_code"),
        ("1014", "A1", "Red Mug", 1, 0.0, "2011-01-10 09:00", 102, "non_positive_price"),
        ("1015", "A1", "Red Mug", 1, 3.0, "2011-03-01 00:00", 101, "after_horizon"),
        ("C1016", "A1", "Red Mug", -2, 3.0, "2011-01-25 09:00", 102, "cal_cancel"),
        ("1017", "A1", "Red Mug", 1, 3.0, "2011-01-31 23:59", 101, "event"),
        ("1018", "A1", "Red Mug", 1, 3.0, "2011-02-01 00:00", 101, "horizon"),
        ("1019", "A1", "Red Mug", 1, 3.0, "2011-01-02 09:00", 105, "event"),
        ("C1020", "A1", "Red Mug", -4, 3.0, "2011-02-05 09:00", 105, "hor_cancel"),
        ("C1021", "A1", "Red Mug", -3, 3.0, "2011-01-03 09:00", 105, "cal_cancel"),
        ("1022", "A1", "Red Mug", -5, 3.0, "2011-01-04 09:00", na, "no_customer_id"),
        ("1023", "A1", "Red Mug", 0, 3.0, "2011-01-06 09:00", 101, "non_positive_quantity"),
        ("C1024", "A1", "Red Mug", 1, 3.0, "2011-01-07 09:00", 102, "cancellation"),
        ("1025", "GIFT_0001_20", "Voucher", 1, 16.67, "2011-01-07 09:00", 102, "non_product_code"),
    ]
    df = pd.DataFrame(
        rows,
        columns=["InvoiceNo", "StockCode", "Description", "Quantity", "UnitPrice", "InvoiceDate", "CustomerID", "fate"],
    )
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df["CustomerID"] = df["CustomerID"].astype("Int64")
    df["Quantity"] = df["Quantity"].astype("int64")
    df["Country"] = np.where(df["CustomerID"].eq(102).fillna(False), "France", "United Kingdom")
    fates = collections.Counter(df.pop("fate"))
    return df, fates


@pytest.mark.parametrize("customer_dtype", ["Int64", "float64"])
def test_synthetic_netting_and_description_fill(tmp_path, customer_dtype):
    df, fates = _synthetic()
    df["CustomerID"] = df["CustomerID"].astype(customer_dtype)
    path = tmp_path / "tiny.parquet"
    df.to_parquet(path)
    d = load_online_retail(path, cutoff="2011-01-31", horizon_end="2011-02-28")

    acc = d.accounting
    assert acc["rows_read"] == len(df) == 27
    assert acc["used_by_part"] == {
        "events": fates["event"],
        "calibration_cancellations": fates["cal_cancel"],
        "horizon_purchases": fates["horizon"],
        "horizon_cancellations": fates["hor_cancel"],
    }
    for reason, count in acc["rejected_by_reason"].items():
        assert count == fates[reason], reason
    assert acc["rows_used"] + acc["rows_rejected"] == 27

    # Descriptions: stripped; missing/blank ones filled with the code's most
    # common calibration description ("Blue Bowl" 2x, incl. the line without
    # a customer id, vs "BLUE BOWL SET" 1x); Z9 has none -> rejected.
    ev = d.events
    assert list(ev["item_text"]) == [
        "Red Mug",
        "Red Mug",
        "Blue Bowl",
        "Blue Bowl",
        "Red Mug",
        "BLUE BOWL SET",
        "Red Mug",
    ]
    assert list(ev["user_id"]) == ["105", "101", "101", "102", "102", "102", "101"]
    assert set(ev["item_id"]) == {"A1", "B2"}

    c = d.customers.set_index("user_id")
    assert list(c.index) == ["101", "102", "105"]
    # 101: 6 + 10 + 3 bought, 3 cancelled in calibration; horizon 15 - 6 + 3.
    # 102: 10 + 3 + 12 bought, 6 cancelled; horizon 20 - 10.
    # 105: 3 bought, 9 cancelled -> 0; horizon -12 -> 0.
    assert c["monetary"].to_dict() == pytest.approx({"101": 16.0, "102": 19.0, "105": 0.0})
    assert c["future_value"].to_dict() == pytest.approx({"101": 12.0, "102": 10.0, "105": 0.0})
    assert c["frequency"].to_dict() == {"101": 2, "102": 2, "105": 1}
    assert c["n_items"].to_dict() == {"101": 2, "102": 2, "105": 1}
    assert c["recency_days"].to_dict() == {"101": 0.0, "102": 19.0, "105": 29.0}
    assert c["tenure_days"].to_dict() == {"101": 26.0, "102": 21.0, "105": 29.0}
    assert c["country"].to_dict() == {
        "101": "United Kingdom",
        "102": "France",
        "105": "United Kingdom",
    }

    items = d.items.set_index("item_id")
    assert items["item_text"].to_dict() == {"A1": "Red Mug", "B2": "Blue Bowl"}
    assert items["price"].to_dict() == {"A1": 3.0, "B2": 10.0}
    assert items["n_purchases"].to_dict() == {"A1": 4, "B2": 3}

    s = d.summary()
    assert s["n_customers"] == 3
    assert s["future_value_zero_share"] == pytest.approx(1 / 3)
