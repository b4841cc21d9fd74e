"""tf.data input pipelines from DataFrames and from parquet files.

Every pipeline validates rows against the schema first and keeps count:
`RowAccounting` holds rows read, used and rejected by reason, and
`rows_read == rows_used + rows_rejected` always holds. Parquet files are
streamed one record batch at a time (pyarrow `iter_batches`), so files larger
than memory work.

Elements are `(features, labels)`: `features` maps each feature column name of
the schema to a batched tensor (strings for ids, text and categoricals,
float32 for numerics, a `[batch, history_length]` string tensor for the
history, left-padded with `""`), and `labels` maps `"click"`, `"value"` and
`"relevance"` (those the schema has) to float32 tensors. The schema's
`sample_weight` and `propensity` columns travel with the labels too, as
`labels["sample_weight"]` and `labels["propensity"]` (float32), never as
features: the task losses weight each row by them (`tfrec.tasks.task.sample_weight`).
A schema without them yields exactly the elements it did before (no weight key:
every row weighs 1).

Example:

```python
accounting = RowAccounting()
ds = dataset_from_parquet("logs/*.parquet", schema, batch_size=512,
                          seed=7, accounting=accounting)
model.fit(ds)
print(accounting.summary())
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data.readers import PARQUET_SUFFIXES, DataFileError, expand_data_paths
from tfrec.data.validation import RowAccounting, validate
from tfrec.schema import FeatureSchema, Kind, Role

LABEL_KEYS = {
    Role.CLICK_LABEL: "click",
    Role.VALUE_LABEL: "value",
    Role.RELEVANCE_LABEL: "relevance",
}
#: Keys of the per-row loss weights in the labels dict.
SAMPLE_WEIGHT_KEY = "sample_weight"
PROPENSITY_KEY = "propensity"
WEIGHT_KEYS = {
    Role.SAMPLE_WEIGHT: SAMPLE_WEIGHT_KEY,
    Role.PROPENSITY: PROPENSITY_KEY,
}
_NOT_FEATURES = (*LABEL_KEYS, *WEIGHT_KEYS, Role.EVENT_TIME)


def pad_history(lists: Iterable, length: int | None = None) -> np.ndarray:
    """`[rows, length]` ids as strings: each list's last `length` ids, left-padded with "".

    None or NaN is an empty history; `length=None` is the longest list's
    length (at least 1). `fit_history` does the same to a batch in the graph.
    """
    lists = [[] if v is None or (isinstance(v, float) and np.isnan(v)) else list(v) for v in lists]
    if length is None:
        length = max([1, *map(len, lists)])
    out = np.full((len(lists), length), "", dtype=object)
    for i, items in enumerate(lists):
        items = items[len(items) - length :] if len(items) > length else items
        if items:
            out[i, length - len(items) :] = [x if isinstance(x, str) else str(x) for x in items]
    return out


def fit_history(features: dict, schema: FeatureSchema) -> dict:
    """`features` with the `[batch, n]` history tensor cut or left-padded with "" to `history_length` (latest kept).

    The graph version of `pad_history`, for requests whose history has any width.
    """
    name = schema.user_history
    if not name or name not in features:
        return features
    features = dict(features)
    length = schema.history_length
    history = features[name]
    pad = tf.fill([tf.shape(history)[0], length], "")
    features[name] = tf.concat([pad, history], axis=1)[:, -length:]
    return features


def feature_spec(schema: FeatureSchema) -> dict[str, tf.TensorSpec]:
    spec = {}
    for col in schema.columns():
        if col.role in _NOT_FEATURES:
            continue
        if col.kind == Kind.ID_LIST:
            spec[col.name] = tf.TensorSpec([None, schema.history_length], tf.string)
        elif col.kind in (Kind.TEXT, Kind.ID, Kind.CATEGORICAL):
            spec[col.name] = tf.TensorSpec([None], tf.string)
        else:
            spec[col.name] = tf.TensorSpec([None], tf.float32)
    return spec


def label_spec(schema: FeatureSchema) -> dict[str, tf.TensorSpec]:
    """Specs of the labels dict: the schema's labels, then its loss weights (`WEIGHT_KEYS`)."""
    keys = {**LABEL_KEYS, **WEIGHT_KEYS}
    return {key: tf.TensorSpec([None], tf.float32) for role, key in keys.items() if schema.has(role)}


def to_tensors(
    df: pd.DataFrame, schema: FeatureSchema, *, labels: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Converts validated rows to the numpy arrays the pipeline feeds.

    `df` must be the `valid` frame of a `ValidationReport` (typed columns).
    With `labels`, the second dict holds the labels and the loss weights
    (`sample_weight`, `propensity`) the schema has.
    """
    features = {}
    for col in schema.columns():
        if col.role in _NOT_FEATURES:
            continue
        values = df[col.name]
        if col.kind == Kind.ID_LIST:
            features[col.name] = pad_history(values, schema.history_length)
        elif col.kind in (Kind.TEXT, Kind.ID, Kind.CATEGORICAL):
            features[col.name] = values.to_numpy(dtype=object)
        else:
            features[col.name] = values.to_numpy(dtype=np.float32, na_value=np.nan)
    label_arrays = {}
    if labels:
        for role, key in {**LABEL_KEYS, **WEIGHT_KEYS}.items():
            name = getattr(schema, role.value)
            if name:
                label_arrays[key] = df[name].to_numpy(dtype=np.float32)
    return features, label_arrays


def _finish(ds, *, batch_size, shuffle, shuffle_buffer, seed, repeat, drop_remainder):
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def dataset_from_dataframe(
    df: pd.DataFrame,
    schema: FeatureSchema,
    *,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    labels: bool = True,
    accounting: RowAccounting | None = None,
) -> tf.data.Dataset:
    """A batched `tf.data.Dataset` of validated rows of `df`.

    Rows that fail validation are counted in `accounting` (by reason) and left
    out; a table-level problem raises `SchemaValidationError`.
    """
    report = validate(df, schema, source="DataFrame")
    if accounting is not None:
        accounting.add(report)
    features, label_arrays = to_tensors(report.valid, schema, labels=labels)
    element = (features, label_arrays) if labels and label_arrays else features
    ds = tf.data.Dataset.from_tensor_slices(element)
    return _finish(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        shuffle_buffer=max(1, min(len(report.valid), 100_000)),
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
    )


def expand_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Files named by paths, globs or folders (their parquet files); see `expand_data_paths`.

    Raises:
        FileNotFoundError: an argument matches no file.
    """
    try:
        return expand_data_paths(paths, suffixes=PARQUET_SUFFIXES)
    except DataFileError as e:
        raise FileNotFoundError(str(e)) from None


def iter_parquet_chunks(
    paths,
    schema: FeatureSchema,
    *,
    read_batch_rows: int = 65_536,
    accounting: RowAccounting | None = None,
    labels: bool = True,
) -> Iterator[tuple[dict, dict]]:
    """Streams validated `(features, labels)` chunks, one record batch at a time."""
    import pyarrow.parquet as pq

    columns = schema.column_names()
    for path in expand_paths(paths):
        pf = pq.ParquetFile(path)
        present = set(pf.schema_arrow.names)
        read_cols = [c for c in columns if c in present]
        for batch in pf.iter_batches(batch_size=read_batch_rows, columns=read_cols):
            chunk = batch.to_pandas()
            report = validate(chunk, schema, source=path)
            if accounting is not None:
                accounting.add(report)
            if report.rows_used:
                yield to_tensors(report.valid, schema, labels=labels)


def dataset_from_parquet(
    paths,
    schema: FeatureSchema,
    *,
    batch_size: int = 256,
    shuffle: bool = True,
    shuffle_buffer: int = 50_000,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    read_batch_rows: int = 65_536,
    labels: bool = True,
    accounting: RowAccounting | None = None,
) -> tf.data.Dataset:
    """A batched dataset streamed from parquet files (paths, globs, folders).

    Memory is bounded by `read_batch_rows` and `shuffle_buffer`, not by the
    file size. `accounting` is filled as the files are read, so it is
    complete once one pass over the dataset has finished.
    """
    files = expand_paths(paths)
    with_labels = labels and bool(label_spec(schema))
    signature = (feature_spec(schema), label_spec(schema)) if with_labels else feature_spec(schema)

    def generator():
        for features, label_arrays in iter_parquet_chunks(
            files,
            schema,
            read_batch_rows=read_batch_rows,
            accounting=accounting,
            labels=with_labels,
        ):
            yield (features, label_arrays) if with_labels else features

    ds = tf.data.Dataset.from_generator(generator, output_signature=signature)
    ds = ds.unbatch()
    return _finish(
        ds,
        batch_size=batch_size,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
    )
