"""Warm start: a run that starts from a previous run's weights on new data (`training.init_from`).

Keeping a model fresh means training it again on the newest rows without
forgetting what it knew. A warm start does it in three steps:

1. `build_model(schema, config.model, new_rows, previous=previous)` builds
   the new model with grown vocabularies (the previous ids first, in their
   order, then the new ones) and the previous numeric statistics, WordPiece
   vocabulary and lexical IDF (`tfrec.models.carry_over`);
2. `warm_start_weights(previous, model)` copies every weight by its path in
   Keras's weights file (`model.weights.h5`): the text encoder, towers, heads,
   the OOV buckets and the row of every id seen before, bit for bit; new ids
   keep their freshly initialised rows. A weight whose shape differs for any
   other reason (e.g. another `embedding_dim`) is an error that names the
   weight and both shapes. The logQ item sampling probabilities stay those
   `build_model` computed from the new rows (they describe this run's batches);
3. the optimizer starts afresh (`training.init_optimizer: reset`, the default)
   or takes over the previous run's AdamW moments and step counter
   (`keep`: `keep_optimizer_state`, from the epoch checkpoint of the previous
   run that holds the weights of its `model.keras`; new rows get zero moments).

Resume wins: when the run directory has a backup (`Trainer` resumes from it),
the backup holds the weights and the optimizer, so nothing is copied;
`init_from` then only gives `build_model` the vocabularies, so that the
rebuilt model has the backup's shapes (it must stay readable until the run
has finished). `train_model` does all this (`WarmStart`) and logs what was
carried over: ids kept and added per vocabulary, weights copied.

Example:

```python
previous = load_previous_model("runs/monday")          # a run directory, or a .keras file
model = build_model(schema, config.model, tuesday_train_df, previous=previous)
report = warm_start_weights(previous, model, source="runs/monday")
print("\\n".join(report.lines()))                        # e.g. "user id: 900 ids kept, 57 added ..."
```
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import h5py
import keras
import numpy as np
import tensorflow as tf

from tfrec.console import log as _log
from tfrec.models.carry_over import id_tables
from tfrec.training.optimizer import LayerwiseAdamW
from tfrec.training.trainer import weights_fingerprint

#: `training.init_optimizer` values.
INIT_OPTIMIZER = ("reset", "keep")

#: The AdamW slots that `keep` carries over, per trainable variable.
ADAM_SLOTS = ("momentum", "velocity")


def resolve_init_path(init_from) -> str:
    """The `.keras` file of `training.init_from`: a run directory's `model.keras`, or the file itself."""
    path = os.fspath(init_from)
    if os.path.isdir(path):
        model = os.path.join(path, "model.keras")
        if not os.path.isfile(model):
            raise FileNotFoundError(f"training.init_from: {path!r} has no model.keras (did its training finish?)")
        return model
    if path.endswith(".keras") and os.path.isfile(path):
        return path
    raise FileNotFoundError(
        f"training.init_from: {path!r} is neither a run directory holding model.keras nor a .keras file"
    )


def load_previous_model(init_from):
    """The trained model of `training.init_from` (loaded outside any strategy scope)."""
    import tfrec.models  # noqa: F401  (registers the layers for loading)

    return keras.models.load_model(resolve_init_path(init_from))


def has_backup(training, run_dir) -> bool:
    """Whether a `Trainer` on `run_dir` resumes from a backup (`training.backup_dir`, default `<run_dir>/backup`)."""
    backup = training.backup_dir or os.path.join(run_dir, "backup")
    return tf.train.latest_checkpoint(backup) is not None


# ---------------------------------------------------------------- the report
@dataclasses.dataclass
class VocabularyGrowth:
    """One id table of a warm start: `kept` previous ids (rows unchanged), `added` new ids, `oov` buckets kept."""

    role: str
    kept: int
    added: int
    oov: int
    new: bool = False  # a table the previous model did not have

    def line(self) -> str:
        if self.new:
            return f"{self.role}: a new vocabulary of {self.added} ids (fresh rows)"
        return f"{self.role}: {self.kept} ids kept, {self.added} added ({self.oov} OOV buckets kept)"


@dataclasses.dataclass
class WarmStartReport:
    """What `warm_start_weights` carried over.

    Attributes:
        source: where the previous model came from.
        vocabularies: a `VocabularyGrowth` per id table.
        copied: weights copied whole or, for grown id tables, row by row.
        grown: the weights-file paths of the grown id tables.
        fresh: paths of weights the previous model lacks (freshly initialised).
        dropped: paths of the previous model's weights this model lacks.
        recomputed: weights computed from the new rows instead (logQ probabilities).
        kept: the statistics taken over by `build_model` (text vocabulary, numeric scaling, IDF).
    """

    source: str
    vocabularies: list[VocabularyGrowth]
    copied: int
    grown: list[str]
    fresh: list[str]
    dropped: list[str]
    recomputed: list[str]
    kept: list[str]

    def lines(self) -> list[str]:
        """The log lines of the warm start."""
        out = [
            f"warm start from {self.source}: {self.copied} weights carried over ({len(self.grown)} id tables grown), "
            f"{len(self.fresh)} new, {len(self.dropped)} of the previous model's left out"
        ]
        out += [f"  vocabulary {v.line()}" for v in self.vocabularies]
        if self.kept:
            out.append("  kept from the previous run: " + "; ".join(self.kept))
        if self.recomputed:
            out.append("  computed from the new rows: " + ", ".join(self.recomputed))
        if self.fresh:
            out.append("  new (fresh) weights: " + ", ".join(self.fresh[:8]) + (" ..." if len(self.fresh) > 8 else ""))
        if self.dropped:
            out.append("  left out: " + ", ".join(self.dropped[:8]) + (" ..." if len(self.dropped) > 8 else ""))
        return out


# ---------------------------------------------------------------- weights
def _numpy(variable) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable))


def _datasets(path) -> dict[str, np.ndarray]:
    """`{path: value}` of every model weight in a Keras `.weights.h5` file (a compiled model's optimizer left out)."""
    out: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and not name.startswith("optimizer/"):
            out[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def _path_of(variable, datasets) -> str | None:
    """The weights-file path holding `variable`'s current value, found by its value (None unless exactly one)."""
    value = _numpy(variable)
    hits = [p for p, d in datasets.items() if d.shape == value.shape and np.array_equal(d, value)]
    return hits[0] if len(hits) == 1 else None


def _describe(path, model, datasets) -> str:
    """`path`, with the Keras path of the `model` variable it holds where that is unambiguous."""
    for variable in model.weights:
        if tuple(variable.shape) == datasets[path].shape and _path_of(variable, datasets) == path:
            return f"{path} ({variable.path})"
    return path


def _grown_tables(previous, model, new_weights):
    """The id tables of `model` that grew from `previous`'s: `({path: previous rows}, [VocabularyGrowth])`."""
    before, after = id_tables(previous), id_tables(model)
    rows: dict[str, int] = {}
    growth = []
    for role, table in after.items():
        old = before.get(role)
        if old is None:
            growth.append(VocabularyGrowth(role, 0, len(table.vocabulary), table.num_oov, new=True))
            continue
        n = len(old.vocabulary)
        if old.num_oov != table.num_oov:
            raise ValueError(
                f"warm start: model.num_oov: the previous {role} table has {old.num_oov} OOV buckets, this model "
                f"{table.num_oov}; unknown ids would hash to other rows (keep model.num_oov, or train from scratch)"
            )
        if table.vocabulary[:n] != old.vocabulary:
            raise ValueError(
                f"warm start: the {role} vocabulary does not start with the previous one; "
                "build the model with build_model(..., previous=previous_model)"
            )
        growth.append(VocabularyGrowth(role, n, len(table.vocabulary) - n, table.num_oov))
        path = _path_of(table.embedding.embeddings, new_weights)
        if path is None:
            raise RuntimeError(f"warm start: the {role} id table is not found in the model's weights file")
        rows[path] = old.num_oov + n
    return rows, growth


def _recomputed(model, new_weights) -> dict[str, str]:
    """`{path: what}` of the weights computed from the new rows: the logQ item sampling probabilities."""
    task = getattr(model, "retrieval_task", None)
    prob = getattr(task, "item_sampling_probability", None)
    if prob is None:
        return {}
    path = _path_of(prob, new_weights)
    if path is None:
        raise RuntimeError("warm start: the item sampling probabilities are not found in the model's weights file")
    return {path: "item sampling probabilities (logQ)"}


def _kept_statistics(model) -> list[str]:
    kept = []
    encoder = getattr(model, "text_encoder", None)
    if encoder is not None and model.config.text.preset is None:
        kept.append(f"WordPiece vocabulary ({len(encoder.tokenizer.get_vocabulary())} tokens)")
    query_tower, item_tower = getattr(model, "query_tower", None), getattr(model, "item_tower", None)
    user = getattr(model, "user_encoder", None) or getattr(query_tower, "user_encoder", None)
    item = getattr(item_tower, "item_encoder", None)
    for side, enc in (("user", user), ("item", item)):
        if enc is not None and enc.numeric is not None:
            kept.append(f"{side} numeric statistics ({', '.join(enc.numeric_columns)})")
    lexical = getattr(model, "lexical_match", None)
    if lexical is not None:
        kept.append(f"lexical IDF ({lexical.num_terms} terms)")
    return kept


def warm_start_weights(previous, model, source: str = "the previous model") -> WarmStartReport:
    """Copies `previous`'s weights into `model` (built with `build_model(..., previous=previous)`).

    Weights are matched by their path in Keras's weights file. Equal shapes
    are copied; an id table that grew gets the previous rows (OOV buckets and
    every previous id) in its first rows and keeps its fresh rows for the new
    ids; the logQ probabilities stay as computed from the new rows. Any other
    difference of shape raises a `ValueError` naming each such weight and both
    shapes. Returns the `WarmStartReport`. Call it where `model` was built
    (inside the strategy scope of a distributed job).
    """
    model.build()
    with tempfile.TemporaryDirectory(prefix="tfrec-warm-start-") as tmp:
        previous_file = os.path.join(tmp, "previous.weights.h5")
        model_file = os.path.join(tmp, "model.weights.h5")
        previous.save_weights(previous_file)
        model.save_weights(model_file)
        old, new = _datasets(previous_file), _datasets(model_file)
        table_rows, growth = _grown_tables(previous, model, new)
        recomputed = _recomputed(model, new)
        updates: dict[str, np.ndarray] = {}
        grown, fresh, mismatches = [], [], []
        for path, value in new.items():
            if path in recomputed:
                continue
            if path not in old:
                fresh.append(path)
                continue
            before = old[path]
            if before.shape == value.shape:
                updates[path] = before
            elif (
                path in table_rows
                and before.shape == (table_rows[path],) + value.shape[1:]
                and value.shape[0] >= before.shape[0]
            ):
                merged = value.copy()
                merged[: before.shape[0]] = before
                updates[path] = merged
                grown.append(path)
            else:
                mismatches.append(
                    f"{_describe(path, model, new)}: previous {tuple(before.shape)}, this model {tuple(value.shape)}"
                )
        if mismatches:
            raise ValueError(
                f"warm start from {source}: the model's architecture differs from the previous run's "
                f"({len(mismatches)} weight(s) of another shape): " + "; ".join(mismatches) + ". A warm start needs "
                "the previous run's model settings (embedding_dim, id_embedding_dim, tower_units, text, ...)"
            )
        if not updates:
            raise ValueError(f"warm start from {source}: the previous model has no weight in common with this one")
        with h5py.File(model_file, "r+") as f:
            for path, value in updates.items():
                f[path][...] = value.astype(f[path].dtype)
        model.load_weights(model_file)
    return WarmStartReport(
        source=source,
        vocabularies=growth,
        copied=len(updates),
        grown=grown,
        fresh=fresh,
        dropped=[p for p in old if p not in new],
        recomputed=list(recomputed.values()),
        kept=_kept_statistics(model),
    )


# ---------------------------------------------------------------- optimizer
def _slot(optimizer, variable, slot):
    """The optimizer variable holding `slot` (e.g. `momentum`) of `variable`."""
    name = f"{variable.path.replace('/', '_')}_{slot}"
    hits = [v for v in optimizer.variables if v.name == name]
    if len(hits) != 1:
        raise RuntimeError(f"training.init_optimizer: keep: no single {slot} of {variable.path} in the optimizer")
    return hits[0]


def _paired_variables(previous, model):
    """`previous`'s and `model`'s trainable variables, paired in order, checked against the copied weights."""
    before, after = previous.trainable_variables, model.trainable_variables
    if len(before) != len(after):
        raise ValueError(
            f"training.init_optimizer: keep needs the previous run's trainable variables; it has {len(before)}, "
            f"this model {len(after)} (use init_optimizer: reset)"
        )
    for old, new in zip(before, after):
        a, b = _numpy(old), _numpy(new)
        if a.ndim:  # a grown id table holds the previous rows first
            same = a.shape[1:] == b.shape[1:] and a.shape[0] <= b.shape[0] and np.array_equal(a, b[: a.shape[0]])
        else:
            same = a.shape == b.shape and np.array_equal(a, b)
        if not same:
            raise ValueError(
                f"training.init_optimizer: keep: {new.path} {tuple(b.shape)} does not hold the previous "
                f"{old.path} {tuple(a.shape)} (use init_optimizer: reset)"
            )
    return list(zip(before, after))


def _checkpoint_optimizer(checkpoint_path):
    """An optimizer of the kind the previous run's checkpoints hold (AdamW, loss-scaled or not), to restore into."""
    names = [name for name, _ in tf.train.list_variables(checkpoint_path)]
    optimizer = LayerwiseAdamW()
    if any(n.startswith("optimizer/inner_optimizer/") for n in names):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def keep_optimizer_state(previous, init_from, model, optimizer) -> str:
    """Sets `optimizer` (built for `model`) to the previous run's AdamW state; returns a line for the log.

    The state comes from the newest epoch checkpoint in `<init_from>/checkpoints`
    whose weights are those of `model.keras` (with early stopping, the best
    epoch's), else from the newest one. Moments of grown id tables keep the
    previous rows; new rows start at zero. The step counter carries over too:
    Adam's bias correction belongs to the moments. Call after
    `warm_start_weights` and before the first step.
    """
    run_dir = os.fspath(init_from)
    folder = os.path.join(run_dir, "checkpoints")
    state = tf.train.get_checkpoint_state(folder) if os.path.isdir(run_dir) else None
    if state is None or not state.all_model_checkpoint_paths:
        raise FileNotFoundError(
            f"training.init_optimizer: keep: {folder!r} holds no epoch checkpoint with the optimizer state "
            "(init_from must be a run directory of a finished run)"
        )
    pairs = _paired_variables(previous, model)
    target = weights_fingerprint(previous)
    paths = list(reversed(state.all_model_checkpoint_paths))
    previous_optimizer = _checkpoint_optimizer(paths[0])
    previous_optimizer.build(previous.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=previous, optimizer=previous_optimizer)
    chosen = None
    for path in paths:
        checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
        if weights_fingerprint(previous) == target:
            chosen = path
            break
    note = ""
    if chosen is None:  # model.keras holds weights of no kept checkpoint (e.g. the validated start)
        chosen = paths[0]
        checkpoint.restore(chosen).expect_partial().assert_existing_objects_matched()
        note = " (the newest: no kept checkpoint holds the weights of model.keras)"
    inner_before = getattr(previous_optimizer, "inner_optimizer", previous_optimizer)
    inner_after = getattr(optimizer, "inner_optimizer", optimizer)
    for old, new in pairs:
        for slot in ADAM_SLOTS:
            value = _numpy(_slot(inner_before, old, slot))
            target_slot = _slot(inner_after, new, slot)
            if tuple(target_slot.shape) != value.shape:
                grown = np.zeros(tuple(target_slot.shape), value.dtype)
                grown[: value.shape[0]] = value
                value = grown
            target_slot.assign(value)
    steps = int(_numpy(inner_before.iterations))
    inner_after.iterations.assign(steps)
    return f"optimizer state kept from {chosen}{note}: AdamW moments of {len(pairs)} variables, step {steps}"


# ---------------------------------------------------------------- one run
class WarmStart:
    """The warm start of one `train_model` run: `training.init_from` and `training.init_optimizer`.

    Created before the model is built (it loads the previous model, outside
    any strategy scope). `previous` goes to `build_model`; `start(model)`
    copies the weights on a fresh start (inside the strategy scope);
    `on_fresh_start(trainer)` (`Trainer.fit`'s hook) sets the optimizer.
    """

    def __init__(self, training, run_dir):
        self.init_from = os.fspath(training.init_from)
        self.keep_optimizer = training.init_optimizer == "keep"
        self.resuming = has_backup(training, run_dir)
        self.previous = load_previous_model(self.init_from)
        self.report: WarmStartReport | None = None

    def start(self, model) -> WarmStartReport | None:
        """Copies the previous weights into `model`, unless the run resumes from its backup."""
        if self.resuming:
            _log(
                f"warm start from {self.init_from} skipped: the run resumes from its backup, which holds the "
                "weights and optimizer (training.init_from only gave the vocabularies)"
            )
            self.previous = None
            return None
        self.report = warm_start_weights(self.previous, model, source=self.init_from)
        for line in self.report.lines():
            _log(line)
        return self.report

    def on_fresh_start(self, trainer) -> None:
        """Resets or keeps the optimizer state (`training.init_optimizer`) before the first step."""
        if self.resuming or self.report is None:
            raise RuntimeError("warm start: the trainer starts afresh, but the weights were not copied")
        if self.keep_optimizer:
            _log(keep_optimizer_state(self.previous, self.init_from, trainer.model, trainer.optimizer))
        else:
            _log("optimizer state reset (training.init_optimizer: reset)")
        self.previous = None  # no longer needed
