"""The three shapes of e-commerce data, prepared for training and evaluation.

Each `prepare_*` function takes validated rows (`read_tables(...).frame`) and
the user's `FeatureSchema`, and returns a `PreparedData`: the schema the model
reads, disjoint train/valid/test frames split without leakage, and the item
catalog where there are items.

* `prepare_search`: query text, item, click or graded relevance. Split by
  query (a normalised query is in exactly one split), or by time.
* `prepare_interactions`: user x item events without queries. Each event gets
  the user's earlier items as its history (strictly earlier timestamps, so
  items of the same basket never see each other); split by time; CTR
  negatives are drawn by training popularity.
* `prepare_transactions`: customer, time, amount. One row per customer with
  recency/frequency/monetary features from before a cutoff and the spend in
  the horizon after it as the label. The model learns on an earlier window of
  the same length that ends at the cutoff, so no horizon data reaches training.

Example:

```python
tables = read_tables("tx/*.csv", schema)
data = prepare_transactions(tables.frame, schema, cutoff="2011-08-31", horizon_end="2011-12-09")
data.train, data.test          # customers x (features, future_value)
```
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import numpy as np
import pandas as pd

from tfrec.data.split import time_split
from tfrec.schema import FeatureSchema, Role

HISTORY_COLUMN = "recent_items"
CLICK_COLUMN = "clicked"
VALUE_COLUMN = "future_value"
QUERY_KEY_COLUMN = "query_key"


class ShapeError(ValueError):
    """The schema or the data does not fit the chosen shape; the message says what is missing."""


@dataclasses.dataclass
class PreparedData:
    """Model-ready splits of one shape.

    Attributes:
        shape: `"search"`, `"interactions"` or `"transactions"`.
        schema: the schema the model reads (derived columns such as the
            history or the customer features included).
        train, valid, test: disjoint splits.
        catalog: one row per item with its features (None without items).
        info: how the data was split and what was derived (boundaries, counts).
    """

    shape: str
    schema: FeatureSchema
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    catalog: pd.DataFrame | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def require_roles(schema: FeatureSchema, shape: str, roles, one_of=()) -> None:
    """Raises `ShapeError` naming the roles `shape` needs that `schema` does not map."""
    missing = [Role(r).value for r in roles if not schema.has(r)]
    if one_of and not any(schema.has(r) for r in one_of):
        missing.append(" or ".join(one_of))
    if missing:
        mapped = {k: v for k, v in schema.to_dict().items()}
        raise ShapeError(f"data.shape '{shape}' needs the schema to map {missing}; the schema maps {mapped}")


def _time_boundary(value, name: str) -> pd.Timestamp:
    """A cutoff as the first instant after it: a date (midnight) includes that whole day."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ShapeError(f"data.{name}={value!r} is not a date or time ({e})") from e
    if pd.isna(ts):
        raise ShapeError(f"data.{name}={value!r} is not a date or time")
    return ts + pd.Timedelta(days=1) if ts == ts.normalize() else ts


def _naive(times: pd.Series, boundary: pd.Timestamp) -> pd.Timestamp:
    """`boundary` in the time zone of `times` (naive stays naive)."""
    tz = getattr(times.dt, "tz", None)
    if tz is not None and boundary.tz is None:
        return boundary.tz_localize(tz)
    if tz is None and boundary.tz is not None:
        return boundary.tz_convert(None)
    return boundary


def _unit_hash(keys, seed: int) -> np.ndarray:
    """A stable pseudo-random number in [0, 1) per key (same key, same number)."""
    hashed = pd.util.hash_array(
        np.asarray(keys, dtype=object).astype(str), hash_key=f"tfrec{int(seed):011d}"[-16:].rjust(16, "0")
    )
    return (hashed % np.uint64(1_000_003)).astype(np.float64) / 1_000_003.0


def item_catalog(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """One row per item id with its features (the latest row's values)."""
    cols = schema.item_feature_names
    if schema.event_time and schema.event_time in frame.columns:
        frame = frame.sort_values(schema.event_time, kind="stable")
    return frame[cols].drop_duplicates(schema.item_id, keep="last").reset_index(drop=True)


def query_key(texts: pd.Series) -> pd.Series:
    """Normalised query text: case-folded, whitespace collapsed (`" Red  Shoes"` -> `"red shoes"`)."""
    return texts.astype(str).str.casefold().str.split().str.join(" ")


def _split_by_time(frame, schema, valid_fraction, test_fraction, cutoff):
    """Test from `cutoff` (else the last `test_fraction`); valid the last `valid_fraction` before it."""
    if cutoff is None:
        return time_split(frame, schema, valid_fraction=valid_fraction, test_fraction=test_fraction)
    times = frame[schema.event_time]
    test_start = _naive(times, _time_boundary(cutoff, "cutoff"))
    before = times < test_start
    if not before.any() or before.all():
        raise ShapeError(f"data.cutoff {cutoff} leaves no rows on one side (times from {times.min()} to {times.max()})")
    valid_start = times[before].quantile(1 - valid_fraction) if valid_fraction else test_start
    return time_split(frame, schema, valid_start=valid_start, test_start=test_start)


# --------------------------------------------------------------------- search
def prepare_search(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    split_by: str = "query",
    valid_fraction: float = 0.1,
    test_fraction: float = 0.15,
    cutoff=None,
    seed: int = 0,
) -> PreparedData:
    """Search logs or judged results: split by query (default) or by time.

    With `split_by="query"` each normalised query text lands in exactly one
    split, drawn by a stable hash of the text (the fractions are shares of
    distinct queries, so row shares are approximate).
    """
    require_roles(
        schema, "search", [Role.QUERY_TEXT, Role.ITEM_ID], one_of=(Role.CLICK_LABEL.value, Role.RELEVANCE_LABEL.value)
    )
    frame = frame.assign(**{QUERY_KEY_COLUMN: query_key(frame[schema.query_text])})
    if split_by == "query":
        u = _unit_hash(frame[QUERY_KEY_COLUMN], seed)
        in_test = u < test_fraction
        in_valid = ~in_test & (u < test_fraction + valid_fraction)
        parts = [frame.loc[m].reset_index(drop=True) for m in (~in_test & ~in_valid, in_valid, in_test)]
        info = {
            "split_by": "query",
            "queries": {name: int(p[QUERY_KEY_COLUMN].nunique()) for name, p in zip(("train", "valid", "test"), parts)},
        }
    elif split_by == "time":
        require_roles(schema, "search (split_by: time)", [Role.EVENT_TIME])
        split = _split_by_time(frame, schema, valid_fraction, test_fraction, cutoff)
        parts = [split.train, split.valid, split.test]
        info = {"split_by": "time", "valid_start": str(split.valid_start), "test_start": str(split.test_start)}
    else:
        raise ShapeError(f"data.split_by for search must be 'query' or 'time', got {split_by!r}")
    train, valid, test = parts
    return PreparedData("search", schema, train, valid, test, catalog=item_catalog(frame, schema), info=info)


# --------------------------------------------------------------- interactions
def add_history(
    frame: pd.DataFrame, schema: FeatureSchema, column: str = HISTORY_COLUMN, window_days: float | None = None
) -> pd.DataFrame:
    """Adds each event's history: the user's items of strictly earlier timestamps, oldest first.

    At most `schema.history_length` items (the latest), and only those of the
    last `window_days` days when given. Events sharing a timestamp (one
    basket) never see each other. Returns the frame sorted by time.
    """
    frame = frame.sort_values(schema.event_time, kind="stable").reset_index(drop=True)
    users = frame[schema.user_id].to_numpy(dtype=object)
    items = frame[schema.item_id].to_numpy(dtype=object)
    times = frame[schema.event_time].to_numpy()
    length = schema.history_length
    window = None if window_days is None else np.timedelta64(int(window_days * 86400), "s")
    history = np.empty(len(frame), dtype=object)
    order = np.argsort(users, kind="stable")  # time order kept within each user
    bounds = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1], True])
    for a, b in itertools.pairwise(bounds):
        rows = order[a:b]
        t = times[rows]
        its = items[rows]
        # first index of each row's timestamp: earlier rows are the past
        first = np.searchsorted(t, t, side="left")
        lo = np.maximum(first - length, 0)
        if window is not None:
            lo = np.maximum(lo, np.searchsorted(t, t - window, side="left"))
        for r, s, e in zip(rows, lo, first):
            history[r] = list(its[s:e])
    return frame.assign(**{column: history})


def sample_negatives(
    positives: pd.DataFrame,
    schema: FeatureSchema,
    catalog: pd.DataFrame,
    popularity: pd.Series,
    per_positive: int,
    seed: int,
) -> pd.DataFrame:
    """`per_positive` rows per positive with an item drawn by `popularity`, labelled 0.

    The user side (user columns, history, time) is the positive's; the item
    side comes from `catalog`. Draws that hit the positive's own item are
    dropped.
    """
    if per_positive <= 0 or not len(positives):
        return positives.iloc[:0].assign(**{CLICK_COLUMN: np.zeros(0)})
    rng = np.random.default_rng(seed)
    pop = popularity.reindex(catalog[schema.item_id]).fillna(0).to_numpy(dtype=np.float64)
    pop = pop / pop.sum() if pop.sum() > 0 else np.full(len(pop), 1.0 / len(pop))
    idx = np.repeat(np.arange(len(positives)), per_positive)
    drawn = rng.choice(len(catalog), size=len(idx), p=pop)
    neg = positives.iloc[idx].reset_index(drop=True)
    items = catalog.iloc[drawn].reset_index(drop=True)
    for col in schema.item_feature_names:
        neg[col] = items[col].to_numpy()
    keep = neg[schema.item_id].to_numpy() != positives[schema.item_id].to_numpy()[idx]
    return neg.loc[keep].assign(**{CLICK_COLUMN: 0.0}).reset_index(drop=True)


def prepare_interactions(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.15,
    cutoff=None,
    negatives_per_positive: int = 1,
    history_window_days: float | None = None,
    seed: int = 0,
) -> PreparedData:
    """Interaction logs without queries: history as the query side, time split, sampled negatives.

    Every logged event is a positive (`clicked` = 1) unless the schema maps a
    click label. The split is by time: test from `cutoff` (or the last
    `test_fraction` of events), valid the `valid_fraction` before it. CTR
    negatives for every split are drawn by the training split's item
    popularity, from the catalog of all items.
    """
    require_roles(schema, "interactions", [Role.USER_ID, Role.ITEM_ID, Role.EVENT_TIME])
    if schema.query_text:
        raise ShapeError(
            "data.shape 'interactions' reads no query text; the schema maps query_text "
            f"'{schema.query_text}': use shape 'search', or leave query_text out"
        )
    history_column = schema.user_history
    if history_column is None:
        history_column = HISTORY_COLUMN if HISTORY_COLUMN not in frame.columns else "_" + HISTORY_COLUMN
        frame = add_history(frame, schema, history_column, history_window_days)
        schema = dataclasses.replace(schema, user_history=history_column)
    catalog = item_catalog(frame, schema)
    split = _split_by_time(frame, schema, valid_fraction, test_fraction, cutoff)
    parts = [split.train, split.valid, split.test]
    info: dict[str, Any] = {
        "split_by": "time",
        "valid_start": str(split.valid_start),
        "test_start": str(split.test_start),
        "history_column": history_column,
    }
    if schema.click_label is None:
        popularity = split.train[schema.item_id].value_counts()
        # Positives and their negatives interleaved in a seeded random order,
        # so that a shuffle buffer smaller than the table still mixes them.
        parts = [
            pd.concat(
                [
                    p.assign(**{CLICK_COLUMN: 1.0}),
                    sample_negatives(p, schema, catalog, popularity, negatives_per_positive, seed + i),
                ],
                ignore_index=True,
            )
            for i, p in enumerate(parts)
        ]
        parts = [p.sample(frac=1.0, random_state=seed + i).reset_index(drop=True) for i, p in enumerate(parts)]
        schema = dataclasses.replace(schema, click_label=CLICK_COLUMN)
        info["negatives_per_positive"] = int(negatives_per_positive)
    train, valid, test = parts
    return PreparedData("interactions", schema, train, valid, test, catalog=catalog, info=info)


# --------------------------------------------------------------- transactions
def customer_features(
    tx: pd.DataFrame, schema: FeatureSchema, amount: str, end: pd.Timestamp, start: pd.Timestamp
) -> pd.DataFrame:
    """One row per customer with a purchase in `[start, end)`: RFM features at `end`.

    Columns: the user id, `frequency` (distinct purchase days), `recency_days`
    and `tenure_days` (days from the last and first purchase to `end`),
    `monetary` (net spend, returns netted, floored at 0), `mean_day_spend`,
    `observed_days` (days from `start` to `end`), the user's categorical
    attributes (most frequent value) and, with items, `n_items` and the
    latest distinct items bought as the history.
    """
    user, t = schema.user_id, schema.event_time
    window = tx[(tx[t] >= start) & (tx[t] < end)]
    buys = window[window[amount] > 0]
    if not len(buys):
        return pd.DataFrame()
    day = buys[t].dt.floor("D")
    g = buys.assign(_day=day).groupby(user, sort=True)
    out = pd.DataFrame(
        {
            "frequency": g["_day"].nunique().astype(np.float64),
            "first": g[t].min(),
            "last": g[t].max(),
        }
    )
    end_day = end.floor("D") if end == end.normalize() else end
    net = window.groupby(user)[amount].sum().reindex(out.index).fillna(0.0)
    out["monetary"] = net.clip(lower=0.0).to_numpy()
    out["recency_days"] = ((end_day - out["last"]) / pd.Timedelta(days=1)).to_numpy()
    out["tenure_days"] = ((end_day - out["first"]) / pd.Timedelta(days=1)).to_numpy()
    out["mean_day_spend"] = out["monetary"] / out["frequency"]
    out["observed_days"] = (end - start) / pd.Timedelta(days=1)
    for col in schema.user_categorical:
        counts = buys.groupby([user, col]).size().rename("n").reset_index()
        counts = counts.sort_values([user, "n", col], ascending=[True, False, True], kind="stable")
        out[col] = counts.drop_duplicates(user).set_index(user)[col].reindex(out.index).fillna("")
    for col in schema.user_numeric:
        out[col] = buys.groupby(user)[col].last().reindex(out.index)
    if schema.item_id:
        out["n_items"] = buys.groupby(user)[schema.item_id].nunique().reindex(out.index).astype(np.float64)
        latest = buys.sort_values(t, kind="stable").drop_duplicates([user, schema.item_id], keep="last")
        out[HISTORY_COLUMN] = (
            latest.groupby(user)[schema.item_id].agg(lambda s: list(s)[-schema.history_length :]).reindex(out.index)
        )
    out.index.name = user
    return out.drop(columns=["first", "last"]).reset_index()


def net_spend(tx: pd.DataFrame, schema: FeatureSchema, amount: str, start, end) -> pd.Series:
    """Net spend per customer in `[start, end)`, floored at 0."""
    window = tx[(tx[schema.event_time] >= start) & (tx[schema.event_time] < end)]
    return window.groupby(schema.user_id)[amount].sum().clip(lower=0.0)


def prepare_transactions(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    amount: str,
    cutoff,
    horizon_end=None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    training_windows: int = 1,
    item_history: bool = False,
) -> PreparedData:
    """Transactions to customers x (features at a cutoff, spend in the horizon after it).

    Test: features from the calibration period `[first transaction, cutoff]`,
    label the net spend in `(cutoff, horizon_end]` (H days). Train and valid:
    the same with everything shifted H days earlier (features up to
    `cutoff - H`, label the spend in `(cutoff - H, cutoff]`), so training sees
    nothing after the cutoff; valid is a stable `valid_fraction` of those
    customers. With `training_windows` n > 1, n such windows end at the
    cutoff, `H/2` before it, ... (rows of each window's customers; all labels
    still before the cutoff). Customers need a purchase in the feature window
    to get a row.

    Args:
        frame: validated transactions; `amount` holds the signed amount
            (returns negative).
        schema: maps at least `user_id` and `event_time`.
        amount: the amount column.
        cutoff: last day (or instant) of the calibration period.
        horizon_end: last day (or instant) of the horizon; default: the last
            transaction.
        training_windows: label windows the model learns from (see above).
        item_history: with items, give the model each customer's latest
            distinct items (an id history) besides the count of items.
    """
    require_roles(schema, "transactions", [Role.USER_ID, Role.EVENT_TIME])
    if cutoff is None:
        raise ShapeError("data.shape 'transactions' needs data.cutoff (the last day of the calibration period)")
    t = schema.event_time
    times = frame[t]
    calib_stop = _naive(times, _time_boundary(cutoff, "cutoff"))
    horizon_stop = (
        _naive(times, _time_boundary(horizon_end, "horizon_end"))
        if horizon_end is not None
        else times.max() + pd.Timedelta(microseconds=1)
    )
    if not horizon_stop > calib_stop:
        raise ShapeError(f"data.horizon_end ({horizon_end or times.max()}) must be after data.cutoff ({cutoff})")
    horizon = horizon_stop - calib_stop
    start = times.min()
    train_stop = calib_stop - horizon
    if not (times < train_stop).any():
        raise ShapeError(
            f"transactions: training needs purchases before {train_stop} (cutoff minus the "
            f"{horizon / pd.Timedelta(days=1):.0f}-day horizon), so that a window of the horizon's length "
            f"ends at the cutoff; the data starts {start}. Move data.cutoff later or data.horizon_end earlier"
        )
    user = schema.user_id
    test = customer_features(frame, schema, amount, calib_stop, start)
    test[VALUE_COLUMN] = test[user].map(net_spend(frame, schema, amount, calib_stop, horizon_stop)).fillna(0.0)
    windows = []
    for i in range(max(int(training_windows), 1)):
        label_stop = calib_stop - i * horizon / 2
        feature_stop = label_stop - horizon
        if i and not (times < feature_stop).any():
            break
        rows = customer_features(frame, schema, amount, feature_stop, start)
        rows[VALUE_COLUMN] = rows[user].map(net_spend(frame, schema, amount, feature_stop, label_stop)).fillna(0.0)
        windows.append(rows.assign(window_end=label_stop))
    train = pd.concat(windows, ignore_index=True)
    held = _unit_hash(train[user], seed) < valid_fraction
    numeric = (
        ["frequency", "recency_days", "tenure_days", "monetary", "mean_day_spend"]
        + (["n_items"] if schema.item_id else [])
        + list(schema.user_numeric)
    )
    model_schema = FeatureSchema(
        user_categorical=list(schema.user_categorical),
        user_numeric=numeric,
        user_history=HISTORY_COLUMN if schema.item_id and item_history else None,
        history_length=schema.history_length,
        value_label=VALUE_COLUMN,
    )
    info = {
        "split_by": "time",
        "calibration": [str(start), str(calib_stop)],
        "horizon": [str(calib_stop), str(horizon_stop)],
        "training_windows": [
            [str(start), str(pd.Timestamp(w) - horizon), str(pd.Timestamp(w))] for w in pd.unique(train["window_end"])
        ],
        "horizon_days": horizon / pd.Timedelta(days=1),
        "transactions_after_horizon": int((times >= horizon_stop).sum()),
        "user_id": user,
    }
    return PreparedData(
        "transactions",
        model_schema,
        train.loc[~held].reset_index(drop=True),
        train.loc[held].reset_index(drop=True),
        test,
        catalog=None,
        info=info,
    )
