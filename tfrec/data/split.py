"""Time-based train/validation/test splits that do not leak the future.

Example:

```python
split = time_split(df, "event_time", valid_fraction=0.1, test_fraction=0.1)
split.train, split.valid, split.test   # disjoint, in time order
held = holdout_mask(users.user_id, 0.2)  # users whose value label training never sees
```
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from tfrec.schema import FeatureSchema

HOLDOUT_BUCKETS = 1000


@dataclasses.dataclass
class Split:
    """Disjoint train/valid/test frames and the timestamps between them."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    valid_start: pd.Timestamp
    test_start: pd.Timestamp

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def time_split(
    df: pd.DataFrame,
    time_column: str | FeatureSchema,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    valid_start=None,
    test_start=None,
) -> Split:
    """Splits rows by time: train < valid_start <= valid < test_start <= test.

    Boundaries are the given timestamps, or else the time quantiles that leave
    `valid_fraction` and `test_fraction` of the rows in the later splits. Rows
    that share a timestamp always land in the same split, so the fractions are
    approximate. Every row lands in exactly one split.
    """
    if isinstance(time_column, FeatureSchema):
        if not time_column.event_time:
            raise ValueError("time_split: the schema maps no event_time column")
        time_column = time_column.event_time
    if time_column not in df.columns:
        raise ValueError(f"time_split: column '{time_column}' not in the table")
    for name, frac in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"time_split: {name} must be in [0, 1), got {frac}")
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError("time_split: valid_fraction + test_fraction must be below 1")
    times = pd.to_datetime(df[time_column])
    if times.isna().any():
        raise ValueError(
            f"time_split: column '{time_column}' has {int(times.isna().sum())} "
            "missing timestamps; validate the table first"
        )
    if test_start is None:
        test_start = times.quantile(1.0 - test_fraction) if test_fraction else times.max() + pd.Timedelta(1, "ns")
    if valid_start is None:
        valid_start = times.quantile(1.0 - test_fraction - valid_fraction) if valid_fraction else test_start
    valid_start, test_start = pd.Timestamp(valid_start), pd.Timestamp(test_start)
    if valid_start > test_start:
        raise ValueError(f"time_split: valid_start {valid_start} is after test_start {test_start}")
    train_mask = times < valid_start
    test_mask = times >= test_start
    valid_mask = ~train_mask & ~test_mask
    train, valid, test = (df.loc[m.to_numpy()].reset_index(drop=True) for m in (train_mask, valid_mask, test_mask))
    assert len(train) + len(valid) + len(test) == len(df)
    return Split(train, valid, test, valid_start=valid_start, test_start=test_start)


def holdout_mask(user_ids, fraction: float):
    """Users whose value label training never sees: a stable hash of the id into `HOLDOUT_BUCKETS` buckets.

    The one definition of the held-out users, used by training (to hide their
    labels) and by evaluation (to score only them). `user_ids` is array-like
    (returns a numpy bool array) or a `tf.string` tensor (returns a `tf.bool`
    tensor, for `tf.data` transforms).
    """
    import tensorflow as tf

    limit = round(fraction * HOLDOUT_BUCKETS)
    if isinstance(user_ids, tf.Tensor):
        return tf.strings.to_hash_bucket_fast(user_ids, HOLDOUT_BUCKETS) < limit
    ids = np.asarray(user_ids, dtype=object).astype(str)
    return tf.strings.to_hash_bucket_fast(ids, HOLDOUT_BUCKETS).numpy() < limit
