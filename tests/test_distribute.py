"""tf.distribute: MirroredStrategy over 2 logical CPU devices vs one device."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def run_check(strategy, per_replica_batch):
    # A fresh process: logical devices must be configured before TF starts.
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "mirrored_check.py"), strategy, str(per_replica_batch)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=os.path.dirname(HERE),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mirrored_two_replicas_reaches_the_single_device_loss():
    single = run_check("default", 256)
    mirrored = run_check("mirrored", 128)  # the same global batch of 256
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    # Tolerance: 3% relative after 2 epochs (float summation order differs
    # between one device and two; in-batch negatives span both replicas).
    for key in ("loss", "retrieval_loss", "ctr_loss", "val_loss"):
        a, b = single["history"][key][-1], mirrored["history"][key][-1]
        assert b == pytest.approx(a, rel=0.03), (key, a, b)
    # Training made progress in both.
    assert mirrored["history"]["loss"][-1] < mirrored["history"]["loss"][0]


def test_cross_replica_negatives_equal_the_global_batch_loss():
    code = r"""
import os, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from tfrec.losses.retrieval import InBatchSoftmaxRetrievalLoss
rng = np.random.default_rng(0)
q = tf.math.l2_normalize(tf.constant(rng.normal(size=(8, 4)), tf.float32), -1)
i = tf.math.l2_normalize(tf.constant(rng.normal(size=(8, 4)), tf.float32), -1)
ids = tf.constant([1, 2, 3, 1, 5, 6, 7, 8], tf.int64)
prob = tf.constant(rng.uniform(0.1, 0.5, 8), tf.float32)
layer = InBatchSoftmaxRetrievalLoss(temperature=0.1)
full = float(layer(q, i, ids, prob))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((q, i, ids, prob)).batch(8))
batch = next(iter(dist))
per_replica = strategy.run(tf.function(lambda *a: layer(*a)), args=batch)
print(json.dumps({"full": full, "mirrored": float(strategy.reduce("MEAN", per_replica, axis=None))}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=os.path.dirname(HERE)
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mirrored"] == pytest.approx(result["full"], rel=1e-5)


def test_strategy_choice(monkeypatch):
    from tfrec.training.strategy import choose_strategy, num_workers_in_tf_config

    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}})
    )
    assert num_workers_in_tf_config() == 2
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        num_workers_in_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    assert num_workers_in_tf_config() == 0
    assert choose_strategy("auto").num_replicas_in_sync == 1  # one CPU, no cluster
    with pytest.raises(ValueError, match="training.strategy"):
        choose_strategy("horovod")


def test_fit_under_two_replicas_says_to_use_the_trainer():
    """Keras fit cannot take string features under a 2-replica strategy: a clear error, not a Keras traceback."""
    code = r"""
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tfrec.data.pipeline import dataset_from_dataframe
from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.data.validation import validate
from tfrec.models import ModelConfig, build_model
sim = simulate(SimulatorConfig(num_users=60, num_items=30, num_sessions=40, seed=1))
df = validate(sim.impressions, sim.schema()).valid
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    config = ModelConfig(embedding_dim=8, id_embedding_dim=4, tower_units=[8], use_text=False)
    model = build_model(sim.schema(), config, df)
    model.compile(optimizer="adam")
try:
    model.fit(dataset_from_dataframe(df, sim.schema(), batch_size=16).take(1), verbose=0)
except ValueError as e:
    print("ERROR", e)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=os.path.dirname(HERE)
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ERROR model.fit under a tf.distribute strategy" in out.stdout and "Trainer" in out.stdout
