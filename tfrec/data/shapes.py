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
  the same length that ends at the cutoff, so no horizon data reaches training;
  a horizon as long as the history trains on shorter windows, their spend
  scaled to the horizon (`label_window`).

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


#: The shortest training label window, and feature period before a full-length one, in days.
MIN_WINDOW_DAYS = 28.0


@dataclasses.dataclass(frozen=True)
class LabelWindow:
    """The length of the training label windows and how their spend is scaled to the horizon.

    Attributes:
        days: the length of each training label window.
        scale: the factor on a window's spend to give the training label
            (1.0 when the windows have the horizon's length).
        note: one sentence saying what was chosen and why (for the job log).
    """

    days: pd.Timedelta
    scale: float
    note: str


def _days(delta: pd.Timedelta) -> float:
    return delta / pd.Timedelta(days=1)


def label_window(
    start: pd.Timestamp,
    calib_stop: pd.Timestamp,
    horizon: pd.Timedelta,
    *,
    cutoff,
    horizon_end,
    min_window_days: float = MIN_WINDOW_DAYS,
) -> LabelWindow:
    """The training label window for a horizon of `horizon` after the first instant past `cutoff`.

    With D the history before the cutoff (`calib_stop - start`), H the
    horizon and m `min_window_days`:

    * H <= D - m (a window of the horizon's length ends at the cutoff with at
      least m days of features before it): the horizon, unscaled.
    * otherwise, with D/2 >= m: half the history in whole days (the label
      window as long as the feature window before it), the label the
      window's spend times H / that length.
    * otherwise (under 2m days of history): the horizon, unscaled, if
      anything is left for features (H < D); else a `ShapeError` that says
      which `data.cutoff` or `data.horizon_end` would work.
    """
    history = calib_stop - start
    h_days, d_days = _days(horizon), _days(history)
    minimum = pd.Timedelta(days=min_window_days)
    half = pd.Timedelta(days=int(d_days // 2))
    if horizon <= history - minimum or (horizon < history and (horizon <= half or half < minimum)):
        return LabelWindow(
            horizon,
            1.0,
            f"horizon {h_days:.0f} days, {d_days:.0f} days of history before the cutoff: training on "
            f"{h_days:.0f}-day label windows ending at the cutoff ({d_days - h_days:.0f} days of features before "
            "the first), labels unscaled",
        )
    if half < minimum:
        need_cutoff = (start + 2 * minimum).ceil("D") - pd.Timedelta(days=1)
        need_horizon_end = (calib_stop + history - pd.Timedelta(microseconds=1)).floor("D") - pd.Timedelta(days=1)
        raise ShapeError(
            f"transactions: the {h_days:.0f}-day horizon (data.cutoff {cutoff} to data.horizon_end "
            f"{horizon_end or 'the last transaction'}) is not shorter than the {d_days:.1f} days of history before "
            f"the cutoff (the data starts {start}), and half that history is under the {min_window_days:.0f}-day "
            f"shortest training label window. Set data.cutoff to {need_cutoff.date()} or later (at least "
            f"{2 * min_window_days:.0f} days of history: label windows of half of it, scaled to the horizon), or "
            f"data.horizon_end to {need_horizon_end.date()} or earlier (a horizon shorter than the history trains on "
            "windows of its own length)"
        )
    scale = h_days / _days(half)
    why = (
        f"horizon {h_days:.0f} days >= {d_days:.0f} days of history before the cutoff"
        if horizon >= history
        else f"horizon {h_days:.0f} days leaves {d_days - h_days:.0f} of the {d_days:.0f} days of history before the "
        f"cutoff for features (under {min_window_days:.0f})"
    )
    return LabelWindow(
        half,
        scale,
        f"{why}: training on {_days(half):.0f}-day label windows (half the history; features from before each), "
        f"labels scaled x{scale:.2f} to the horizon (a steady per-day spend rate assumed)",
    )


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
    min_window_days: float = MIN_WINDOW_DAYS,
) -> PreparedData:
    """Transactions to customers x (features at a cutoff, spend in the horizon after it).

    Test: features from the calibration period `[first transaction, cutoff]`,
    label the net spend in `(cutoff, horizon_end]` (H days). Train and valid:
    label windows of h days that end by the cutoff, features up to the start
    of each (so training sees nothing after the cutoff); valid is a stable
    `valid_fraction` of those customers. With `training_windows` n > 1, n
    such windows end at the cutoff, `h/2` before it, ... (rows of each
    window's customers; all labels still before the cutoff; windows whose
    feature period would be empty, or with scaled labels shorter than
    `min_window_days`, are left out). Customers need a purchase in the
    feature window to get a row.

    The label window h (`label_window`; D the history before the cutoff,
    from the first transaction, m `min_window_days`):

    * H <= D - m: h = H, the label is the window's spend, as it will be at
      test time (features from the D - H >= m days before the window).
    * H > D - m (say 9 months of history and a 9-month horizon: no window
      of H days, or none with m days of features before it, ends at the
      cutoff): h = D/2 in whole days (the label window as long as the
      feature window before it) and the training label is the window's
      net spend times H/h, the per-day spend rate of the window times the
      horizon, so the model predicts spend in H days directly (exports and
      `tfrec predict` need no change). This assumes a steady per-day rate
      over the longer horizon: it ignores churn and seasonality beyond h
      days, which the BG/NBD + Gamma-Gamma baseline printed beside the
      model models for the whole horizon. Ranking metrics (Gini, Spearman)
      do not depend on the scale; error metrics do. (A per-day rate label
      with the horizon as an input at prediction would give the same
      ranking and, for one horizon per run, the same values.)
    * Under 2m days of history: h = H while H < D (few days of features),
      else a `ShapeError` naming the `data.cutoff` and `data.horizon_end`
      that would work.

    `info` records `horizon_days` (H), `train_label_days` (h),
    `label_scale` (H/h, 1.0 when h = H) and `train_label_choice` (the
    sentence the job logs).

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
        min_window_days: the shortest scaled label window h, and the
            shortest feature period before a full-length one (days).
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
    if not start < calib_stop:
        raise ShapeError(
            f"transactions: data.cutoff ({cutoff}) leaves no purchases before it (the data starts {start}): "
            "move data.cutoff later"
        )
    window = label_window(
        start, calib_stop, horizon, cutoff=cutoff, horizon_end=horizon_end, min_window_days=min_window_days
    )
    user = schema.user_id
    test = customer_features(frame, schema, amount, calib_stop, start)
    test[VALUE_COLUMN] = test[user].map(net_spend(frame, schema, amount, calib_stop, horizon_stop)).fillna(0.0)
    windows = []
    for i in range(max(int(training_windows), 1)):
        label_stop = calib_stop - i * window.days / 2
        feature_stop = label_stop - window.days
        if i and not (times < feature_stop).any():
            break
        if i and window.scale != 1.0 and _days(feature_stop - start) < min_window_days:
            break  # scaled windows: no extra window on a feature period shorter than the shortest label window
        rows = customer_features(frame, schema, amount, feature_stop, start)
        spend = rows[user].map(net_spend(frame, schema, amount, feature_stop, label_stop)).fillna(0.0)
        rows[VALUE_COLUMN] = spend * window.scale if window.scale != 1.0 else spend
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
            [str(start), str(pd.Timestamp(w) - window.days), str(pd.Timestamp(w))]
            for w in pd.unique(train["window_end"])
        ],
        "horizon_days": horizon / pd.Timedelta(days=1),
        "train_label_days": _days(window.days),
        "label_scale": window.scale,
        "train_label_choice": window.note,
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
