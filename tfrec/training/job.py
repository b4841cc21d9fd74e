"""`train_model`: the training step of a job, from tables to a trained model.

Chooses the strategy, builds the model under it, trains it with the
resumable `Trainer` and returns a copy of the trained model that lives
outside the strategy (for evaluation and export), plus the history.

`train_streaming` does the same from files larger than memory: one
streaming pass for the statistics (`tfrec.data.streaming_stats`), the model
built from them, then training on batches streamed from the files, each
worker reading its own shard (`StreamBatches`).

Example:

```python
model, history = train_model(config, schema, split.train, split.valid, run_dir="runs/x")
history.history["val_loss"]
model, history = train_streaming(config, schema, ["logs/part-*.parquet"], run_dir="runs/y", steps=2000)
```
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile

import keras
import tensorflow as tf

from tfrec.data.split import holdout_mask
from tfrec.training.epoch_data import EpochBatches, StreamBatches
from tfrec.training.strategy import choose_strategy
from tfrec.training.trainer import Trainer


class History:
    """Per-epoch metrics: `rows` (a list of dicts) and `history` (`{metric: [per epoch]}`, like Keras's)."""

    def __init__(self, rows):
        self.rows = list(rows)
        keys = []
        for row in self.rows:
            keys += [k for k in row if k not in keys]
        self.history = {k: [row.get(k) for row in self.rows] for k in keys}


def value_label_mask(user_column, fraction):
    """A batch transform hiding the value label (NaN) of a stable share of users.

    The value head is then judged on users whose labels training never saw
    (`tfrec.data.split.holdout_mask`).
    """

    def fn(features, labels):
        held = holdout_mask(features[user_column], fraction)
        labels = dict(labels)
        labels["value"] = tf.where(held, tf.constant(float("nan"), tf.float32), labels["value"])
        return features, labels

    return fn


def starts_from_encoder(model) -> bool:
    """Whether the towers start from a pretrained encoder's vectors (`Tower.text_share`)."""
    towers = [getattr(model, name, None) for name in ("query_tower", "item_tower")]
    return any(getattr(t, "text_share_logit", None) is not None for t in towers)


def train_model(config, schema, train_df, valid_df=None, run_dir=None, strategy=None, epoch_metrics=None):
    """Builds and trains the model of `config` (a `JobConfig`) on `train_df`.

    Returns `(model, history)`; `model` is None on non-chief workers of a
    multi-worker job (they train, the chief writes). With `run_dir` the run
    directory gets `model.keras`, `best.weights.h5`, `history.csv`,
    `training_state.json`, `checkpoints/`, `backup/` and `tensorboard/`, and a
    job restarted on the same `run_dir` resumes from its backup.
    `epoch_metrics(model) -> {name: value}` adds validation metrics to every
    epoch (e.g. `ndcg@10`, which `training.monitor: val_ndcg@10` then keeps
    the best of); a model that starts from a pretrained encoder is validated
    before its first step too. With `training.init_from` the model starts
    from a previous run's weights (`tfrec.training.warm_start`: vocabularies
    grow, known ids keep their rows); a run that resumes from its backup
    takes the weights from the backup instead.
    """
    from tfrec.models.builder import build_model
    from tfrec.models.text_cache import cache_table_texts, copy_text_cache

    training = config.training
    with _training_session(training, run_dir, strategy) as (run_dir, warm, strategy):
        with strategy.scope():
            model = build_model(schema, config.model, train_df, previous=warm.previous if warm else None)
            if warm is not None:
                warm.start(model)  # before the text cache: a frozen encoder's vectors come from these weights
        cache_table_texts(model, train_df, valid_df, verbose=training.verbose > 0)
        trainer = Trainer(model, training, run_dir, strategy=strategy)
        transform = _value_holdout(schema, training)
        batch = trainer.global_batch_size
        train = EpochBatches.from_dataframe(
            train_df, schema, batch, seed=training.seed, shuffle_buffer=training.shuffle_buffer, transform=transform
        )
        valid = None
        if valid_df is not None and len(valid_df) >= batch:
            valid = EpochBatches.from_dataframe(valid_df, schema, batch, shuffle=False, transform=transform)
        rows = trainer.fit(
            train,
            valid,
            epoch_metrics=epoch_metrics,
            validate_start=starts_from_encoder(model),
            on_fresh_start=warm.on_fresh_start if warm is not None else None,
        )
        trained = trainer.finalize()
        if trained is not None:
            copy_text_cache(model, trained)
        return trained, History(rows)


@contextlib.contextmanager
def _training_session(training, run_dir, strategy):
    """`(run_dir, warm start or None, strategy)` for one training run; restores the float32 policy after it.

    Without `run_dir`, a scratch directory removed afterwards. The previous
    model of a warm start loads before the seed is set, so the seed makes the
    same fresh rows as a run without one.
    """
    scratch = None
    if run_dir is None:
        scratch = run_dir = tempfile.mkdtemp(prefix="tfrec-train-")
    try:
        warm = None
        if training.init_from:
            from tfrec.training.warm_start import WarmStart

            warm = WarmStart(training, run_dir)
        keras.utils.set_random_seed(training.seed)
        if training.mixed_precision != "off":
            keras.mixed_precision.set_global_policy(training.mixed_precision)
        yield run_dir, warm, strategy or choose_strategy(training.strategy)
    finally:
        if training.mixed_precision != "off":
            keras.mixed_precision.set_global_policy("float32")
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _value_holdout(schema, training):
    """The batch transform that hides the value label of held-out users (`value_label_mask`), or None."""
    if schema.value_label and schema.user_id and training.value_holdout_fraction > 0:
        return value_label_mask(schema.user_id, training.value_holdout_fraction)
    return None


def _parquet_rows(paths) -> int:
    """Rows of parquet files from their footers (no data read)."""
    import pyarrow.parquet as pq

    from tfrec.data.readers import expand_data_paths, file_format

    total = 0
    for path in expand_data_paths(paths):
        if file_format(path) != "parquet":
            raise ValueError(f"validation file {path!r} is not parquet: give valid_steps (its row count is unknown)")
        total += pq.ParquetFile(path).metadata.num_rows
    return total


def train_streaming(
    config,
    schema,
    paths,
    *,
    statistics=None,
    valid_paths=None,
    valid_steps: int | None = None,
    steps: int | None = None,
    run_dir=None,
    strategy=None,
    epoch_metrics=None,
):
    """Builds and trains the model of `config` (a `JobConfig`) from files streamed through `tf.data`.

    Memory stays bounded by the vocabularies, the shuffle buffer and a few
    chunks, whatever the files' size:

    1. `statistics` (default: `collect_statistics(paths, schema)`, one pass
       reading `config.data.format`, `csv_encoding` and `csv_delimiter`) give
       the vocabularies, numeric statistics and texts `build_model` needs;
       the model equals the one the whole table would give.
    2. Training streams the files (`StreamBatches`): under a multi-worker
       strategy each worker reads its shard of the files (at least one file
       per worker). `steps` trains one epoch of that many steps; otherwise
       `config.training.epochs` epochs of `rows // global batch` steps.
    3. `valid_paths` (optional) are streamed in order for the validation
       losses, `valid_steps` batches (default: the parquet files' rows over
       the global batch).

    `tfrec train` does not stream: its files job (`tfrec.jobs.files`) reads
    every file into one frame because the shapes need the whole table: a
    time split sorts all rows by time, interactions get each user's earlier
    items as their history and CTR negatives by training popularity,
    transactions aggregate each customer's rows, and evaluation scores the
    test split against the item catalog held in memory. Train from files
    already prepared (one row per training example, split beforehand) with
    this function.

    What `train_model` does beside this and the stream does not: a frozen
    encoder's text cache (`cache_frozen`) needs the tables' texts in memory
    and is not built (each batch is encoded); warm starts (`init_from`)
    work as in `train_model`. Returns `(model, history)` as `train_model`.
    """
    from tfrec.data.streaming_stats import collect_statistics
    from tfrec.models.builder import build_model

    training = config.training
    data = config.data
    read = {"format": data.format, "csv_encoding": data.csv_encoding, "csv_delimiter": data.csv_delimiter}
    if statistics is None:
        statistics = collect_statistics(paths, schema, **read)
    with _training_session(training, run_dir, strategy) as (run_dir, warm, strategy):
        with strategy.scope():
            model = build_model(schema, config.model, statistics=statistics, previous=warm.previous if warm else None)
            if warm is not None:
                warm.start(model)
        trainer = Trainer(model, training, run_dir, strategy=strategy)
        transform = _value_holdout(schema, training)
        batch = trainer.global_batch_size
        train = StreamBatches(
            paths,
            schema,
            batch,
            rows=statistics.rows,
            steps_per_epoch=steps,
            seed=training.seed,
            shuffle_buffer=training.shuffle_buffer,
            transform=transform,
            **read,
        )
        valid = None
        if valid_paths:
            valid_steps = valid_steps or _parquet_rows(valid_paths) // batch
            if valid_steps >= 1:
                valid = StreamBatches(
                    valid_paths, schema, batch, steps_per_epoch=valid_steps, shuffle=False, transform=transform, **read
                )
        rows = trainer.fit(
            train,
            valid,
            epochs=1 if steps else None,
            epoch_metrics=epoch_metrics,
            validate_start=starts_from_encoder(model),
            on_fresh_start=warm.on_fresh_start if warm is not None else None,
        )
        return trainer.finalize(), History(rows)
