"""Choosing a `tf.distribute` strategy for a training job.

`auto` picks MultiWorkerMirroredStrategy when `TF_CONFIG` names several
workers, MirroredStrategy when the machine has several GPUs, and the default
strategy otherwise. The batch size in the config is per replica; the global
batch is `batch_size x strategy.num_replicas_in_sync`, and in-batch retrieval
negatives are gathered across replicas.

Example:

```python
strategy = choose_strategy("auto")
with strategy.scope():
    model = build_model(...)
```
"""

from __future__ import annotations

import os

import tensorflow as tf

from tfrec.training.cluster import cluster_task

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "one_device")


def num_workers_in_tf_config() -> int:
    """Workers `TF_CONFIG` names (0 when it is unset)."""
    if not os.environ.get("TF_CONFIG"):
        return 0
    return cluster_task().num_workers


def choose_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The strategy `name` asks for (`auto`, `default`, `mirrored`, `multi_worker`, `one_device`)."""
    if name not in STRATEGIES:
        raise ValueError(f"training.strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "auto":
        if num_workers_in_tf_config() > 1:
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MultiWorkerMirroredStrategy()
