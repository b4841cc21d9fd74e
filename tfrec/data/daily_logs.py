"""Day-by-day simulated logs with drift, for retraining loops.

`simulate_days` runs the simulator's site (`tfrec.data.simulator`) for
`DriftConfig.days` days. The first day has `SimulatorConfig.num_items` items
and `num_users` users; on each later day new items and new users arrive,
every user's category interests take a random-walk step (their latent vector
follows), each category's prices move by a random factor, and the purchases
of a day are appended to the buyers' histories (most recent last), so later
days see them. Each day is a `SimulatedData` of its own: its impressions
(`num_sessions` sessions within that day), the catalog and users of that day
at that day's prices, and the planted truth of that day (the oracle of day
`d` knows day `d`'s preferences). Session ids are unique across days.

Example:

```python
from tfrec.data.simulator import SimulatorConfig
days = simulate_days(SimulatorConfig(num_users=300, num_items=100, num_sessions=200, seed=1), DriftConfig(days=3))
[len(d.items) for d in days]        # [100, 103, 106]: the catalog grows
days[2].impressions.event_time.min()  # on the third day
```
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from tfrec.config_validation import check_config

# The day's log is drawn by the simulator's own catalog, users and session code
# (private to tfrec.data.simulator, which this module extends).
from tfrec.data.simulator import SimulatedData, SimulatorConfig, _Catalog, _draw_log, _Users


@dataclasses.dataclass
class DriftConfig:
    """How the simulated site changes from one day to the next.

    Args:
        days: number of days.
        new_items_per_day: items added each later day, as a share of the first
            day's catalog.
        new_users_per_day: users added each later day, as a share of the first
            day's users.
        preference_drift: standard deviation of each user's daily step in log
            category interest (0 = fixed preferences).
        price_drift: standard deviation of each category's daily log price
            change (0 = fixed prices).
    """

    days: int = 7
    new_items_per_day: float = 0.03
    new_users_per_day: float = 0.03
    preference_drift: float = 0.25
    price_drift: float = 0.03

    def __post_init__(self):
        check_config(
            self,
            "drift",
            ranges={
                "days": ">= 1",
                "new_items_per_day": ">= 0",
                "new_users_per_day": ">= 0",
                "preference_drift": ">= 0",
                "price_drift": ">= 0",
            },
        )


def simulate_days(config: SimulatorConfig, drift: DriftConfig | None = None) -> list[SimulatedData]:
    """One `SimulatedData` per day (see the module docstring). Deterministic for given configs."""
    drift = drift or DriftConfig()
    rng = np.random.default_rng(config.seed)
    later = drift.days - 1
    extra_items = int(round(drift.new_items_per_day * config.num_items)) * later
    extra_users = int(round(drift.new_users_per_day * config.num_users)) * later
    world = dataclasses.replace(
        config, num_items=config.num_items + extra_items, num_users=config.num_users + extra_users
    )
    catalog = _Catalog(world, rng)
    item_day = _arrival_days(rng, world.num_items, extra_items, later)
    # Pre-window histories hold only items of the first day.
    users = _Users(world, catalog.subset(np.flatnonzero(item_day == 0)), rng)
    user_day = _arrival_days(rng, world.num_users, extra_users, later)

    base_price = catalog.price.copy()
    log_shift = np.zeros(len(catalog.categories))
    log_interest = np.log(users.interests + 1e-12)
    start = pd.Timestamp(config.start)
    out = []
    for day in range(drift.days):
        if day and drift.preference_drift > 0:
            log_interest = log_interest + rng.normal(0, drift.preference_drift, log_interest.shape)
            users.interests = _softmax_rows(log_interest)
            users.latent = users.interests @ catalog.cat_vec + users.noise
        if day and drift.price_drift > 0:
            log_shift = log_shift + rng.normal(0, drift.price_drift, log_shift.shape)
        price = np.round(base_price * np.exp(log_shift[catalog.cat]), 2).clip(0.5)
        items = np.flatnonzero(item_day <= day)
        active = np.flatnonzero(user_day <= day)
        day_config = dataclasses.replace(
            config,
            num_items=len(items),
            num_users=len(active),
            days=1,
            start=str((start + pd.Timedelta(days=day)).date()),
        )
        data = _draw_log(
            day_config,
            catalog.subset(items, price),
            users,
            rng,
            active_users=active,
            session_offset=day * config.num_sessions,
        )
        _append_purchases(users, data.impressions, config.history_max)
        out.append(data)
    return out


def _arrival_days(rng, total, extra, later_days):
    """Arrival day of each of `total` entities: `extra` random ones spread evenly over days 1..later_days."""
    day = np.zeros(total, dtype=int)
    if extra:
        late = rng.permutation(total)[:extra]
        day[late] = 1 + np.arange(extra) % later_days
    return day


def _append_purchases(users, impressions, history_max):
    """Appends the day's purchases to the buyers' histories in time order, keeping the last `history_max`."""
    bought = impressions[impressions.purchase == 1].sort_values("event_time", kind="stable")
    row_of = {uid: i for i, uid in enumerate(users.ids)}
    for uid, items in bought.groupby("user_id", sort=False).item_id:
        u = row_of[uid]
        users.histories[u] = (list(users.histories[u]) + list(items))[-history_max:]


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
