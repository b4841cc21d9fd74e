"""Training jobs: optimizer and schedule, data position, cluster roles, the
resumable loop, mixed precision, a SIGKILLed job that resumes exactly, and two worker
processes that train one model."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = {
    "simulator": {"num_users": 500, "num_items": 150, "num_sessions": 400, "seed": 3},
    "model": {
        "embedding_dim": 16,
        "id_embedding_dim": 8,
        "tower_units": [32],
        "expert_units": [16],
        "text": {
            "vocabulary_size": 300,
            "hidden_dim": 16,
            "num_layers": 1,
            "num_heads": 2,
            "query_sequence_length": 6,
            "item_sequence_length": 8,
        },
    },
    "training": {
        "epochs": 2,
        "batch_size": 64,
        "verbose": 2,
        "log_every_steps": 10,
        "checkpoint_every_steps": 5,
        "early_stopping_patience": 0,
    },
    "evaluation": {"ks": [10, 50], "max_queries": 200},
    "export": {"enabled": False},
}


def tiny_config(**training):
    from tfrec.jobs.config import JobConfig

    data = json.loads(json.dumps(TINY))
    data["training"].update(training)
    return JobConfig.from_dict(data)


@pytest.fixture(scope="module")
def tiny_data():
    from tfrec.data.simulator import simulate
    from tfrec.data.split import time_split
    from tfrec.data.validation import validate

    config = tiny_config()
    sim = simulate(config.simulator)
    split = time_split(validate(sim.impressions, sim.schema()).valid, sim.schema())
    return sim.schema(), split


# ------------------------------------------------------------------ config
def test_training_config_rejects_unknown_keys_and_bad_values():
    from tfrec.jobs.config import JobConfig

    with pytest.raises(ValueError, match="lerning_rate"):
        JobConfig.from_dict({"training": {"lerning_rate": 0.1}})
    with pytest.raises(ValueError, match="training.mixed_precision"):
        JobConfig.from_dict({"training": {"mixed_precision": "fp8"}})
    with pytest.raises(ValueError, match="training.lr_schedule"):
        JobConfig.from_dict({"training": {"lr_schedule": "linear"}})
    with pytest.raises(ValueError, match="training.monitor"):
        JobConfig.from_dict({"training": {"monitor": "accuracy"}})


@pytest.mark.parametrize("name", ["quickstart", "multi_gpu", "multi_worker"])
def test_shipped_configs_load(name):
    from tfrec.jobs.config import JobConfig

    config = JobConfig.from_yaml(os.path.join(ROOT, "training", "configs", f"{name}.yaml"))
    assert config.training.batch_size >= 2


# ------------------------------------------------------------------ optimizer
def test_learning_rate_schedule_warms_up_then_decays():
    from tfrec.jobs.config import TrainingConfig
    from tfrec.training.optimizer import learning_rate_schedule

    cosine = learning_rate_schedule(TrainingConfig(learning_rate=1e-3, warmup_steps=10, lr_schedule="cosine"), 110)
    values = [float(cosine(s)) for s in (0, 5, 10, 60, 110)]
    assert values[0] < values[1] < values[2] == pytest.approx(1e-3)
    assert values[3] == pytest.approx(0.5e-3, rel=1e-3)  # half-way through the cosine
    assert values[4] == pytest.approx(0.0, abs=1e-9)
    constant = learning_rate_schedule(TrainingConfig(learning_rate=1e-3, warmup_steps=4), 100)
    assert float(constant(2)) < 1e-3 and float(constant(50)) == pytest.approx(1e-3)
    assert learning_rate_schedule(TrainingConfig(learning_rate=1e-3), 100) == 1e-3


def test_layerwise_adamw_scales_the_backbone_learning_rate():
    import keras

    from tfrec.training.optimizer import LayerwiseAdamW

    backbone = keras.Variable(np.zeros(4, "float32"), name="backbone")
    head = keras.Variable(np.zeros(4, "float32"), name="head")
    opt = LayerwiseAdamW(learning_rate=0.1, weight_decay=0.0)
    opt.scale_learning_rate([backbone], 0.1)
    grad = np.ones(4, "float32")
    opt.apply([grad, grad], [backbone, head])
    # Adam's first step moves every variable by ~lr regardless of the gradient scale.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head), -0.1, rtol=1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(backbone), -0.01, rtol=1e-3)
    with pytest.raises(RuntimeError, match="before the optimizer is built"):
        opt.scale_learning_rate([head], 0.5)


# ------------------------------------------------------------------ data position
def test_epoch_batches_resume_at_a_batch_and_reshuffle_per_epoch():
    from tfrec.training.epoch_data import EpochBatches

    x = {"id": np.arange(100).astype(str)}
    y = {"click": np.arange(100).astype("float32")}
    batches = EpochBatches((x, y), 100, global_batch_size=8, seed=5)
    assert batches.steps_per_epoch == 12

    def order(ds):
        return [tuple(b[1]["click"].numpy().astype(int)) for b in ds]

    full = order(batches.dataset(epoch=1))
    assert order(batches.dataset(epoch=1)) == full  # a pure function of (seed, epoch)
    assert order(batches.dataset(epoch=1, skip=7)) == full[7:]
    assert order(batches.dataset(epoch=2)) != full
    assert len({v for b in full for v in b}) == 96  # no row twice in an epoch
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochBatches((x, y), 100, global_batch_size=128)


def test_cluster_task_roles():
    from tfrec.training.cluster import cluster_task

    def env(cluster, task_type, index):
        return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})}

    workers = {"worker": ["a:1", "b:2", "c:3"]}
    assert cluster_task({}).is_chief
    assert cluster_task(env(workers, "worker", 0)).is_chief
    assert not cluster_task(env(workers, "worker", 2)).is_chief
    assert cluster_task(env(workers, "worker", 2)).num_workers == 3
    with_chief = {"chief": ["a:1"], "worker": ["b:2"]}
    assert cluster_task(env(with_chief, "chief", 0)).is_chief
    assert not cluster_task(env(with_chief, "worker", 0)).is_chief
    with pytest.raises(ValueError, match="TF_CONFIG.task"):
        cluster_task({"TF_CONFIG": json.dumps({"cluster": workers, "task": {}})})


# ------------------------------------------------------------------ the loop
def test_train_model_writes_the_run_directory(tiny_data, tmp_path):
    from tfrec.training import train_model

    schema, split = tiny_data
    config = tiny_config(early_stopping_patience=1)
    model, history = train_model(config, schema, split.train, split.valid, run_dir=str(tmp_path))
    for name in ("model.keras", "best.weights.h5", "history.csv", "training_state.json"):
        assert (tmp_path / name).exists(), name
    assert list((tmp_path / "tensorboard").iterdir()), "no TensorBoard events"
    assert len(list((tmp_path / "checkpoints").glob("epoch-*.index"))) == len(history.rows)
    assert not (tmp_path / "backup").exists()  # a finished job leaves no backup to resume from
    state = json.loads((tmp_path / "training_state.json").read_text())
    steps = len(split.train) // 64
    assert state["optimizer_steps"] == steps * len(history.rows)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert set(history.history) >= {"loss", "retrieval_loss", "ctr_loss", "val_loss", "learning_rate"}
    # The returned model lives outside any strategy and predicts.
    from tfrec.models.inference import predict_dataframe

    out = predict_dataframe(model, split.test.head(10), outputs=("ctr",))
    assert np.all((out["ctr"] > 0) & (out["ctr"] < 1))


def test_mixed_bfloat16_training_keeps_float32_outputs(tiny_data, tmp_path):
    import keras

    from tfrec.training import train_model

    schema, split = tiny_data
    config = tiny_config(
        epochs=1,
        mixed_precision="mixed_bfloat16",
        warmup_steps=5,
        lr_schedule="cosine",
        backbone_learning_rate_multiplier=0.1,
    )
    model, history = train_model(config, schema, split.train.head(1280), None, run_dir=str(tmp_path))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the job
    assert np.isfinite(history.history["loss"][0])
    out = model(model.dummy_features(4))
    for key in ("ctr", "score", "user_value", "query_embedding"):
        assert out[key].dtype == "float32", key


# ------------------------------------------------------------------ processes
def _train_command(config_path, out_dir):
    return [sys.executable, "-m", "tfrec.cli", "train", "--config", str(config_path), "--output-dir", str(out_dir)]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)


def _write_config(tmp_path, **training):
    data = json.loads(json.dumps(TINY))
    data["training"].update(training)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_sigkilled_job_resumes_to_the_same_weights_and_history(tmp_path):
    # tests/test_resume.py kills in-process runs at several points; this is a real SIGKILL of `tfrec train`.
    config = _write_config(tmp_path)
    straight = tmp_path / "straight"
    out = subprocess.run(
        _train_command(config, straight), capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env()
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    reference = json.loads((straight / "training_state.json").read_text())
    steps_per_epoch = reference["optimizer_steps"] // 2

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(
        _train_command(config, resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=_env()
    )
    killed_at = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        index = resumed / "backup" / "checkpoint"
        if index.exists():
            text = index.read_text()
            step = int(text.split("ckpt-")[1].split('"')[0]) if "ckpt-" in text else 0
            if step > steps_per_epoch and step % steps_per_epoch:  # mid-way through epoch 2
                proc.send_signal(signal.SIGKILL)
                killed_at = step
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert killed_at is not None, "the job finished or stalled before a mid-epoch backup"
    assert proc.returncode == -signal.SIGKILL
    assert not (resumed / "training_state.json").exists()

    out = subprocess.run(
        _train_command(config, resumed), capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env()
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "resumed from" in out.stdout
    state = json.loads((resumed / "training_state.json").read_text())
    assert state["optimizer_steps"] == reference["optimizer_steps"]
    assert state["epochs_completed"] == 2
    # The backup holds model, optimizer, data position, dropout's random state and the
    # epoch's running losses: the resumed job ends exactly as the uninterrupted one (CPU).
    assert state["weights_fingerprint"] == reference["weights_fingerprint"]
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((resumed / "metrics.json").read_text())
    assert len(b["history"]["loss"]) == 2  # the history has each epoch once
    for key, values in a["history"].items():
        if key not in ("seconds", "examples_per_second"):
            assert b["history"][key] == values, key
    assert b["ctr"]["model"]["auc"] == a["ctr"]["model"]["auc"]


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_writes(tmp_path):
    config = _write_config(tmp_path, epochs=1)
    out_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        os.path.join(ROOT, "training", "launch_local.py"),
        "--workers",
        "2",
        "--timeout",
        "500",
        "--",
    ] + _train_command(config, str(out_dir / "{task_index}"))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, env=_env())
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    fingerprints = {}
    for line in out.stdout.splitlines():
        if "weights fingerprint" in line:
            fingerprints[line.split("]")[0]] = line.rsplit(" ", 1)[-1]
    assert set(fingerprints) == {"[w0", "[w1"}, out.stdout[-3000:]
    assert fingerprints["[w0"] == fingerprints["[w1"]  # one model, all-reduced
    assert "2 replica(s)" in out.stdout
    assert (out_dir / "0" / "model.keras").exists() and (out_dir / "0" / "metrics.json").exists()
    assert not (out_dir / "1").exists(), "a non-chief worker wrote to its output directory"
    state = json.loads((out_dir / "0" / "training_state.json").read_text())
    assert state["replicas"] == 2 and state["global_batch_size"] == 128


def test_slurm_tf_config_names_every_node(tmp_path):
    # The Slurm variables of task 1 of a 2-node step; the resolver is TensorFlow's own.
    env = dict(
        _env(),
        SLURM_PROCID="1",
        SLURM_STEP_NUM_TASKS="2",
        SLURM_STEP_NODELIST="gpu-[1-2]",
        SLURM_STEP_TASKS_PER_NODE="1(x2)",
    )
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "training", "slurm", "tf_config.py"), "9000"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    config = json.loads(out.stdout.strip().splitlines()[-1])
    assert config == {"cluster": {"worker": ["gpu-1:9000", "gpu-2:9000"]}, "task": {"type": "worker", "index": 1}}


def test_local_launcher_stops_every_worker_when_one_fails():
    code = (
        "import json, os, sys, time; t = json.loads(os.environ['TF_CONFIG'])['task']; "
        "sys.exit(3) if t['index'] == 1 else time.sleep(60)"
    )
    start = time.time()
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "training", "launch_local.py"),
            "--workers",
            "2",
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 3, out.stdout
    assert "a worker failed" in out.stdout
    assert time.time() - start < 50  # worker 0 was stopped, not waited for
