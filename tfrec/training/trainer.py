"""`Trainer`: a resumable custom training loop under any `tf.distribute` strategy.

Keras `fit` fails under MultiWorkerMirroredStrategy in Keras 3.15
(keras-team/keras#20585) and its BackupAndRestore restores the epoch but not
the position inside it, so jobs train with this loop under every strategy:
`strategy.run` of a step that calls the model, `TaskModel.weighted_losses`
(the loss path `fit` takes too) and `optimizer.apply`. It adds what a cluster job needs:

* a backup several times per epoch (`checkpoint_every_steps`; by default a
  quarter of an epoch, at most 1,000 steps apart: `backup_interval`) and at
  every epoch end. It holds everything a step depends on: model, optimizer
  (with its step counter), the state of every `keras.random.SeedGenerator` of
  the model (dropout, id dropout: `random_states`), the position in the data
  (epoch and batch; each epoch's order is a function of the seed and the
  epoch, `EpochBatches`), the running sums of the epoch's losses, the best
  metric and early stopping's count. A job killed at any step and restarted
  replays the steps after the last backup exactly as they ran the first time:
  on CPU it ends with the same weights (`weights_fingerprint`) and history as
  a run that was never interrupted (`tests/test_resume.py`);
* end-of-epoch checkpoints (`keep_checkpoints`), the best model by
  `monitor` (`best.weights.h5`; losses lower, ranking metrics such as
  `val_ndcg@10` from `epoch_metrics` higher is better) and early stopping;
* `epoch_metrics`: a function of the model giving more validation metrics
  (e.g. NDCG per query) after every epoch; with `validate_start` it runs on the
  untrained model too (history row epoch 0), which is then the best to beat:
  a model that starts from a pretrained encoder keeps its start unless
  training improves on it;
* progress lines or a progress bar, TensorBoard scalars and `history.csv`;
* in multi-worker jobs only the chief writes: the other workers save to
  temporary directories that they delete (they must still take part, as saving
  reads variables that are synchronised across workers).

Notebook users keep plain `model.compile()` / `model.fit()` on one host.

Example:

```python
strategy = choose_strategy("auto")
with strategy.scope():
    model = build_model(schema, config.model, train_df)
trainer = Trainer(model, config.training, output_dir="runs/x", strategy=strategy)
history = trainer.fit(EpochBatches.from_dataframe(train_df, schema, trainer.global_batch_size),
                      valid=EpochBatches.from_dataframe(valid_df, schema, trainer.global_batch_size,
                                                        shuffle=False))
model = trainer.finalize()   # saves model.keras (chief); a copy outside the strategy
```
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tfrec.console import log as _log
from tfrec.training.cluster import cluster_task
from tfrec.training.optimizer import make_optimizer


def weights_fingerprint(model) -> str:
    """sha256 of the model's trainable weights (the same on every worker)."""
    digest = hashlib.sha256()
    for v in model.trainable_variables:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(v.value)).tobytes())
    return digest.hexdigest()[:16]


#: `checkpoint_every_steps: null` (auto) backs up this many times per epoch (the last at its end) ...
AUTO_BACKUPS_PER_EPOCH = 4
#: ... and at least every this many steps (long epochs).
AUTO_MAX_BACKUP_INTERVAL = 1000


def backup_interval(checkpoint_every_steps: int | None, steps_per_epoch: int) -> int:
    """Steps (batches) between backups inside an epoch; 0 = only at epoch ends.

    `checkpoint_every_steps` None (the default, auto) is a quarter of an
    epoch, rounded up, at most `AUTO_MAX_BACKUP_INTERVAL` steps; a number is
    taken as it is (one at least the epoch's length backs up only at epoch
    ends, like 0). Every backup is exact, so the interval only sets how many
    steps a killed job computes twice.
    """
    if checkpoint_every_steps is None:
        quarter = math.ceil(steps_per_epoch / AUTO_BACKUPS_PER_EPOCH)
        return max(1, min(AUTO_MAX_BACKUP_INTERVAL, quarter))
    return int(checkpoint_every_steps)


def random_states(model) -> list:
    """The state variables of the model's `keras.random.SeedGenerator`s.

    Keras 3 layers draw dropout masks (and `IdEmbedding` its id dropout) from
    a `SeedGenerator` whose `state` variable advances at every draw. A
    `tf.train.Checkpoint` of the model does not reach it (a `SeedGenerator`
    is no trackable object), so a restored model would draw the masks of the
    first steps again; the trainer checkpoints these variables beside the
    model. They are `model.variables` that are not `model.weights`. (Unseeded
    `keras.random` calls, drawn from Keras's global generator, and stateful
    `tf.random` ops are not covered: tfrec's layers use neither.)
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def lower_is_better(monitor: str) -> bool:
    """Losses are minimised; other monitored metrics (NDCG, AUC, recall) maximised."""
    return monitor.endswith("loss")


class Trainer:
    """Trains `model` (built under `strategy.scope()`) with `training` settings.

    Args:
        model: a `tfrec.models.TaskModel` (anything with
            `weighted_losses(x, y, y_pred)`; per-row loss weights travel in
            `y`, as `y["sample_weight"]`) created in `strategy.scope()`.
        training: a `TrainingConfig`.
        output_dir: the run directory (written by the chief only).
        strategy: the strategy the model was built under; default the current one.
    """

    def __init__(self, model, training, output_dir, strategy=None):
        self.model = model
        self.training = training
        self.output_dir = output_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.task = cluster_task()
        self.is_chief = self.task.is_chief
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch_size = training.batch_size * self.replicas
        self.backup_dir = training.backup_dir or os.path.join(output_dir, "backup")
        self.optimizer = None
        self.history: list[dict] = []
        self._scratch = {}  # non-chief workers: real path -> temporary directory
        if self.is_chief:
            os.makedirs(output_dir, exist_ok=True)
        # Host-side progress, saved in the backup beside model and optimizer.
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self._batch = tf.Variable(0, dtype=tf.int64, trainable=False, name="batch_in_epoch")
        self._best = tf.Variable(np.inf, dtype=tf.float64, trainable=False, name="best_monitor")
        self._bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_without_improvement")
        # JSON of the current epoch's running loss sums, batch count and seconds,
        # so a job resumed mid-epoch reports the whole epoch's mean losses.
        self._progress = tf.Variable("", dtype=tf.string, trainable=False, name="epoch_progress")
        self._validated_start = False
        self.backup_every = 0  # set by `fit` (`backup_interval`)

    # ------------------------------------------------------------ set-up
    def _write_dir(self, path):
        """`path` on the chief; elsewhere one temporary directory per `path`, reused."""
        if self.is_chief:
            os.makedirs(path, exist_ok=True)
            return path
        if path not in self._scratch:
            self._scratch[path] = tempfile.mkdtemp(prefix=f"tfrec-{self.task.task_type}{self.task.task_index}-")
        return self._scratch[path]

    def _clean_scratch(self):
        for scratch in self._scratch.values():
            shutil.rmtree(scratch, ignore_errors=True)
        self._scratch = {}

    def _setup(self, total_steps):
        with self.strategy.scope():
            self.model.build()
            self.optimizer = make_optimizer(self.training, total_steps, self.model)
            self.optimizer.build(self.model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(
            model=self.model,
            optimizer=self.optimizer,
            epoch=self._epoch,
            batch=self._batch,
            best=self._best,
            bad_epochs=self._bad_epochs,
            random_states=random_states(self.model),
            epoch_progress=self._progress,
        )
        self.backup = tf.train.CheckpointManager(self.checkpoint, self._write_dir(self.backup_dir), max_to_keep=1)
        self.epoch_checkpoints = tf.train.CheckpointManager(
            self.checkpoint,
            self._write_dir(os.path.join(self.output_dir, "checkpoints")),
            max_to_keep=max(1, self.training.keep_checkpoints),
            checkpoint_name="epoch",
        )
        self._train_fn = self._make_train_function()
        self._eval_fn = self._make_eval_function()
        self._writer = None
        if self.is_chief and self.training.tensorboard:
            self._writer = tf.summary.create_file_writer(os.path.join(self.output_dir, "tensorboard"))

    def _restore(self):
        """Restores the last backup (read from the shared backup dir by every worker)."""
        latest = tf.train.latest_checkpoint(self.backup_dir)
        if latest is None:
            return False
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        _log(
            f"resumed from {latest}: epoch {int(self._epoch.numpy()) + 1}, batch {int(self._batch.numpy())}, "
            f"optimizer step {self.optimizer_steps}"
        )
        return True

    @property
    def optimizer_steps(self) -> int:
        return int(self.optimizer.iterations.numpy())

    # ------------------------------------------------------------ steps
    def _losses(self, x, y, training):
        # The model's one loss path, the same that Keras `fit` takes.
        y_pred = self.model(x, training=training)
        total, losses = self.model.weighted_losses(x, y, y_pred)
        logs = {"loss": total}
        logs.update({f"{k}_loss": tf.cast(v, tf.float32) for k, v in losses.items()})
        return total, logs

    def _make_train_function(self):
        model, optimizer, strategy, replicas = self.model, self.optimizer, self.strategy, self.replicas

        def step(batch):
            x, y = batch
            with tf.GradientTape() as tape:
                total, logs = self._losses(x, y, training=True)
                # Gradients are summed over replicas: each takes its share.
                scaled = optimizer.scale_loss(total / replicas)
            variables = model.trainable_variables
            grads = tape.gradient(scaled, variables)
            optimizer.apply(grads, variables)
            return logs

        @tf.function(reduce_retracing=True)
        def train_function(iterator):
            per_replica = strategy.run(step, args=(next(iterator),))
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in per_replica.items()}

        return train_function

    def _make_eval_function(self):
        strategy = self.strategy

        def step(batch):
            x, y = batch
            return self._losses(x, y, training=False)[1]

        @tf.function(reduce_retracing=True)
        def eval_function(iterator):
            per_replica = strategy.run(step, args=(next(iterator),))
            return {k: strategy.reduce("MEAN", v, axis=None) for k, v in per_replica.items()}

        return eval_function

    # ------------------------------------------------------------ loop
    def _distributed(self, batches, epoch, skip=0):
        """Epoch `epoch` of `batches` from batch `skip` under the strategy.

        Batches with a `distribute(strategy, epoch, skip)` method (`StreamBatches`:
        each worker reads its own files) distribute themselves; the others'
        `dataset` is split by the strategy.
        """
        distribute = getattr(batches, "distribute", None)
        if distribute is not None:
            return distribute(self.strategy, epoch, skip)
        return self.strategy.experimental_distribute_dataset(batches.dataset(epoch, skip=skip))

    def evaluate(self, batches) -> dict:
        """Mean losses over `batches` (an `EpochBatches` or `StreamBatches`, in order)."""
        iterator = iter(self._distributed(batches, 0))
        sums: dict[str, float] = {}
        for _ in range(batches.steps_per_epoch):
            for k, v in self._eval_fn(iterator).items():
                sums[k] = sums.get(k, 0.0) + float(v)
        return {k: v / batches.steps_per_epoch for k, v in sums.items()}

    def fit(
        self,
        train,
        valid=None,
        epochs=None,
        epoch_metrics=None,
        validate_start=False,
        on_step_end: Callable[[int], None] | None = None,
        on_fresh_start: Callable[[Trainer], None] | None = None,
    ) -> list[dict]:
        """Trains on `train` (an `EpochBatches`, or a `StreamBatches` of files) for `epochs` (default the config's).

        Resumes from the backup when there is one. Returns the per-epoch
        history (also in `history.csv`). `epoch_metrics(model) -> {name:
        value}` adds `val_<name>` to every epoch's row; `validate_start`
        records the untrained model as epoch 0 (a fresh start only).
        `on_step_end(optimizer_step)` is called after every step and its
        backup, if any; an exception it raises ends training there, as a kill
        would (the resume tests interrupt runs this way).
        `on_fresh_start(trainer)` is called once when there is no backup to
        resume from, after the optimizer is built and before the first step
        (a warm start sets the optimizer state there: `tfrec.training.warm_start`).
        """
        cfg = self.training
        epochs = epochs or cfg.epochs
        steps = train.steps_per_epoch
        if train.global_batch_size != self.global_batch_size:
            raise ValueError(
                f"train batches have global batch {train.global_batch_size}, the trainer expects "
                f"{self.global_batch_size} (training.batch_size x {self.replicas} replicas)"
            )
        if cfg.xla:
            tf.config.optimizer.set_jit("autoclustering")
        self._setup(total_steps=steps * epochs)
        self.backup_every = backup_interval(cfg.checkpoint_every_steps, steps)
        resumed = self._restore()
        if resumed:
            self._load_history(int(self._epoch.numpy()))
            self._validated_start = any(row["epoch"] == 0 for row in self.history)
        else:
            self._clear_previous_run()
            if on_fresh_start is not None:
                on_fresh_start(self)
        every = f"every {self.backup_every} steps and " if 0 < self.backup_every < steps else ""
        _log(
            f"training on {self.task.describe()}, {type(self.strategy).__name__} with {self.replicas} "
            f"replica(s): global batch {self.global_batch_size}, {steps} steps/epoch, {epochs} epoch(s); "
            f"backups {every}at epoch ends"
        )
        from tfrec.models.builder import parameter_summary  # trainable vs total (LoRA: the adapters)

        _log(parameter_summary(self.model))
        monitor = cfg.monitor
        # A job that early stopping ended, killed before `finalize`, stays stopped.
        patience = cfg.early_stopping_patience
        stop = resumed and patience > 0 and int(self._bad_epochs.numpy()) >= patience
        if validate_start and not resumed and (valid is not None or epoch_metrics is not None):
            row: dict[str, float] = {"epoch": 0}
            if valid is not None:
                row.update({f"val_{k}": v for k, v in self.evaluate(valid).items()})
            if epoch_metrics is not None:
                row.update({f"val_{k}": float(v) for k, v in epoch_metrics(self.model).items()})
            row.update(learning_rate=self._current_learning_rate(), seconds=0.0, examples_per_second=0.0)
            row["optimizer_steps"] = 0
            self._end_epoch(row, monitor)
            self._validated_start = True
        while int(self._epoch.numpy()) < epochs and not stop:
            epoch = int(self._epoch.numpy())
            start_batch = int(self._batch.numpy())
            iterator = iter(self._distributed(train, epoch, start_batch))
            bar = keras.utils.Progbar(steps, verbose=1) if cfg.verbose == 1 and self.is_chief else None
            sums, count, elapsed = self._epoch_progress(start_batch)
            t0 = time.time() - elapsed
            for batch in range(start_batch, steps):
                logs = self._train_fn(iterator)
                values = {k: float(v) for k, v in logs.items()}
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                self._batch.assign(batch + 1)
                step = self.optimizer_steps
                if bar is not None:
                    bar.update(batch + 1, list(values.items()))
                if step % cfg.log_every_steps == 0:
                    self._log_step(epoch, batch + 1, steps, step, values, count, t0)
                trained = epoch * steps + batch + 1  # batches of the whole run, replicas counted once
                if self.backup_every and trained % self.backup_every == 0 and batch + 1 < steps:
                    self._progress.assign(json.dumps({"sums": sums, "count": count, "seconds": time.time() - t0}))
                    self._save_backup()
                if on_step_end is not None:
                    on_step_end(step)
            seconds = time.time() - t0
            row = {"epoch": epoch + 1, **{k: v / max(count, 1) for k, v in sums.items()}}
            if valid is not None:
                row.update({f"val_{k}": v for k, v in self.evaluate(valid).items()})
            if epoch_metrics is not None:
                row.update({f"val_{k}": float(v) for k, v in epoch_metrics(self.model).items()})
            row["learning_rate"] = self._current_learning_rate()
            row["seconds"] = seconds
            row["examples_per_second"] = count * self.global_batch_size / max(seconds, 1e-9)
            row["optimizer_steps"] = self.optimizer_steps
            stop = self._end_epoch(row, monitor)
            self._epoch.assign(epoch + 1)
            self._batch.assign(0)
            self._progress.assign("")
            # Every worker takes part in each save (see the module docstring).
            # The backup comes last: a job killed before it redoes the epoch's
            # end and writes this epoch checkpoint and history row again.
            self.epoch_checkpoints.save(checkpoint_number=epoch + 1)
            self._save_backup()
        if self._writer is not None:
            self._writer.flush()
        _log(
            f"training done: {self.optimizer_steps} optimizer steps; weights fingerprint "
            f"{weights_fingerprint(self.model)}"
        )
        return self.history

    # ------------------------------------------------------------ bookkeeping
    def _epoch_progress(self, start_batch) -> tuple[dict[str, float], int, float]:
        """The running loss sums, batch count and seconds of an epoch resumed at `start_batch`."""
        text = self._progress.numpy().decode()
        if start_batch == 0 or not text:
            return {}, 0, 0.0
        progress = json.loads(text)
        if progress["count"] != start_batch:
            raise ValueError(
                f"the backup's epoch progress counts {progress['count']} batches, its position is batch {start_batch}"
            )
        return progress["sums"], progress["count"], progress["seconds"]

    def _clear_previous_run(self):
        """A fresh start: the history and best weights of an earlier run in `output_dir` go."""
        if self.is_chief:
            for name in ("history.csv", "best.weights.h5"):
                path = os.path.join(self.output_dir, name)
                if os.path.exists(path):
                    os.remove(path)

    def _current_learning_rate(self) -> float:
        opt = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        lr = opt.learning_rate
        return float(keras.ops.convert_to_numpy(lr))

    def _log_step(self, epoch, batch, steps, step, values, count, t0):
        rate = count * self.global_batch_size / max(time.time() - t0, 1e-9)
        if self.is_chief and self.training.verbose == 2:
            parts = " ".join(f"{k} {v:.4f}" for k, v in values.items())
            _log(f"epoch {epoch + 1} batch {batch}/{steps} step {step}: {parts} ({rate:.0f} examples/s)")
        if self._writer is not None:
            with self._writer.as_default(step=step):
                for k, v in values.items():
                    tf.summary.scalar(f"train/{k}", v)
                tf.summary.scalar("train/learning_rate", self._current_learning_rate())
                tf.summary.scalar("train/examples_per_second", rate)

    def _end_epoch(self, row, monitor) -> bool:
        """Records the epoch; saves the best model; True when early stopping says stop."""
        self.history.append(row)
        stop = False
        value = row.get(monitor)
        if value is None and monitor != "val_loss":
            raise ValueError(f"training.monitor {monitor!r} is not among the epoch metrics {sorted(row)}")
        if value is not None:
            value = value if lower_is_better(monitor) else -value  # the best is kept as a minimum
            if value < float(self._best.numpy()):
                self._best.assign(value)
                self._bad_epochs.assign(0)
                path = os.path.join(self._write_dir(self.output_dir), "best.weights.h5")
                self.model.save_weights(path)
            else:
                self._bad_epochs.assign_add(1)
                patience = self.training.early_stopping_patience
                stop = patience > 0 and int(self._bad_epochs.numpy()) >= patience
        if self.is_chief:
            self._write_history()
            if self.training.verbose:
                parts = " ".join(
                    f"{k} {v:.4f}" for k, v in row.items() if k.endswith("loss") or k.startswith("val_ndcg")
                )
                _log(
                    f"epoch {row['epoch']}: {parts} ({row['seconds']:.0f}s, "
                    f"{row['examples_per_second']:.0f} examples/s)"
                )
            if self._writer is not None:
                with self._writer.as_default(step=row["optimizer_steps"]):
                    for k, v in row.items():
                        if k.startswith("val_"):
                            tf.summary.scalar(f"validation/{k[4:]}", v)
        if stop:
            _log(f"early stopping: {monitor} has not improved for {int(self._bad_epochs.numpy())} epoch(s)")
        return stop

    def _save_backup(self):
        self.backup.save(checkpoint_number=self.optimizer_steps)

    def _history_path(self):
        return os.path.join(self.output_dir, "history.csv")

    def _write_history(self):
        keys = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        with open(self._history_path(), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.history)

    def _load_history(self, completed_epochs):
        """The rows of epochs finished before a restart (epoch 0 included; later rows are dropped)."""
        self.history = []
        path = self._history_path()
        if os.path.exists(path):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    row = {k: float(v) for k, v in row.items() if v not in ("", None)}
                    row["epoch"] = int(row["epoch"])
                    if row["epoch"] <= completed_epochs:
                        self.history.append(row)

    def best_monitor_value(self) -> float:
        """The best value of `training.monitor` so far (inf before any validation)."""
        best = float(self._best.numpy())
        return best if lower_is_better(self.training.monitor) else -best

    # ------------------------------------------------------------ the end
    def finalize(self, restore_best: bool | None = None):
        """Saves `model.keras` (chief) and returns a copy built outside the strategy.

        With `restore_best` (default: when early stopping is on) the copy gets
        the best epoch's weights, and so does `model.keras`. Non-chief workers
        return None. Also writes `training_state.json` (steps, epochs, best).
        """
        if restore_best is None:
            restore_best = self.training.early_stopping_patience > 0 or self._validated_start
        out = self._write_dir(self.output_dir)
        path = os.path.join(out, "model.keras")
        # Every worker saves (the save reads cross-worker synchronised
        # variables); only the chief's copy is in the run directory.
        self.model.save(path)
        state = {
            "optimizer_steps": self.optimizer_steps,
            "epochs_completed": int(self._epoch.numpy()),
            "best_" + self.training.monitor: float(self._best.numpy())
            * (1 if lower_is_better(self.training.monitor) else -1),
            "weights_fingerprint": weights_fingerprint(self.model),
            "replicas": self.replicas,
            "global_batch_size": self.global_batch_size,
            "task": self.task.describe(),
        }
        if not self.is_chief:
            self._clean_scratch()
            return None
        import tfrec.models  # noqa: F401  (registers the layers for loading)

        model = keras.models.load_model(path)  # called outside any strategy scope
        best = os.path.join(self.output_dir, "best.weights.h5")
        if restore_best and os.path.exists(best):
            model.load_weights(best)
            model.save(path)
            state["restored_best_weights"] = True
        with open(os.path.join(self.output_dir, "training_state.json"), "w") as f:
            json.dump(state, f, indent=2)
        # Training finished: the next run of the same command starts afresh
        # (as Keras's BackupAndRestore does); epoch checkpoints stay.
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        return model
