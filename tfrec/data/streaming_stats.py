"""One streaming pass over files: everything a model is built from, with memory bounded by the vocabularies.

`collect_statistics(paths, schema)` reads sharded parquet or CSV files one
validated chunk at a time (`tfrec.data.chunks.iter_valid_chunks`) and keeps,
for the rows that pass validation:

* value counts of every id and categorical column, of the history's ids and
  of the item ids of clicked rows (the logQ popularity; all rows without a
  click label): `vocabulary(column, max_size)` orders them as
  `build_model` does from a DataFrame (most frequent first, ties by id, `""`
  left out, the first `max_size`);
* per numeric column the count, mean and sum of squared deviations of the
  raw values and of `log1p(max(x, 0))`, combined chunk by chunk with the
  pairwise update of Chan, Golub and LeVeque (exact up to float rounding),
  and the smallest value (a column without negative values is log-scaled,
  as `build_model` decides): `numeric_moments(columns)`;
* the distinct query and item texts in order of first appearance (the
  corpus of a from-scratch WordPiece vocabulary and of a bag-of-words title
  vocabulary) and the first text of each item id (the lexical IDF's
  catalog), each at most `max_texts`; beyond that the first `max_texts`
  are a sample (`texts_truncated` says which);
* the sum and count of every label, and a uniform sample of `sample_rows`
  valid rows (reservoir sampling), for the heads a pretrained encoder starts.

Memory grows with the distinct ids, categories and texts (capped), never
with the rows. `tfrec.models.build_model(schema, config, statistics=stats)`
builds from them the model that the whole table would give: the same
vocabularies in the same order and the same numeric statistics to float
tolerance (`tests/test_streaming.py`).

Example:

```python
stats = collect_statistics("logs/*.parquet", schema)
stats.rows, stats.accounting.summary()
stats.vocabulary("item_id", max_size=100_000)[:3]     # most frequent first, ties by id
stats.numeric_moments(["item_price"])["item_price"]   # count, mean, std, log_mean, log_std, min
stats = TableStatistics.from_frame(train_df, schema)  # the same from validated rows in memory
```
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from tfrec.data.chunks import CHUNK_ROWS, iter_valid_chunks
from tfrec.data.validation import RowAccounting
from tfrec.schema import FeatureSchema, Kind, Role

#: Most distinct texts kept per text column (and item ids with their first text).
MAX_TEXTS = 500_000
#: Rows of the uniform sample of valid rows.
SAMPLE_ROWS = 1_024
#: Pending chunk counts are merged into the totals once they hold this many entries (or as many as the totals).
_MERGE_ENTRIES = 1_000_000
_LABEL_ROLES = (Role.CLICK_LABEL, Role.VALUE_LABEL, Role.RELEVANCE_LABEL)


class ValueCounts:
    """Counts of string values over chunks; memory: the distinct values plus one merge batch.

    Example:

    ```python
    counts = ValueCounts()
    counts.add(["a", "b", "a", ""])   # "" is no value
    counts.result().to_dict()         # {"a": 2, "b": 1}
    ```
    """

    def __init__(self):
        self._total = pd.Series(dtype="int64")
        self._pending: list[pd.Series] = []
        self._pending_entries = 0

    def add(self, values) -> None:
        """Counts `values` (converted to strings; `""` is left out)."""
        values = pd.Series(values, dtype=object).astype(str)
        counts = values[values != ""].value_counts(sort=False)
        if len(counts):
            self.add_counts(counts)

    def add_counts(self, counts: pd.Series) -> None:
        """Adds counts already made (`value -> count`)."""
        self._pending.append(counts.astype("int64"))
        self._pending_entries += len(counts)
        if self._pending_entries >= max(_MERGE_ENTRIES, len(self._total)):
            self._merge()

    def _merge(self) -> None:
        if self._pending:
            parts = [self._total, *self._pending] if len(self._total) else self._pending
            self._total = pd.concat(parts).groupby(level=0, sort=False).sum().astype("int64")
            self._pending, self._pending_entries = [], 0

    def result(self) -> pd.Series:
        """`value -> count` over everything added (int64, in no particular order)."""
        self._merge()
        return self._total

    def __len__(self) -> int:
        return len(self.result())


@dataclasses.dataclass
class Moments:
    """Count, mean and sum of squared deviations of the non-NaN values seen; combined exactly (Chan et al.).

    Example:

    ```python
    m = Moments.of(np.array([1.0, 2.0])).combine(Moments.of(np.array([3.0, np.nan])))
    m.count, m.mean, m.std     # 3, 2.0, 0.816...
    ```
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        if not len(values):
            return cls()
        mean = float(values.mean())
        return cls(len(values), mean, float(np.square(values - mean).sum()))

    def combine(self, other: Moments) -> Moments:
        if not other.count:
            return self
        if not self.count:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, mean, m2)

    @property
    def std(self) -> float:
        """Population standard deviation (`np.nanstd`, ddof 0); NaN without values."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else float("nan")


@dataclasses.dataclass
class NumericMoments:
    """One numeric column: moments of the raw values and of `log1p(max(x, 0))`, and the smallest value."""

    raw: Moments = dataclasses.field(default_factory=Moments)
    log: Moments = dataclasses.field(default_factory=Moments)
    min: float = float("inf")

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        self.raw = self.raw.combine(Moments.of(values))
        self.log = self.log.combine(Moments.of(np.log1p(np.maximum(values, 0))))
        if len(values) and not np.isnan(values).all():
            self.min = min(self.min, float(np.nanmin(values)))

    def summary(self) -> dict[str, float]:
        return {
            "count": self.raw.count,
            "mean": self.raw.mean if self.raw.count else float("nan"),
            "std": self.raw.std,
            "log_mean": self.log.mean if self.log.count else float("nan"),
            "log_std": self.log.std,
            "min": self.min if self.raw.count else float("nan"),
        }


class _OrderedFirst:
    """Keys in order of first appearance with their first value, at most `limit` keys."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.items: dict[str, str] = {}
        self.truncated = False

    def add(self, keys, values=None) -> None:
        if self.truncated:
            return
        values = keys if values is None else values
        for key, value in zip(keys, values):
            if key not in self.items:
                if len(self.items) >= self.limit:
                    self.truncated = True
                    return
                self.items[key] = value


class _Reservoir:
    """A uniform sample of at most `size` rows of all the frames added (smallest random keys kept)."""

    def __init__(self, size: int, seed: int):
        self.size = int(size)
        self.rng = np.random.default_rng(seed)
        self.rows: pd.DataFrame | None = None
        self.keys = np.zeros(0)

    def add(self, frame: pd.DataFrame) -> None:
        if not self.size or not len(frame):
            return
        keys = self.rng.random(len(frame))
        if self.rows is not None and len(self.keys) >= self.size:
            keep = keys < self.keys.max()
            frame, keys = frame[keep], keys[keep]
            if not len(frame):
                return
        rows = frame if self.rows is None else pd.concat([self.rows, frame], ignore_index=True)
        keys = keys if self.rows is None else np.concatenate([self.keys, keys])
        order = np.argsort(keys, kind="stable")[: self.size]
        self.rows, self.keys = rows.iloc[order].reset_index(drop=True), keys[order]


@dataclasses.dataclass
class TableStatistics:
    """What one pass over the training rows gives the model builder (see the module docstring).

    Attributes:
        schema: the schema the rows were validated with.
        rows: valid rows seen.
        accounting: rows read, used and rejected by reason; files read.
        file_rows: valid rows of each file (in the order read).
        counts: `column -> (value -> count)` of every id and categorical column.
        history_counts: counts of the ids in the history lists (None without a history).
        positive_item_counts: item id counts of the clicked rows (every row without a click label).
        numeric: `column -> NumericMoments` of the user and item numeric columns (price included).
        texts: `column -> distinct texts in order of first appearance` of the query and item text.
        item_texts: `item id -> its first text` in order of first appearance (the item text without an item id).
        texts_truncated: the text columns (and `"item_texts"`) that had more than `max_texts` distinct values.
        label_sums: `column -> (sum, count)` of the non-NaN values of each label.
        sample: a uniform sample of valid rows (at most `sample_rows`).
    """

    schema: FeatureSchema
    rows: int = 0
    accounting: RowAccounting = dataclasses.field(default_factory=RowAccounting)
    file_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    counts: dict[str, pd.Series] = dataclasses.field(default_factory=dict)
    history_counts: pd.Series | None = None
    positive_item_counts: pd.Series | None = None
    numeric: dict[str, NumericMoments] = dataclasses.field(default_factory=dict)
    texts: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    item_texts: dict[str, str] = dataclasses.field(default_factory=dict)
    texts_truncated: list[str] = dataclasses.field(default_factory=list)
    label_sums: dict[str, tuple[float, int]] = dataclasses.field(default_factory=dict)
    sample: pd.DataFrame | None = None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, schema: FeatureSchema, **kwargs) -> TableStatistics:
        """The statistics of validated rows already in memory (`validate(...).valid`), as one chunk."""
        builder = StatisticsBuilder(schema, **kwargs)
        builder.add(frame)
        return builder.result()

    def vocabulary(self, column: str, max_size: int | None = None) -> list[str]:
        """The ids of `column`, most frequent first, ties broken by id; at most `max_size`."""
        if column not in self.counts:
            raise KeyError(f"no counts of column {column!r}; counted: {sorted(self.counts)}")
        return ordered_by_count(self.counts[column])[:max_size]

    def numeric_moments(self, columns: Iterable[str]) -> dict[str, dict[str, float]]:
        """`column -> {count, mean, std, log_mean, log_std, min}` (population std; NaN where no value)."""
        out = {}
        for column in columns:
            if column not in self.numeric:
                raise KeyError(f"no statistics of numeric column {column!r}; have: {sorted(self.numeric)}")
            out[column] = self.numeric[column].summary()
        return out

    def label_mean(self, column: str) -> float:
        """The mean of a label over the rows where it is not NaN (NaN without any)."""
        if column not in self.label_sums:
            raise KeyError(f"no sums of label {column!r}; have: {sorted(self.label_sums)}")
        total, count = self.label_sums[column]
        return total / count if count else float("nan")


def ordered_by_count(counts: pd.Series) -> list[str]:
    """The values of `value -> count`, most frequent first, ties broken by value (the model builder's order)."""
    order = sorted(zip(-counts.to_numpy(), counts.index.to_list()))
    return [v for _, v in order]


class StatisticsBuilder:
    """Accumulates `TableStatistics` chunk by chunk: `add(valid_rows)` for each chunk, then `result()`.

    Args:
        schema: the schema the chunks were validated with.
        max_texts: most distinct texts kept per text column (and items with their first text).
        sample_rows: rows of the uniform sample (0 = none).
        seed: seed of the sample.
    """

    def __init__(self, schema: FeatureSchema, *, max_texts: int = MAX_TEXTS, sample_rows: int = SAMPLE_ROWS, seed=0):
        if max_texts < 1:
            raise ValueError(f"max_texts must be >= 1, got {max_texts}")
        if sample_rows < 0:
            raise ValueError(f"sample_rows must be >= 0, got {sample_rows}")
        self.schema = schema
        self.rows = 0
        kinds = {spec.name: spec.kind for spec in schema.columns()}
        self._count_columns = [c for c, k in kinds.items() if k in (Kind.ID, Kind.CATEGORICAL)]
        self._counts = {c: ValueCounts() for c in self._count_columns}
        self._history = ValueCounts() if schema.user_history else None
        self._positives = ValueCounts() if schema.item_id else None
        numeric = list(schema.user_numeric) + ([schema.item_price] if schema.item_price else [])
        numeric += list(schema.item_numeric)
        self._numeric = {c: NumericMoments() for c in dict.fromkeys(numeric)}
        self._text_columns = [c for c in (schema.query_text, schema.item_text) if c]
        self._texts = {c: _OrderedFirst(max_texts) for c in self._text_columns}
        self._item_texts = _OrderedFirst(max_texts) if schema.item_text else None
        self._labels = {getattr(schema, r.value): [0.0, 0] for r in _LABEL_ROLES if getattr(schema, r.value)}
        self._sample = _Reservoir(sample_rows, seed)

    def add(self, valid: pd.DataFrame) -> None:
        """Adds one chunk of validated rows (`validate(chunk, schema).valid`)."""
        if not len(valid):
            return
        s = self.schema
        self.rows += len(valid)
        for column in self._count_columns:
            self._counts[column].add(valid[column])
        if self._history is not None:
            lists = valid[s.user_history]
            self._history.add(list(itertools.chain.from_iterable(h for h in lists if h is not None)))
        if self._positives is not None:
            positives = valid[valid[s.click_label] > 0] if s.click_label else valid
            self._positives.add(positives[s.item_id])
        for column, moments in self._numeric.items():
            moments.add(valid[column].to_numpy(dtype=np.float64, na_value=np.nan))
        for column, first in self._texts.items():
            first.add(pd.unique(valid[column].astype(str)).tolist())
        if self._item_texts is not None:
            key = s.item_id or s.item_text
            items = valid.drop_duplicates(key)
            self._item_texts.add(items[key].astype(str).tolist(), items[s.item_text].fillna("").astype(str).tolist())
        for column, sums in self._labels.items():
            values = valid[column].to_numpy(dtype=np.float64, na_value=np.nan)
            sums[0] += float(np.nansum(values))
            sums[1] += int((~np.isnan(values)).sum())
        self._sample.add(valid)

    def result(self, accounting: RowAccounting | None = None, file_rows=None) -> TableStatistics:
        truncated = [c for c, first in self._texts.items() if first.truncated]
        if self._item_texts is not None and self._item_texts.truncated:
            truncated.append("item_texts")
        return TableStatistics(
            schema=self.schema,
            rows=self.rows,
            accounting=accounting if accounting is not None else RowAccounting(self.rows, self.rows),
            file_rows=dict(file_rows or {}),
            counts={c: counts.result() for c, counts in self._counts.items()},
            history_counts=self._history.result() if self._history is not None else None,
            positive_item_counts=self._positives.result() if self._positives is not None else None,
            numeric=self._numeric,
            texts={c: list(first.items) for c, first in self._texts.items()},
            item_texts=dict(self._item_texts.items) if self._item_texts is not None else {},
            texts_truncated=truncated,
            label_sums={c: (float(total), int(count)) for c, (total, count) in self._labels.items()},
            sample=self._sample.rows,
        )


def collect_statistics(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    schema: FeatureSchema,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
    chunk_rows: int = CHUNK_ROWS,
    max_texts: int = MAX_TEXTS,
    sample_rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> TableStatistics:
    """One pass over the files (paths, globs, folders; parquet or CSV): the `TableStatistics` of their valid rows.

    Raises:
        SchemaValidationError: a file lacks a schema column (the message names both).
        DataFileError: a file cannot be read, or no row of any file is valid.
    """
    from tfrec.data.readers import NoDataRowsError

    accounting = RowAccounting()
    builder = StatisticsBuilder(schema, max_texts=max_texts, sample_rows=sample_rows, seed=seed)
    file_rows: dict[str, int] = {}
    for path, report in iter_valid_chunks(
        paths,
        schema,
        format=format,
        csv_encoding=csv_encoding,
        csv_delimiter=csv_delimiter,
        chunk_rows=chunk_rows,
        accounting=accounting,
    ):
        file_rows[path] = file_rows.get(path, 0) + report.rows_used
        builder.add(report.valid)
    if not builder.rows:
        raise NoDataRowsError(
            f"no valid rows in {len(file_rows) or accounting.files_read} file(s): {accounting.summary()}"
        )
    return builder.result(accounting, file_rows)
