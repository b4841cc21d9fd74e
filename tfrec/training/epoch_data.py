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

Example:

```python
batches = EpochBatches.from_dataframe(train_df, schema, global_batch_size=1024, seed=0)
for x, y in batches.dataset(epoch=2, skip=17):
    ...
```
"""

from __future__ import annotations

import tensorflow as tf

from tfrec.data.pipeline import to_tensors
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
