"""What `build_model` reads of the training rows: a DataFrame in memory, or the statistics of one streaming pass.

`build_model` sizes and initialises a model from counts, numeric statistics,
texts, label means and a few sample rows of its training data, nothing else.
`FrameRows` computes them from a validated DataFrame (the in-memory path,
unchanged); `StatisticsRows` reads them from a
`tfrec.data.streaming_stats.TableStatistics` (`collect_statistics` over
files larger than memory). Both give the same vocabularies in the same order
and the same numeric statistics up to float rounding, so a model built from
the stream equals the one built from the whole table (with more than
`max_texts` distinct texts the stream's corpus is the first `max_texts` of
them; the calibration sample of a pretrained start is a different draw).

Example:

```python
from tfrec.data.streaming_stats import TableStatistics

in_memory = FrameRows(train_df)
streamed = StatisticsRows(TableStatistics.from_frame(train_df, schema))
assert in_memory.counts("item_id").sort_index().equals(streamed.counts("item_id").sort_index())
in_memory.numeric_stats(["item_price"], log_columns=["item_price"])   # {"mean": [...], "std": [...], ...}
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.streaming_stats import TableStatistics
from tfrec.layers.numeric_features import NumericFeatures


def value_counts(values) -> pd.Series:
    """`value -> count` of `values` as strings, `""` left out (unsorted)."""
    values = pd.Series(values).astype(str)
    return values[values != ""].value_counts(sort=False)


class FrameRows:
    """The training statistics of validated rows in memory (`validate(...).valid`)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    @property
    def num_rows(self) -> int:
        return len(self.frame)

    def counts(self, column: str) -> pd.Series:
        return value_counts(self.frame[column])

    def history_counts(self, column: str) -> pd.Series:
        return value_counts([i for hist in self.frame[column] for i in (hist if hist is not None else [])])

    def numeric_stats(self, columns, log_columns=()) -> dict:
        """`NumericFeatures.fit` of the columns; those in `log_columns` or without negative values are log-scaled."""
        values = self.frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        log_scale = [c in log_columns or bool(np.nanmin(values[:, i], initial=0) >= 0) for i, c in enumerate(columns)]
        layer = NumericFeatures.fit(values, log_scale=log_scale)
        return {"mean": layer.mean, "std": layer.std, "log_scale": layer.log_scale}

    def unique_texts(self, column: str) -> list[str]:
        """The distinct texts of `column` in order of first appearance."""
        return pd.unique(self.frame[column].astype(str)).tolist()

    def catalog_texts(self, id_column: str | None, text_column: str) -> pd.Series:
        """The first text of each item (each distinct text without an item id), in order of first appearance."""
        items = self.frame.drop_duplicates(id_column or text_column)
        return items[text_column].fillna("").astype(str)

    def positive_counts(self, id_column: str, click_column: str | None) -> pd.Series:
        """Item id counts of the clicked rows (all rows without a click label)."""
        positives = self.frame
        if click_column:
            positives = positives[positives[click_column] > 0]
        return positives[id_column].astype(str).value_counts()

    def label_mean(self, column: str) -> float:
        return float(self.frame[column].mean())

    def sample(self, rows: int) -> pd.DataFrame:
        return self.frame.sample(min(rows, len(self.frame)), random_state=0)


class StatisticsRows:
    """The training statistics of one streaming pass (`tfrec.data.streaming_stats.TableStatistics`)."""

    def __init__(self, statistics: TableStatistics):
        if not isinstance(statistics, TableStatistics):
            raise TypeError(f"expected TableStatistics (collect_statistics), got {type(statistics).__name__}")
        self.statistics = statistics

    @property
    def num_rows(self) -> int:
        return self.statistics.rows

    def counts(self, column: str) -> pd.Series:
        if column not in self.statistics.counts:
            raise KeyError(
                f"the statistics hold no counts of column {column!r} (counted: {sorted(self.statistics.counts)})"
            )
        return self.statistics.counts[column]

    def history_counts(self, column: str) -> pd.Series:
        if self.statistics.history_counts is None:
            raise KeyError(f"the statistics hold no history counts (column {column!r}): collect them with this schema")
        return self.statistics.history_counts

    def numeric_stats(self, columns, log_columns=()) -> dict:
        """What `FrameRows.numeric_stats` gives, from the combined moments."""
        moments = self.statistics.numeric_moments(columns)
        mean, std, log_scale = [], [], []
        for column in columns:
            m = moments[column]
            # nanmin(values, initial=0) >= 0: no value below 0 (a column without values included).
            log = column in log_columns or not (m["min"] < 0)
            mu, sigma = (m["log_mean"], m["log_std"]) if log else (m["mean"], m["std"])
            mean.append(float(np.nan_to_num(mu)))
            std.append(float(np.nan_to_num(sigma, nan=1.0)))
            log_scale.append(log)
        layer = NumericFeatures(mean, std, log_scale)  # the same clipping of tiny deviations as `fit`
        return {"mean": layer.mean, "std": layer.std, "log_scale": layer.log_scale}

    def unique_texts(self, column: str) -> list[str]:
        if column not in self.statistics.texts:
            raise KeyError(f"the statistics hold no texts of column {column!r} (have: {sorted(self.statistics.texts)})")
        return list(self.statistics.texts[column])

    def catalog_texts(self, id_column: str | None, text_column: str) -> pd.Series:
        return pd.Series(list(self.statistics.item_texts.values()), dtype=object)

    def positive_counts(self, id_column: str, click_column: str | None) -> pd.Series:
        if self.statistics.positive_item_counts is None:
            raise KeyError(f"the statistics hold no item popularity (column {id_column!r})")
        return self.statistics.positive_item_counts

    def label_mean(self, column: str) -> float:
        return self.statistics.label_mean(column)

    def sample(self, rows: int) -> pd.DataFrame:
        sample = self.statistics.sample
        if sample is None or not len(sample):
            raise ValueError("the statistics hold no sample rows (collect_statistics(sample_rows=...) > 0)")
        return sample.sample(min(rows, len(sample)), random_state=0)
