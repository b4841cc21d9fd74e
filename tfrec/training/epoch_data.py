"""Training batches with a reproducible position: epoch `e`, batch `b`.

A resumable job must restart mid-epoch on exactly the batches it had not yet
seen. `EpochBatches` shuffles each epoch with its own seed (`seed + epoch`)
and no reshuffling, so the order of epoch `e` is a pure function of the seed
(and of TensorFlow's global seed, which `train_model` sets from
`training.seed` in every process), and `dataset(epoch, skip=b)` resumes at
batch `b`: the trainer's backup only needs `(epoch, b)`. Keras's
BackupAndRestore only restores the epoch. `tf.data` iterator checkpoints
are no simpler: the `DistributedIterator` that `strategy.experimental_distribute_dataset`
returns is not trackable (tensorflow/tensorflow#56372; true of TF 2.21 for
OneDevice and Mirrored strategies), and a plain iterator's checkpoint would
hold the whole shuffle buffer (up to `shuffle_buffer` rows) in every backup.
Skipping `b` batches of an in-memory table costs little.

Logs larger than memory train from `StreamBatches`: the same interface
(`steps_per_epoch`, `dataset(epoch, skip)`) over files streamed with
`tfrec.data.pipeline.dataset_from_files`, plus `distribute(strategy, epoch,
skip)`, which gives every input pipeline (worker) its own shard of the files
through `strategy.distribute_datasets_from_function`. An epoch is
`steps_per_epoch` steps (by default the valid rows of one streaming pass over
the global batch); each worker's stream repeats, so workers whose shards
differ in length still run the same steps. Epoch `e` streams with seed
`seed + e` and a resumed job skips the batches it had trained on (it reads
them again: a skip costs reading, not training).

Example:

```python
batches = EpochBatches.from_dataframe(train_df, schema, global_batch_size=1024, seed=0)
for x, y in batches.dataset(epoch=2, skip=17):
    ...
stats = collect_statistics("logs/*.parquet", schema)          # tfrec.data.streaming_stats
stream = StreamBatches.from_statistics(stats, global_batch_size=1024, seed=0)
trainer.fit(stream)                                           # tfrec.training.trainer.Trainer
```
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfrec.data.pipeline import dataset_from_files, to_tensors
from tfrec.data.readers import expand_data_paths
from tfrec.data.validation import validate


class EpochBatches:
    """Fixed-size global batches of a table, in a per-epoch seeded order.

    Args:
        tensors: the `(features, labels)` arrays of the rows.
        num_rows: rows in `tensors`.
        global_batch_size: rows per step over all replicas; the last partial
            batch is dropped so every worker runs the same number of steps.
        seed: base seed; epoch `e` is shuffled with `seed + e`.
        shuffle: shuffle (training) or keep the order (validation).
        shuffle_buffer: rows in the shuffle buffer (at most the table).
        transform: optional `fn(features, labels)` mapped over each batch.
    """

    def __init__(
        self, tensors, num_rows, global_batch_size, seed=0, shuffle=True, shuffle_buffer=100_000, transform=None
    ):
        if num_rows < global_batch_size:
            raise ValueError(
                f"{num_rows} rows are fewer than one global batch of {global_batch_size} "
                "(training.batch_size x replicas): lower training.batch_size"
            )
        self._base = tf.data.Dataset.from_tensor_slices(tensors)
        self.num_rows = int(num_rows)
        self.global_batch_size = int(global_batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.shuffle_buffer = max(1, min(int(shuffle_buffer), self.num_rows))
        self.transform = transform

    @classmethod
    def from_dataframe(cls, df, schema, global_batch_size, **kwargs) -> EpochBatches:
        """Validated rows of `df` (rejected rows are left out)."""
        valid = validate(df, schema, source="DataFrame").valid
        features, labels = to_tensors(valid, schema)
        return cls((features, labels), len(valid), global_batch_size, **kwargs)

    @property
    def steps_per_epoch(self) -> int:
        return self.num_rows // self.global_batch_size

    def dataset(self, epoch: int = 0, skip: int = 0) -> tf.data.Dataset:
        """Epoch `epoch`'s batches from batch `skip` on."""
        if not 0 <= skip <= self.steps_per_epoch:
            raise ValueError(f"skip must be in [0, {self.steps_per_epoch}], got {skip}")
        ds = self._base
        if self.shuffle:
            ds = ds.shuffle(self.shuffle_buffer, seed=self.seed + epoch, reshuffle_each_iteration=False)
        ds = ds.batch(self.global_batch_size, drop_remainder=True)
        if skip:
            ds = ds.skip(skip)
        if self.transform is not None:
            ds = ds.map(self.transform, num_parallel_calls=tf.data.AUTOTUNE)
        options = tf.data.Options()
        # Every worker builds the same table; each takes its share of a batch.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        options.deterministic = True
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


class StreamBatches:
    """Fixed-size global batches streamed from files (parquet or CSV), for `Trainer.fit`.

    Args:
        paths: the training files (paths, globs, folders).
        schema: the schema to validate the rows with.
        global_batch_size: rows per step over all replicas.
        rows: valid rows in the files (`TableStatistics.rows`), giving
            `steps_per_epoch = rows // global_batch_size`; or give
            `steps_per_epoch` itself.
        steps_per_epoch: steps per epoch (default from `rows`).
        seed: base seed; epoch `e` streams with `seed + e`.
        shuffle: shuffle files and rows (training) or keep the order (validation).
        shuffle_buffer: rows in each input pipeline's shuffle pool.
        read_batch_rows: rows per chunk read and validated.
        cycle_length: files read round-robin at a time (with `shuffle`).
        transform: optional `fn(features, labels)` mapped over each batch.
        format, csv_encoding, csv_delimiter: how to read the files.
    """

    def __init__(
        self,
        paths,
        schema,
        global_batch_size: int,
        *,
        rows: int | None = None,
        steps_per_epoch: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_buffer: int = 100_000,
        read_batch_rows: int = 16_384,
        cycle_length: int = 4,
        transform=None,
        format: str = "auto",
        csv_encoding: str = "utf-8",
        csv_delimiter: str = ",",
    ):
        self.files = expand_data_paths(paths)
        self.schema = schema
        self.global_batch_size = int(global_batch_size)
        if steps_per_epoch is None:
            if rows is None:
                raise ValueError("StreamBatches: give rows (TableStatistics.rows) or steps_per_epoch")
            steps_per_epoch = int(rows) // self.global_batch_size
            if steps_per_epoch < 1:
                raise ValueError(
                    f"{rows} rows are fewer than one global batch of {self.global_batch_size} "
                    "(training.batch_size x replicas): lower training.batch_size"
                )
        if steps_per_epoch < 1:
            raise ValueError(f"StreamBatches: steps_per_epoch must be >= 1, got {steps_per_epoch}")
        self._steps = int(steps_per_epoch)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.shuffle_buffer = int(shuffle_buffer)
        self.read_batch_rows = int(read_batch_rows)
        self.cycle_length = int(cycle_length)
        self.transform = transform
        self.read_options: dict[str, Any] = {
            "format": format,
            "csv_encoding": csv_encoding,
            "csv_delimiter": csv_delimiter,
        }

    @classmethod
    def from_statistics(cls, statistics, global_batch_size: int, **kwargs) -> StreamBatches:
        """The files and valid rows of a streaming pass (`tfrec.data.streaming_stats.TableStatistics`)."""
        kwargs.setdefault("rows", statistics.rows)
        return cls(list(statistics.file_rows), statistics.schema, global_batch_size, **kwargs)

    @property
    def steps_per_epoch(self) -> int:
        return self._steps

    def dataset(self, epoch: int = 0, skip: int = 0, input_context=None) -> tf.data.Dataset:
        """Epoch `epoch`'s batches from step `skip` on: global batches, or with `input_context` per-replica ones."""
        if not 0 <= skip <= self.steps_per_epoch:
            raise ValueError(f"skip must be in [0, {self.steps_per_epoch}], got {skip}")
        ds = dataset_from_files(
            self.files,
            self.schema,
            batch_size=self.global_batch_size,
            shuffle=self.shuffle,
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed + epoch,
            repeat=True,
            drop_remainder=True,
            read_batch_rows=self.read_batch_rows,
            cycle_length=self.cycle_length,
            input_context=input_context,
            **self.read_options,
        )
        if skip:
            # Each step takes one batch per replica this pipeline feeds.
            per_step = 1
            if input_context is not None:
                per_step = max(1, input_context.num_replicas_in_sync // input_context.num_input_pipelines)
            ds = ds.skip(skip * per_step)
        if self.transform is not None:
            ds = ds.map(self.transform, num_parallel_calls=tf.data.AUTOTUNE)
        options = tf.data.Options()
        # The files are sharded by input pipeline already (dataset_from_files).
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        options.deterministic = True
        return ds.with_options(options)

    def distribute(self, strategy, epoch: int = 0, skip: int = 0):
        """Epoch `epoch` from step `skip` under `strategy`, each input pipeline reading its own files."""
        return strategy.distribute_datasets_from_function(
            lambda input_context: self.dataset(epoch, skip, input_context=input_context)
        )
