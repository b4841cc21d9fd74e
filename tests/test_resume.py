"""Reproducible resume: a run killed at any step and restarted ends as if it had never stopped.

The in-process test trains a small model with dropout and id dropout (whose
masks come from `keras.random.SeedGenerator` states) once straight through
and once killed at several points, each restart a fresh model and `Trainer`
on the same run directory, as a restarted process would build them. A kill is
an exception raised after a step (`Trainer.fit(on_step_end=...)`) or from the
epoch-end backup. Both runs must end with the same weights fingerprint and
the same history, bit for bit (CPU). `tests/test_training.py` SIGKILLs a real
`tfrec train` process and checks the same.
"""

import json
import math

import pytest
from test_training import TINY

STEPS_PER_EPOCH = 12
BATCH = 64


def lean_config():
    """TINY without the text encoder and cross network (a fast trace); dropout stays on."""
    from tfrec.jobs.config import JobConfig

    data = json.loads(json.dumps(TINY))
    data["model"].update(use_text=False, cross_layers=0, lexical_features=False, dropout=0.2, id_dropout=0.2)
    data["training"].update(verbose=0, tensorboard=False, early_stopping_patience=1, checkpoint_every_steps=None)
    return JobConfig.from_dict(data)


@pytest.fixture(scope="module")
def lean_data():
    from tfrec.data.simulator import simulate
    from tfrec.data.split import time_split
    from tfrec.data.validation import validate

    config = lean_config()
    sim = simulate(config.simulator)
    split = time_split(validate(sim.impressions, sim.schema()).valid, sim.schema())
    return config, sim.schema(), split.train.head(STEPS_PER_EPOCH * BATCH), split.valid.head(2 * BATCH)


class Killed(Exception):
    """Stands for the process dying."""


def train(lean_data, run_dir, kill_after_step=None, kill_in_epoch_end_backup=None, training=None, **fit_kwargs):
    """One process's share of a run: a fresh model and `Trainer` on `run_dir`; returns (trainer, history)."""
    import keras

    from tfrec.models.builder import build_model
    from tfrec.training.epoch_data import EpochBatches
    from tfrec.training.job import value_label_mask
    from tfrec.training.trainer import Trainer

    config, schema, train_df, valid_df = lean_data
    training = training or config.training
    keras.utils.set_random_seed(training.seed)  # as `train_model` does in every process
    model = build_model(schema, config.model, train_df)
    trainer = Trainer(model, training, str(run_dir))
    transform = value_label_mask(schema.user_id, training.value_holdout_fraction)
    batches = EpochBatches.from_dataframe(train_df, schema, BATCH, seed=training.seed, transform=transform)
    valid = EpochBatches.from_dataframe(valid_df, schema, BATCH, shuffle=False, transform=transform)
    assert batches.steps_per_epoch == STEPS_PER_EPOCH

    hook = fit_kwargs.pop("on_step_end", None)

    def on_step_end(step):
        if hook is not None:
            hook(step)
        if step == kill_after_step:
            raise Killed(step)

    if kill_in_epoch_end_backup is not None:
        save = trainer._save_backup

        def dies_in_epoch_end_backup():
            # The epoch's history row and checkpoint are written; its backup is not.
            if int(trainer._epoch.numpy()) == kill_in_epoch_end_backup and int(trainer._batch.numpy()) == 0:
                raise Killed("epoch-end backup")
            save()

        trainer._save_backup = dies_in_epoch_end_backup
    try:
        history = trainer.fit(batches, valid, on_step_end=on_step_end, **fit_kwargs)
    except Killed:
        return trainer, None
    return trainer, history


def test_backup_interval_defaults_to_a_quarter_epoch_and_is_validated():
    from tfrec.jobs.config import JobConfig, TrainingConfig
    from tfrec.training.trainer import AUTO_MAX_BACKUP_INTERVAL, backup_interval

    assert TrainingConfig().checkpoint_every_steps is None  # auto
    assert backup_interval(None, 58) == 15  # the probe's 58-step epoch: backups at 15, 30, 45 and its end
    assert backup_interval(None, 3) == 1
    assert backup_interval(None, 10**6) == AUTO_MAX_BACKUP_INTERVAL
    assert backup_interval(0, 58) == 0 and backup_interval(200, 58) == 200
    assert JobConfig.from_dict({"training": {"checkpoint_every_steps": None}}).training.checkpoint_every_steps is None
    with pytest.raises(ValueError, match="training.checkpoint_every_steps: must be >= 0"):
        JobConfig.from_dict({"training": {"checkpoint_every_steps": -1}})
    with pytest.raises(ValueError, match="training.checkpoint_every_steps: expected an integer"):
        JobConfig.from_dict({"training": {"checkpoint_every_steps": "often"}})


def test_run_killed_at_several_steps_resumes_to_the_same_weights_and_history(lean_data, tmp_path):
    from tfrec.training.trainer import random_states, weights_fingerprint

    straight, history = train(lean_data, tmp_path / "straight")
    assert random_states(straight.model), "the model has no dropout: the test would not cover the random state"
    every = straight.backup_every
    assert every == math.ceil(STEPS_PER_EPOCH / 4) == 3  # the default: backups inside the epoch
    assert len(history) == 2 and straight.optimizer_steps == 2 * STEPS_PER_EPOCH

    run = tmp_path / "killed"
    kills = [
        dict(kill_after_step=4),  # mid-epoch, one step after the backup at 3
        dict(kill_after_step=6),  # right after the backup at 6
        dict(kill_after_step=11),  # right before the end of epoch 1 (last backup at 9)
        dict(kill_in_epoch_end_backup=1),  # epoch 1's history row and checkpoint written, not its backup
        dict(kill_after_step=17),  # in epoch 2 (last backup at 15)
    ]
    resumed_at = []
    for kill in kills:
        trainer, done = train(lean_data, run, **kill)
        assert done is None, kill
        resumed_at.append(trainer.optimizer_steps)
    trainer, resumed = train(lean_data, run)
    assert resumed_at == [4, 6, 11, 12, 17]  # where each process died
    assert trainer.optimizer_steps == straight.optimizer_steps

    assert weights_fingerprint(trainer.model) == weights_fingerprint(straight.model)
    for a, b in zip(history, resumed, strict=True):
        for key, value in a.items():
            if key not in ("seconds", "examples_per_second"):
                assert b[key] == value, (a["epoch"], key)
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0] == (tmp_path / "straight" / "history.csv").read_text().splitlines()[0]
    assert sorted(p.name for p in (run / "checkpoints").glob("epoch-*.index")) == ["epoch-1.index", "epoch-2.index"]


def test_job_that_stopped_early_stays_stopped_when_restarted_before_finalize(lean_data, tmp_path):
    import dataclasses

    config = lean_data[0]
    training = dataclasses.replace(config.training, monitor="val_ndcg@10", epochs=3)
    scripted = [0.6, 0.7, 0.5]  # the untrained start, epoch 1 (the best), epoch 2 (worse: stop)

    def ndcg(model):
        assert scripted, "validated once more: a restarted job trained past early stopping"
        return {"ndcg@10": scripted.pop(0)}

    first, history = train(lean_data, tmp_path, training=training, epoch_metrics=ndcg, validate_start=True)
    assert [row["epoch"] for row in history] == [0, 1, 2]  # early stopping after epoch 2 of 3
    # Killed before `finalize`: the restart neither trains epoch 3 nor forgets the validated start.
    steps = []
    again, resumed = train(
        lean_data, tmp_path, training=training, epoch_metrics=ndcg, validate_start=True, on_step_end=steps.append
    )
    assert steps == [] and again.optimizer_steps == first.optimizer_steps == 2 * STEPS_PER_EPOCH
    assert resumed == history and again.best_monitor_value() == 0.7
    assert again._validated_start  # `finalize` keeps the best epoch's weights, as the first process would
