"""Warm start (`training.init_from`): vocabularies grow, known ids keep their rows, the start is the previous model.

The previous model is the session's `small_trained` (tiny BERT, every task);
the new rows are some of its rows plus a second simulation's, whose ids
(`u00`, `i07`, ...) it has never seen. The job-level test trains a lean
model (no BERT) for a few steps: a previous run and a warm-started run that
keeps the optimizer; then a backup in the second run's directory wins.
"""

import dataclasses
import json
import shutil

import numpy as np
import pytest


def _numpy(variable):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))


@pytest.fixture(scope="module")
def rows(small_trained):
    """`(old_df, new_df)`: the previous model's training rows, and new rows (half old, half unseen ids)."""
    import pandas as pd

    from tfrec.data.simulator import SimulatorConfig, simulate
    from tfrec.data.validation import validate

    sim, old_df, _ = small_trained
    fresh = simulate(SimulatorConfig(num_users=60, num_items=30, num_sessions=40, seed=11))
    fresh_df = validate(fresh.impressions, fresh.schema()).valid
    return old_df, pd.concat([old_df.head(300), fresh_df], ignore_index=True)


@pytest.fixture(scope="module")
def warm(small_trained, rows):
    """`(previous, model, report)`: a model for the new rows, warm-started from `small_trained`."""
    import keras

    from tfrec.models import build_model
    from tfrec.training.warm_start import warm_start_weights

    sim, _, previous = small_trained
    keras.utils.set_random_seed(7)
    model = build_model(sim.schema(), previous.config, rows[1], previous=previous)
    return previous, model, warm_start_weights(previous, model, source="small_trained")


def _loss(model, batch):
    x, y = batch
    total, losses = model.weighted_losses(x, y, model(x, training=False))
    return float(total), {k: float(v) for k, v in losses.items()}


def test_vocabularies_grow_and_known_ids_keep_their_rows_bit_identical(warm, rows):
    from tfrec.models.carry_over import id_tables

    previous, model, report = warm
    old_df, new_df = rows
    before, after = id_tables(previous), id_tables(model)
    assert set(after) == set(before) and {"user id", "item id", "user history"} <= set(after)
    for role, old in before.items():
        new = after[role]
        n = len(old.vocabulary)
        assert new.vocabulary[:n] == old.vocabulary, role  # the old vocabulary first, in its order
        rows_kept = old.num_oov + n  # OOV buckets, then every previous id
        old_table, new_table = _numpy(old.embedding.embeddings), _numpy(new.embedding.embeddings)
        np.testing.assert_array_equal(new_table[:rows_kept], old_table, err_msg=role)
        assert new_table.shape[0] - rows_kept == len(new.vocabulary) - n
    for role, column in (("user id", "user_id"), ("item id", "item_id")):
        unseen = set(new_df[column]) - set(old_df[column])
        table = after[role]
        assert len(unseen) > 10 and set(table.vocabulary[len(before[role].vocabulary) :]) == unseen, role
        added = _numpy(table.embedding.embeddings)[table.num_oov + len(before[role].vocabulary) :]
        assert np.abs(added).sum() > 0  # fresh rows, not copies or zeros
    growth = {v.role: v for v in report.vocabularies}
    assert growth["item id"].kept == len(before["item id"].vocabulary) and growth["item id"].added > 10
    assert len(report.grown) >= 3 and not report.fresh and not report.dropped
    lines = "\n".join(report.lines())
    assert f"vocabulary user id: {len(before['user id'].vocabulary)} ids kept" in lines
    # Kept from the previous run, not rebuilt: the WordPiece vocabulary and the numeric scaling.
    assert model.text_encoder.tokenizer.get_vocabulary() == previous.text_encoder.tokenizer.get_vocabulary()
    pairs = [(m.query_tower.user_encoder.numeric, m.item_tower.item_encoder.numeric) for m in (previous, model)]
    for a, b in zip(*pairs, strict=True):
        assert (a.mean, a.std, a.log_scale) == (b.mean, b.std, b.log_scale)
    # The logQ probabilities describe the new rows' batches: recomputed, one per row of the grown table.
    prob = model.retrieval_task.item_sampling_probability
    assert prob.shape[0] == after["item id"].input_dim and "item sampling probabilities (logQ)" in report.recomputed


def test_a_warm_start_before_any_step_is_the_previous_model_on_the_old_rows(small_trained, warm, rows):
    import keras

    from tfrec.data.pipeline import dataset_from_dataframe
    from tfrec.models import build_model
    from tfrec.training.warm_start import warm_start_weights

    sim, old_df, previous = small_trained
    _, model, _ = warm
    batch = next(iter(dataset_from_dataframe(old_df, sim.schema(), batch_size=64, drop_remainder=True)))
    before = previous(batch[0], training=False)
    after = model(batch[0], training=False)
    for key, value in before.items():
        np.testing.assert_array_equal(_numpy(after[key]), _numpy(value), err_msg=key)
    total, losses = _loss(previous, batch)
    _, warm_losses = _loss(model, batch)
    # Every loss but retrieval's, whose logQ correction comes from the new rows.
    assert {k: v for k, v in warm_losses.items() if k != "retrieval"} == {
        k: v for k, v in losses.items() if k != "retrieval"
    }
    # On the previous run's own rows the whole loss (logQ included) is the previous model's, bit for bit,
    # although a fresh model of another seed starts elsewhere.
    keras.utils.set_random_seed(123)
    same = build_model(sim.schema(), previous.config, old_df, previous=previous)
    fresh_total = _loss(same, batch)[0]
    warm_start_weights(previous, same)
    assert _loss(same, batch) == (total, losses) and fresh_total != total


def test_an_architecture_mismatch_names_the_weight_and_both_shapes(small_trained):
    from tfrec.models import build_model
    from tfrec.training.warm_start import warm_start_weights

    sim, old_df, previous = small_trained
    other = dataclasses.replace(previous.config, embedding_dim=8)  # the previous run's is 16
    model = build_model(sim.schema(), other, old_df, previous=previous)
    with pytest.raises(ValueError, match="architecture differs") as info:
        warm_start_weights(previous, model, source="runs/monday")
    message = str(info.value)
    assert "runs/monday" in message and "item_tower/projection/vars/0" in message
    assert "previous (32, 16), this model (32, 8)" in message


def test_init_from_and_init_optimizer_are_validated():
    from tfrec.jobs.config import JobConfig

    training = JobConfig.from_dict({"training": {"init_from": "runs/monday", "init_optimizer": "keep"}}).training
    assert (training.init_from, training.init_optimizer) == ("runs/monday", "keep")
    assert JobConfig().training.init_from is None and JobConfig().training.init_optimizer == "reset"
    bad = [
        ({"init_optimizer": "adam"}, r"training.init_optimizer: unknown 'adam'; one of 'reset', 'keep'"),
        ({"init_from": 3}, r"training.init_from: expected a string or None"),
        ({"init_from": "  "}, r"training.init_from: expected a previous run directory or a .keras file"),
        ({"init_optimizer": "keep"}, r"training.init_optimizer: keep needs training.init_from"),
        ({"init_from": "m.keras", "init_optimizer": "keep"}, r"keep needs training.init_from to be a run directory"),
        ({"init_from": "runs/a", "init_optimizer": "keep", "lr_schedule": "cosine"}, r"lr_schedule: constant"),
        ({"init_from": "runs/a", "init_optimizer": "keep", "warmup_steps": 10}, r"warmup_steps: 0"),
    ]
    for training, message in bad:
        with pytest.raises(ValueError, match=message):
            JobConfig.from_dict({"training": training})


def test_a_missing_previous_run_is_a_clear_error(tmp_path):
    from tfrec.training.warm_start import resolve_init_path

    (tmp_path / "unfinished").mkdir()
    with pytest.raises(FileNotFoundError, match="training.init_from: .*unfinished.* has no model.keras"):
        resolve_init_path(tmp_path / "unfinished")
    with pytest.raises(FileNotFoundError, match="neither a run directory holding model.keras nor a .keras file"):
        resolve_init_path(tmp_path / "nowhere.keras")


def test_the_cli_flag_reaches_the_training_config(tmp_path, monkeypatch):
    import tfrec.jobs
    from tfrec import cli

    seen = []
    monkeypatch.setattr(tfrec.jobs, "run_job", seen.append)
    config = tmp_path / "job.yaml"
    config.write_text(f"training: {{epochs: 1}}\noutput_dir: {tmp_path / 'tuesday'}\n")
    assert cli.main(["train", "--config", str(config), "--init-from", str(tmp_path / "monday")]) == 0
    assert seen[0].training.init_from == str(tmp_path / "monday")
    assert seen[0].training.init_optimizer == "reset"


def test_train_model_warm_starts_keeps_the_optimizer_and_a_backup_wins(tmp_path, capsys):
    import keras
    import tensorflow as tf

    from tfrec.data.simulator import SimulatorConfig, simulate
    from tfrec.data.validation import validate
    from tfrec.jobs.config import JobConfig
    from tfrec.models import build_model
    from tfrec.models.carry_over import id_tables
    from tfrec.training.job import train_model
    from tfrec.training.optimizer import make_optimizer
    from tfrec.training.trainer import weights_fingerprint
    from tfrec.training.warm_start import (
        WarmStart,
        _slot,
        keep_optimizer_state,
        load_previous_model,
        warm_start_weights,
    )

    def job(**training):
        return JobConfig.from_dict(
            {
                "model": {"embedding_dim": 8, "id_embedding_dim": 4, "tower_units": [8], "expert_units": [8]}
                | {"use_text": False, "loss_weights": {"ctr": 0.0, "relevance": 0.0, "value": 0.0}},  # a fast trace
                "training": {"epochs": 1, "batch_size": 32, "verbose": 0, "tensorboard": False}
                | {"early_stopping_patience": 0, "checkpoint_every_steps": 0, **training},
            }
        )

    def frame(seed):
        sim = simulate(SimulatorConfig(num_users=60, num_items=30, num_sessions=40, seed=seed))
        return sim.schema(), validate(sim.impressions, sim.schema()).valid

    schema, monday_df = frame(1)
    _, tuesday_df = frame(2)
    monday, tuesday = tmp_path / "monday", tmp_path / "tuesday"
    train_model(job(), schema, monday_df.head(128), run_dir=str(monday))  # 4 steps
    capsys.readouterr()

    warm = job(init_from=str(monday), init_optimizer="keep")
    train_model(warm, schema, tuesday_df.head(128), run_dir=str(tuesday))
    log = capsys.readouterr().out
    assert (
        f"warm start from {monday}" in log and "vocabulary item id: " in log and " added (16 OOV buckets kept)" in log
    )
    assert "optimizer state kept from" in log and "step 4" in log
    state = json.loads((tuesday / "training_state.json").read_text())
    assert state["optimizer_steps"] == 8  # the step counter went on from the previous run's 4

    # keep, step by step: the previous run's AdamW moments (old rows), zeros for the new ids' rows.
    previous = load_previous_model(str(monday))
    model = build_model(schema, warm.model, tuesday_df.head(128), previous=previous)
    warm_start_weights(previous, model)
    optimizer = make_optimizer(warm.training, 4, model)
    optimizer.build(model.trainable_variables)
    keep_optimizer_state(previous, str(monday), model, optimizer)
    reference = load_previous_model(str(monday))
    reference_optimizer = make_optimizer(job().training, 4, reference)
    reference_optimizer.build(reference.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=reference, optimizer=reference_optimizer)
    checkpoint.restore(tf.train.latest_checkpoint(str(monday / "checkpoints"))).expect_partial()
    old_table, new_table = (id_tables(m)["item id"].embedding.embeddings for m in (reference, model))
    before = _numpy(_slot(reference_optimizer, old_table, "momentum"))
    after = _numpy(_slot(optimizer, new_table, "momentum"))
    assert np.abs(before).sum() > 0 and after.shape[0] > before.shape[0]
    np.testing.assert_array_equal(after[: before.shape[0]], before)
    assert not after[before.shape[0] :].any() and int(_numpy(optimizer.iterations)) == 4

    # A backup in the run directory (the epoch checkpoint stands in for one a killed run left): resume wins.
    # The rebuilt model takes the vocabularies from init_from, so the backup restores into it; nothing is copied.
    shutil.copytree(tuesday / "checkpoints", tuesday / "backup")
    start = WarmStart(warm.training, str(tuesday))
    assert start.resuming
    keras.utils.set_random_seed(0)
    model = build_model(schema, warm.model, tuesday_df.head(128), previous=start.previous)
    model.build()  # as the trainer does
    assert start.start(model) is None and "skipped: the run resumes from its backup" in capsys.readouterr().out
    assert weights_fingerprint(model) != state["weights_fingerprint"]  # fresh: nothing was copied
    backup = tf.train.latest_checkpoint(str(tuesday / "backup"))
    optimizer = make_optimizer(warm.training, 4, model)  # the trainer's backup holds model and optimizer
    optimizer.build(model.trainable_variables)
    restored = tf.train.Checkpoint(model=model, optimizer=optimizer).restore(backup)
    restored.expect_partial().assert_existing_objects_matched()
    assert weights_fingerprint(model) == state["weights_fingerprint"]
