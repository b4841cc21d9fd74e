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

Files are streamed by `dataset_from_files` (parquet and CSV; `dataset_from_parquet`
is it for parquet): chunks are validated and turned into numpy batches
in Python (`iter_batches`: no per-row `unbatch`/`batch` in `tf.data`), rows are
shuffled in a bounded pool, and batches are prefetched. Each worker of a
multi-worker strategy reads its own files (`shard_files`, by file: at least as
many files as workers), through `strategy.distribute_datasets_from_function`
and the `tf.distribute.InputContext` it passes.

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

import itertools
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data.chunks import iter_valid_chunks
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
    for _, report in iter_valid_chunks(
        expand_paths(paths), schema, format="parquet", chunk_rows=read_batch_rows, accounting=accounting
    ):
        if report.rows_used:
            yield to_tensors(report.valid, schema, labels=labels)


def shard_files(files: list[str], num_shards: int = 1, shard_index: int = 0) -> list[str]:
    """The files of shard `shard_index` of `num_shards`: every `num_shards`-th file from the `shard_index`-th.

    Shards are disjoint and together hold every file, so workers that each
    read their shard see every row exactly once per pass. Sharding is by
    file, not by row group: a log meant for `n` workers must be written in
    at least `n` files (of similar sizes, or the workers' passes differ in
    length).

    Raises:
        ValueError: fewer files than shards (naming both counts), or an index out of range.
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, num_shards), got shard {shard_index} of {num_shards}")
    if len(files) < num_shards:
        raise ValueError(
            f"{len(files)} file(s) for {num_shards} input shards (workers): every worker reads whole files, "
            f"so write the log in at least {num_shards} files (e.g. one parquet file per day or per hash bucket)"
        )
    return list(files[shard_index::num_shards])


def _concat(parts: list) -> dict:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _take(arrays: dict, index) -> dict:
    return {k: v[index] for k, v in arrays.items()}


def iter_batches(
    files: list[str],
    schema: FeatureSchema,
    *,
    batch_size: int,
    shuffle: bool = True,
    shuffle_buffer: int = 50_000,
    seed: int | Sequence[int] = 0,
    drop_remainder: bool = False,
    read_batch_rows: int = 16_384,
    cycle_length: int = 4,
    labels: bool = True,
    accounting: RowAccounting | None = None,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
) -> Iterator[tuple[dict, dict]]:
    """`(features, labels)` numpy batches of `batch_size` rows of the files' valid rows, one pass.

    Chunks of `read_batch_rows` rows are read round-robin from `cycle_length`
    files at a time and converted to arrays per chunk (no per-row work in
    `tf.data`). With `shuffle` the files come in a seeded order and the rows
    wait in a pool of `shuffle_buffer` rows: after each chunk the pool is
    permuted and the rows beyond `shuffle_buffer` leave it as whole batches
    (memory: the pool plus one chunk per open file). Without `shuffle` the
    files are read one after the other and the rows come in file order.
    """
    rng = np.random.default_rng(seed)
    order = list(files)
    if shuffle:
        order = [order[i] for i in rng.permutation(len(order))]
    keep = max(int(shuffle_buffer), 0) if shuffle else 0

    def chunks(path):
        for _, report in iter_valid_chunks(
            [path],
            schema,
            format=format,
            csv_encoding=csv_encoding,
            csv_delimiter=csv_delimiter,
            chunk_rows=read_batch_rows,
            accounting=accounting,
        ):
            if report.rows_used:
                yield to_tensors(report.valid, schema, labels=labels)

    pending = iter(order)
    open_files = [chunks(p) for p in itertools.islice(pending, max(1, cycle_length) if shuffle else 1)]
    pool: list = []
    rows = 0
    while open_files:
        for reader in list(open_files):
            chunk = next(reader, None)
            if chunk is None:  # this file is done: open the next one in its place
                open_files.remove(reader)
                path = next(pending, None)
                if path is not None:
                    open_files.append(chunks(path))
                continue
            pool.append(chunk)
            rows += len(chunk[0][next(iter(chunk[0]))])
            if rows - keep < batch_size:
                continue
            features, label_arrays = _concat([p[0] for p in pool]), _concat([p[1] for p in pool]) if labels else {}
            if shuffle:
                perm = rng.permutation(rows)
                features, label_arrays = _take(features, perm), _take(label_arrays, perm)
            out = (rows - keep) // batch_size * batch_size
            for start in range(0, out, batch_size):
                part = slice(start, start + batch_size)
                yield _take(features, part), _take(label_arrays, part)
            pool = [(_take(features, slice(out, None)), _take(label_arrays, slice(out, None)))]
            rows -= out
    if rows:
        features, label_arrays = _concat([p[0] for p in pool]), _concat([p[1] for p in pool]) if labels else {}
        if shuffle:
            perm = rng.permutation(rows)
            features, label_arrays = _take(features, perm), _take(label_arrays, perm)
        end = rows if not drop_remainder else rows // batch_size * batch_size
        for start in range(0, end, batch_size):
            part = slice(start, min(start + batch_size, end))
            yield _take(features, part), _take(label_arrays, part)


def dataset_from_files(
    paths,
    schema: FeatureSchema,
    *,
    batch_size: int = 256,
    shuffle: bool = True,
    shuffle_buffer: int = 50_000,
    seed: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    read_batch_rows: int = 16_384,
    cycle_length: int = 4,
    labels: bool = True,
    accounting: RowAccounting | None = None,
    input_context: tf.distribute.InputContext | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
) -> tf.data.Dataset:
    """A batched dataset streamed from parquet or CSV files (paths, globs, folders), one worker's shard of them.

    Batches are made in numpy per chunk (`iter_batches`) and enter
    `tf.data` whole, prefetched. Memory is bounded by `shuffle_buffer` and
    `cycle_length` chunks of `read_batch_rows` rows, not by the files.

    Sharding: with `input_context` (what `strategy.distribute_datasets_from_function`
    passes) the batch is the per-replica batch of the global `batch_size`
    (`input_context.get_per_replica_batch_size`) and this input pipeline reads
    file shard `input_pipeline_id` of `num_input_pipelines`; without it,
    shard `shard_index` of `num_shards` (`shard_files`: disjoint, covering
    every file; fewer files than shards is an error). Each shard shuffles
    with its own seed. With `repeat` every pass reshuffles (seed, pass).

    `accounting` is filled as the files are read (complete after one pass).

    Example:

    ```python
    def per_worker(ctx):
        return dataset_from_files("logs/*.parquet", schema, batch_size=1024, repeat=True,
                                  drop_remainder=True, input_context=ctx)
    batches = strategy.distribute_datasets_from_function(per_worker)
    ```
    """
    files = expand_data_paths(paths) if format != "parquet" else expand_paths(paths)
    if input_context is not None:
        num_shards, shard_index = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    files = shard_files(files, num_shards, shard_index)
    with_labels = labels and bool(label_spec(schema))
    features_spec = {
        k: tf.TensorSpec([batch_size if drop_remainder else None, *v.shape[1:]], v.dtype)
        for k, v in feature_spec(schema).items()
    }
    labels_spec = {
        k: tf.TensorSpec([batch_size if drop_remainder else None], v.dtype) for k, v in label_spec(schema).items()
    }
    signature = (features_spec, labels_spec) if with_labels else features_spec
    passes = itertools.count()

    def generator():
        pass_index = next(passes) if repeat or shuffle else 0
        while True:
            for features, label_arrays in iter_batches(
                files,
                schema,
                batch_size=batch_size,
                shuffle=shuffle,
                shuffle_buffer=shuffle_buffer,
                seed=[seed, shard_index, pass_index],
                drop_remainder=drop_remainder,
                read_batch_rows=read_batch_rows,
                cycle_length=cycle_length,
                labels=with_labels,
                accounting=accounting,
                format=format,
                csv_encoding=csv_encoding,
                csv_delimiter=csv_delimiter,
            ):
                yield (features, label_arrays) if with_labels else features
            if not repeat:
                return
            pass_index += 1

    ds = tf.data.Dataset.from_generator(generator, output_signature=signature)
    # Enough batches ahead to cover reading the next chunk.
    ahead = max(2, -(-read_batch_rows // batch_size) + 2)
    return ds.prefetch(ahead)


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
    input_context: tf.distribute.InputContext | None = None,
    num_shards: int = 1,
    shard_index: int = 0,
) -> tf.data.Dataset:
    """A batched dataset streamed from parquet files (paths, globs, folders): `dataset_from_files` of them.

    Memory is bounded by `read_batch_rows` and `shuffle_buffer`, not by the
    file size. `accounting` is filled as the files are read, so it is
    complete once one pass over the dataset has finished. `input_context`,
    or `num_shards` and `shard_index`, give this worker its shard of the
    files (see `dataset_from_files`).
    """
    return dataset_from_files(
        expand_paths(paths),
        schema,
        batch_size=batch_size,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        seed=seed,
        repeat=repeat,
        drop_remainder=drop_remainder,
        read_batch_rows=read_batch_rows,
        cycle_length=4,
        labels=labels,
        accounting=accounting,
        input_context=input_context,
        num_shards=num_shards,
        shard_index=shard_index,
        format="parquet",
    )
