"""Adapter for the UCI Online Retail data set: invoice lines -> tfrec tables.

The Online Retail data set holds 541,909 invoice lines of a UK online gift
retailer between 2010-12-01 and 2011-12-09. `load_online_retail` cleans it and
splits it in time into

* a *calibration* period `[start, cutoff]` (whole days, both inclusive), from
  which the purchase `events`, the item catalog `items` and the customer
  features in `customers` are built, and
* a *horizon* period `(cutoff, horizon_end]`, from which only the label
  `customers.future_value` (net spend in the horizon) is computed, so no
  horizon data reaches a feature.

Example:

```python
from tfrec.data.online_retail import load_online_retail

data = load_online_retail()                 # finds ../shared/data/...parquet
print(data.summary())                       # customers, items, zero share, ...
print(data.accounting)                      # read = used + rejected, by reason
events_schema = data.events_schema()        # user x item purchase events
value_schema = data.customers_schema()      # user features -> future_value
```

Row accounting. Every line of the file is either *used* or *rejected* with
exactly one reason, so `rows_read == rows_used + sum(rejected_by_reason)`
holds exactly. A line is used when it enters an output: a calibration purchase
line becomes a row of `events` (and so of `monetary`); a cancellation line is
used when it is netted into the spend (`monetary` or `future_value`) of a
customer in `customers`; a horizon purchase line is used when it enters a
`future_value`. Reasons are checked in this order, the first that applies
wins:

1. ``no_customer_id``: CustomerID is missing.
2. ``before_start``: dated before `start` (only when `start` is given).
3. ``after_horizon``: dated after the `horizon_end` day.
4. ``non_product_code``: postage, carriage, fees, discounts, manual
   adjustments, samples, bad debt and gift vouchers (`NON_PRODUCT_CODES` and
   the `GIFT_` prefix), not catalog products.
5. ``non_positive_price``: UnitPrice <= 0 (free samples, write-offs).
6. ``non_positive_quantity``: a non-cancellation line with Quantity <= 0
   (stock adjustments, damages).
7. ``missing_description``: a calibration purchase line whose Description is
   missing or blank and whose StockCode has no description in the calibration
   period's sale lines to fill it from.
8. ``cancellation``: a cancellation (InvoiceNo starting with "C") that cannot
   be netted: its customer has no used calibration purchase (so no row in
   `customers`), or its Quantity is not negative.
9. ``no_calibration_purchase``: a horizon purchase line of a customer with no
   used calibration purchase (a customer new in the horizon has no features).

Data credit: Daqing Chen, Sai Liang Sain and Kun Guo, "Online Retail", UCI
Machine Learning Repository, https://doi.org/10.24432/C5BW33, licensed under
Creative Commons Attribution 4.0 (CC BY 4.0). The file is not shipped with
tfrec; convert the UCI spreadsheet to parquet with the original column names.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import numpy as np
import pandas as pd

from tfrec.schema import FeatureSchema

#: Where the file lives relative to the working directory or the repo root.
DEFAULT_PATH = pathlib.Path("..") / "shared" / "data" / "online_retail.parquet"
#: Environment variable that overrides the default location.
ENV_VAR = "TFREC_ONLINE_RETAIL"
SOURCE_URL = "https://archive.ics.uci.edu/dataset/352/online+retail"

REQUIRED_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)

#: Stock codes that are services or bookkeeping entries, not products.
NON_PRODUCT_CODES = frozenset(
    {
        "POST",  # postage
        "DOT",  # dotcom postage
        "C2",  # carriage
        "D",  # discount
        "M",  # manual
        "S",  # samples
        "B",  # adjust bad debt
        "BANK CHARGES",
        "AMAZONFEE",
        "CRUK",  # CRUK commission
        "PADS",  # pads to match all cushions (0.001 placeholder)
    }
)
#: Stock code prefixes of non-products (gift vouchers).
NON_PRODUCT_PREFIXES = ("GIFT_",)

#: Rejection reasons, in the order they are checked.
REASONS = (
    "no_customer_id",
    "before_start",
    "after_horizon",
    "non_product_code",
    "non_positive_price",
    "non_positive_quantity",
    "missing_description",
    "cancellation",
    "no_calibration_purchase",
)

_DAY = pd.Timedelta(days=1)


def find_online_retail(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Returns the path of the Online Retail parquet file.

    Looks, in order, at `path`, the `TFREC_ONLINE_RETAIL` environment variable,
    `../shared/data/online_retail.parquet` relative to the working directory,
    and the same relative to the repository root (the parent of the `tfrec`
    package directory). An explicit `path` or environment variable that does
    not exist is an error; it is not silently replaced by the defaults.

    Raises:
        FileNotFoundError: the file is in none of these places.
    """
    if path is not None:
        p = pathlib.Path(path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"Online Retail data: no file at {str(p)!r}")
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = pathlib.Path(env).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"Online Retail data: {ENV_VAR}={env!r} but there is no such file")
        return p
    repo_root = pathlib.Path(__file__).resolve().parents[2]
    candidates = [pathlib.Path.cwd() / DEFAULT_PATH, repo_root / DEFAULT_PATH]
    for p in candidates:
        if p.is_file():
            return p.resolve()
    tried = ", ".join(repr(str(p.resolve())) for p in candidates)
    raise FileNotFoundError(
        f"Online Retail data not found (tried {tried}). Pass path=..., or set "
        f"{ENV_VAR} to the parquet file; the data set is at {SOURCE_URL}."
    )


@dataclasses.dataclass
class OnlineRetailData:
    """The cleaned Online Retail tables and the row accounting.

    Attributes:
        events: one row per used calibration purchase line: `user_id` (str of
            the integer CustomerID), `item_id` (StockCode, stripped and
            upper-cased), `item_text`, `price`, `quantity`, `revenue`
            (quantity * price), `country`, `event_time`, `invoice`; in time
            order.
        customers: one row per customer with at least one row in `events`:
            `user_id`, `country` (most frequent in the calibration events),
            `frequency` (distinct calibration invoices), `recency_days` and
            `tenure_days` (whole days from the last and first calibration
            purchase to the cutoff day), `monetary` (net calibration spend
            after cancellations, floored at 0), `n_items` (distinct items
            bought), and the label `future_value` (net spend in the horizon
            after cancellations, floored at 0).
        items: the catalog of items in `events`: `item_id`, `item_text` (most
            frequent description), `price` (median unit price), `n_purchases`
            (event lines).
        accounting: `rows_read`, `rows_used`, `rows_rejected`,
            `rejected_by_reason` (every reason in `REASONS`, zeros included)
            and `used_by_part` (how the used rows split into events,
            calibration cancellations, horizon purchases and horizon
            cancellations).
        cutoff: last day of the calibration period (midnight).
        horizon_end: last day of the horizon (midnight).
        start: first day of the calibration period, or None for all data.
        source: the file read.
    """

    events: pd.DataFrame
    customers: pd.DataFrame
    items: pd.DataFrame
    accounting: dict[str, Any]
    cutoff: pd.Timestamp
    horizon_end: pd.Timestamp
    start: pd.Timestamp | None = None
    source: str = ""

    def events_schema(self) -> FeatureSchema:
        """Schema of `events` (user x item purchases, for retrieval)."""
        return FeatureSchema(
            user_id="user_id",
            user_categorical=["country"],
            item_id="item_id",
            item_text="item_text",
            item_price="price",
            event_time="event_time",
        )

    def customers_schema(self) -> FeatureSchema:
        """Schema of `customers` (calibration features -> future value)."""
        return FeatureSchema(
            user_id="user_id",
            user_categorical=["country"],
            user_numeric=["frequency", "recency_days", "tenure_days", "monetary", "n_items"],
            value_label="future_value",
        )

    def summary(self) -> dict[str, Any]:
        """A short overview: sizes, periods, label shape and row accounting."""
        fv = self.customers["future_value"]
        if self.start is not None:
            first_day = str(self.start.date())
        elif len(self.events):
            first_day = str(self.events["event_time"].min().date())
        else:
            first_day = None
        return {
            "n_customers": int(len(self.customers)),
            "n_items": int(len(self.items)),
            "n_events": int(len(self.events)),
            "n_invoices": int(self.events["invoice"].nunique()),
            "calibration": (first_day, str(self.cutoff.date())),
            "horizon": (str((self.cutoff + _DAY).date()), str(self.horizon_end.date())),
            "future_value_zero_share": float((fv == 0).mean()) if len(fv) else float("nan"),
            "future_value_mean": float(fv.mean()) if len(fv) else float("nan"),
            "monetary_mean": (float(self.customers["monetary"].mean()) if len(fv) else float("nan")),
            "rows_read": self.accounting["rows_read"],
            "rows_used": self.accounting["rows_used"],
            "rows_rejected": self.accounting["rows_rejected"],
        }


def _day(value, name: str) -> pd.Timestamp:
    """Parses a date argument; it must be a whole day (midnight)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"load_online_retail: {name}={value!r} is not a date ({e})") from e
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"load_online_retail: {name}={value!r} is not a date")
    if ts.tz is not None:
        raise ValueError(
            f"load_online_retail: {name}={value!r} has a time zone; the data's "
            "InvoiceDate is naive local time, give a naive date"
        )
    if ts != ts.normalize():
        raise ValueError(
            f"load_online_retail: {name}={value!r} has a time of day; give a date (the whole day is included)"
        )
    return ts


def _most_common(keys: pd.Series, values: pd.Series, key_name: str) -> pd.Series:
    """For each key, the most frequent value (ties: the smallest value)."""
    counts = (
        pd.DataFrame({key_name: keys.to_numpy(), "value": values.to_numpy()})
        .value_counts()
        .rename("n")
        .reset_index()
        .sort_values(["n", "value"], ascending=[False, True], kind="stable")
        .drop_duplicates(key_name)
    )
    return counts.set_index(key_name)["value"]


def _read(path: pathlib.Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except Exception as e:  # not a parquet file
        raise ValueError(f"Online Retail data: cannot read {str(path)!r} as parquet: {e}") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise ValueError(
            f"Online Retail data: required column(s) {missing} missing in {str(path)!r}; the file has {names}"
        )
    return pd.read_parquet(path, columns=list(REQUIRED_COLUMNS))


def load_online_retail(
    path: str | os.PathLike | None = None,
    cutoff="2011-08-31",
    horizon_end="2011-12-09",
    start=None,
) -> OnlineRetailData:
    """Loads Online Retail as tfrec tables split at `cutoff`.

    Args:
        path: the parquet file; default: see `find_online_retail`.
        cutoff: last day of the calibration period (inclusive): calibration
            lines have `start <= InvoiceDate < cutoff + 1 day`.
        horizon_end: last day of the horizon (inclusive): horizon lines have
            `cutoff + 1 day <= InvoiceDate < horizon_end + 1 day`.
        start: first day of the calibration period (inclusive); None for the
            start of the data.

    Returns:
        `OnlineRetailData`; see the module docstring for the cleaning rules
        and the row accounting.

    Raises:
        FileNotFoundError: no data file.
        ValueError: a bad argument (named in the message), or the file lacks a
            required column (the column and the file are named).
    """
    cutoff = _day(cutoff, "cutoff")
    horizon_end = _day(horizon_end, "horizon_end")
    if not cutoff < horizon_end:
        raise ValueError(
            f"load_online_retail: cutoff ({cutoff.date()}) must be before horizon_end ({horizon_end.date()})"
        )
    if start is not None:
        start = _day(start, "start")
        if not start <= cutoff:
            raise ValueError(f"load_online_retail: start ({start.date()}) must not be after cutoff ({cutoff.date()})")
    path = find_online_retail(path)
    df = _read(path)
    n = len(df)

    # ---------------------------------------------------------- normalise
    invoice = df["InvoiceNo"].astype(str).str.strip()
    item_id = df["StockCode"].astype(str).str.strip().str.upper()
    desc = df["Description"].astype("str").str.strip()
    desc = desc.where(df["Description"].notna() & (desc != ""))
    quantity = pd.to_numeric(df["Quantity"], errors="coerce")
    price = pd.to_numeric(df["UnitPrice"], errors="coerce").astype(float)
    time = df["InvoiceDate"]
    if not pd.api.types.is_datetime64_any_dtype(time):
        time = pd.to_datetime(time, errors="coerce")
    customer = df["CustomerID"]
    if not pd.api.types.is_integer_dtype(customer):
        try:
            customer = pd.to_numeric(customer, errors="raise").astype("Int64")
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"Online Retail data: column 'CustomerID' in {str(path)!r} does not hold integer ids ({e})"
            ) from e
    has_customer = customer.notna().to_numpy()
    user_id = pd.Series(
        np.where(has_customer, customer.astype(str).to_numpy(dtype=object), ""),
        index=df.index,
        dtype=str,
    )
    cancel = invoice.str.upper().str.startswith("C").to_numpy()
    t = time.to_numpy()
    calib_stop = np.datetime64(cutoff + _DAY)
    horizon_stop = np.datetime64(horizon_end + _DAY)
    # NaT compares False everywhere: a line without a date is "after_horizon".
    in_range = t < horizon_stop
    if start is not None:
        in_range &= t >= np.datetime64(start)
    in_calib = in_range & (t < calib_stop)
    q = quantity.to_numpy(dtype=float, na_value=np.nan)
    p = price.to_numpy(dtype=float, na_value=np.nan)

    # ------------------------------------------------------ reject, in order
    reason = np.zeros(n, dtype=np.int8)  # 0: undecided / used; k: REASONS[k-1]

    def reject(name: str, mask) -> None:
        mask = np.asarray(mask, dtype=bool) & (reason == 0)
        reason[mask] = REASONS.index(name) + 1

    reject("no_customer_id", ~has_customer)
    if start is not None:
        reject("before_start", t < np.datetime64(start))
    reject("after_horizon", ~(t < horizon_stop))
    non_product = item_id.isin(NON_PRODUCT_CODES) | item_id.str.startswith(NON_PRODUCT_PREFIXES)
    reject("non_product_code", non_product.to_numpy())
    reject("non_positive_price", ~(p > 0))
    reject("non_positive_quantity", ~cancel & ~(q > 0))

    # Missing descriptions of calibration purchases: the StockCode's most
    # common description among calibration-period sale lines (any customer).
    sale = in_calib & ~cancel & (q > 0) & (p > 0) & ~non_product.to_numpy()
    known = sale & desc.notna().to_numpy()
    lookup = _most_common(item_id[known], desc[known], "item_id")
    purchase = (reason == 0) & in_calib & ~cancel
    fill_rows = purchase & desc.isna().to_numpy()
    if fill_rows.any():
        desc = desc.copy()
        desc[fill_rows] = item_id[fill_rows].map(lookup).to_numpy()
    reject("missing_description", purchase & desc.isna().to_numpy())

    is_event = (reason == 0) & in_calib & ~cancel
    event_users = pd.unique(user_id[is_event])
    known_user = user_id.isin(event_users).to_numpy()
    reject("cancellation", cancel & (~known_user | ~(q < 0)))
    reject("no_calibration_purchase", ~known_user)
    used = reason == 0
    assert not (used & ~in_range).any()

    # ----------------------------------------------------------- outputs
    events = pd.DataFrame(
        {
            "user_id": user_id[is_event],
            "item_id": item_id[is_event],
            "item_text": desc[is_event].astype(str),
            "price": p[is_event],
            "quantity": quantity[is_event].astype("int64"),
            "revenue": q[is_event] * p[is_event],
            "country": df["Country"][is_event].astype(str).str.strip(),
            "event_time": time[is_event],
            "invoice": invoice[is_event],
        }
    )
    events = events.sort_values("event_time", kind="stable").reset_index(drop=True)

    spend = pd.Series(q * p, index=df.index)
    calib_cancel = used & cancel & in_calib
    horizon_used = used & ~in_calib

    g = events.groupby("user_id", sort=True)
    customers = pd.DataFrame(
        {
            "frequency": g["invoice"].nunique(),
            "first": g["event_time"].min(),
            "last": g["event_time"].max(),
            "gross": g["revenue"].sum(),
            "n_items": g["item_id"].nunique(),
        }
    )
    customers.index.name = "user_id"
    cancelled = spend[calib_cancel].groupby(user_id[calib_cancel]).sum()
    future = spend[horizon_used].groupby(user_id[horizon_used]).sum()
    country = _most_common(events["user_id"], events["country"], "user_id")
    customers = customers.assign(
        country=country.reindex(customers.index).astype(str),
        recency_days=(cutoff - customers["last"].dt.normalize()).dt.days.astype(float),
        tenure_days=(cutoff - customers["first"].dt.normalize()).dt.days.astype(float),
        monetary=(customers["gross"] + cancelled.reindex(customers.index, fill_value=0.0)).clip(lower=0.0),
        future_value=future.reindex(customers.index, fill_value=0.0).clip(lower=0.0),
    ).reset_index()
    customers = customers[
        ["user_id", "country", "frequency", "recency_days", "tenure_days", "monetary", "n_items", "future_value"]
    ]
    customers["frequency"] = customers["frequency"].astype("int64")
    customers["n_items"] = customers["n_items"].astype("int64")
    customers["user_id"] = customers["user_id"].astype(str)

    gi = events.groupby("item_id", sort=True)
    items = pd.DataFrame(
        {
            "item_text": _most_common(events["item_id"], events["item_text"], "item_id"),
            "price": gi["price"].median(),
            "n_purchases": gi.size().astype("int64"),
        }
    )
    items.index.name = "item_id"
    items = items.reset_index()
    items["item_id"] = items["item_id"].astype(str)
    items["item_text"] = items["item_text"].astype(str)

    counts = np.bincount(reason, minlength=len(REASONS) + 1)
    accounting: dict[str, Any] = {
        "rows_read": int(n),
        "rows_used": int(counts[0]),
        "rows_rejected": int(counts[1:].sum()),
        "rejected_by_reason": {r: int(c) for r, c in zip(REASONS, counts[1:])},
        "used_by_part": {
            "events": int(is_event.sum()),
            "calibration_cancellations": int(calib_cancel.sum()),
            "horizon_purchases": int((horizon_used & ~cancel).sum()),
            "horizon_cancellations": int((horizon_used & cancel).sum()),
        },
    }
    if accounting["rows_read"] != accounting["rows_used"] + accounting["rows_rejected"]:
        raise AssertionError(f"row accounting broken: {accounting}")
    if sum(accounting["used_by_part"].values()) != accounting["rows_used"]:
        raise AssertionError(f"row accounting broken: {accounting}")

    return OnlineRetailData(
        events=events,
        customers=customers,
        items=items,
        accounting=accounting,
        cutoff=cutoff,
        horizon_end=horizon_end,
        start=start,
        source=str(path),
    )
