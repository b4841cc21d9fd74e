import numpy as np
import pandas as pd
import pytest

from tfrec.data.validation import REASON_COLUMN, SchemaValidationError, validate
from tfrec.schema import FeatureSchema

SCHEMA = FeatureSchema(
    query_text="query",
    user_id="user",
    user_categorical=["segment"],
    user_numeric=["tenure"],
    user_history="history",
    item_id="item",
    item_text="title",
    item_price="price",
    click_label="click",
    value_label="value",
    relevance_label="grade",
    relevance_range=(0, 3),
    event_time="ts",
)


def good_frame(n=6):
    return pd.DataFrame(
        {
            "query": ["red shoes"] * n,
            "user": [10, 11, 12, 13, 14, 15][:n],
            "segment": ["a", None, "b", "a", "c", "a"][:n],
            "tenure": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0][:n],
            "history": [["i1", "i2"], [], None, ["i3"], ["i1"], ["i9"]][:n],
            "item": ["i1", "i2", "i3", "i4", "i5", "i6"][:n],
            "title": ["blue sneaker"] * n,
            "price": [1.0, 2.0, 0.0, 4.0, 5.0, 6.0][:n],
            "click": [0, 1, 0, 1, 1, 0][:n],
            "value": [0.0, 3.5, 0.0, 1.0, 0.0, 2.0][:n],
            "grade": [0, 1, 2, 3, 3, 0][:n],
            "ts": pd.date_range("2024-01-01", periods=n, freq="h"),
            "extra": range(n),
        }
    )


def test_clean_table_passes_with_types():
    report = validate(good_frame(), SCHEMA)
    assert report.rows_read == report.rows_used == 6
    assert report.rows_rejected == 0
    valid = report.valid
    assert valid["user"].tolist() == ["10", "11", "12", "13", "14", "15"]
    assert valid["segment"].tolist()[1] == ""  # missing categorical -> OOV
    assert np.isnan(valid["tenure"][1])  # missing numeric kept, imputed by the model
    assert valid["history"].tolist()[2] == []
    assert valid["extra"].tolist() == list(range(6))  # other columns pass through


@pytest.mark.parametrize(
    "mutate, reason, rows",
    [
        (lambda df: df.assign(query=["", "  ", "x", "x", "x", "x"]), "query: empty text", 2),
        (lambda df: df.assign(title=[None, "a", "a", "a", "a", "a"]), "title: null in required field", 1),
        (lambda df: df.assign(price=[-1.0, 2, -3, 4, 5, 6]), "price: negative value", 2),
        (lambda df: df.assign(click=[0, 2, 1, 1, 0, 0]), "click: label out of range", 1),
        (lambda df: df.assign(grade=[0, 4, 5, 1, 1, -1]), "grade: label out of range", 3),
        (lambda df: df.assign(value=[np.nan, 1, 1, 1, 1, 1]), "value: null in required field", 1),
        (lambda df: df.assign(value=[-0.5, 1, 1, 1, 1, 1]), "value: negative value", 1),
        (lambda df: df.assign(user=[1.5, 2.0, 3.0, 4.0, 5.0, 6.0]), "user: wrong dtype", 1),
        (lambda df: df.assign(price=["1.0", "x", "3", "4", "5", "6"]), "price: wrong dtype", 1),
        (
            lambda df: df.assign(
                ts=["2024-01-01", "yesterday", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
            ),
            "ts: wrong dtype",
            1,
        ),
        (lambda df: df.assign(price=[np.inf, 1, 1, 1, 1, 1]), "price: not finite", 1),
    ],
)
def test_bad_rows_are_rejected_counted_and_kept(mutate, reason, rows):
    df = mutate(good_frame())
    report = validate(df, SCHEMA)
    assert report.rejected_by_reason == {reason: rows}
    assert report.rows_read == report.rows_used + report.rows_rejected == 6
    # Rejected rows keep their original values: no data is lost.
    assert set(report.rejected.columns) == set(df.columns) | {REASON_COLUMN}
    issue = report.issues[0]
    assert reason == issue.reason and issue.rows == rows
    with pytest.raises(SchemaValidationError) as err:
        validate(df, SCHEMA, on_bad_rows="raise")
    column = reason.split(":")[0]
    assert f"column '{column}'" in str(err.value)
    assert f"in {rows} row(s)" in str(err.value)


def test_row_with_several_problems_counts_once():
    df = good_frame().assign(price=[-1.0, 1, 1, 1, 1, 1], click=[5, 0, 0, 0, 0, 0])
    report = validate(df, SCHEMA)
    assert report.rows_rejected == 1
    assert {i.reason for i in report.issues} == {"price: negative value", "click: label out of range"}


def test_missing_column_names_column_and_rows():
    df = good_frame().drop(columns=["price", "title"])
    with pytest.raises(SchemaValidationError) as err:
        validate(df, SCHEMA, source="events.parquet")
    msg = str(err.value)
    assert "column 'price': missing column in 6 row(s)" in msg
    assert "column 'title': missing column" in msg
    assert "events.parquet" in msg
    assert {i.column for i in err.value.issues} == {"price", "title"}


def test_wrong_dtype_for_whole_column():
    df = good_frame().assign(price=pd.date_range("2024-01-01", periods=6))
    with pytest.raises(SchemaValidationError, match="column 'price': wrong dtype in 6 row"):
        validate(df, SCHEMA)
    df = good_frame().assign(title=[1, 2, 3, 4, 5, 6])
    with pytest.raises(SchemaValidationError, match="column 'title': wrong dtype.*expected text"):
        validate(df, SCHEMA)


def test_require_subset_for_inference():
    df = good_frame().drop(columns=["click", "value", "grade", "ts"])
    report = validate(df, SCHEMA, require=SCHEMA.feature_names)
    assert report.rows_used == 6
