#!/usr/bin/env python
"""Prints this Slurm task's TF_CONFIG (one worker per task; task 0 is the chief).

Uses TensorFlow's SlurmClusterResolver (reads SLURM_* variables and
`scontrol show hostnames`). Run inside `srun`, see `train.sbatch`.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

port_base = int(sys.argv[1]) if len(sys.argv) > 1 else 8888
# auto_set_gpu=False: each worker uses all of its node's GPUs (the GPU counts
# given here only feed CUDA_VISIBLE_DEVICES, which is not set; no nvidia-smi).
resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
    port_base=port_base, gpus_per_node=1, gpus_per_task=1, auto_set_gpu=False
)
print(
    json.dumps(
        {"cluster": resolver.cluster_spec().as_dict(), "task": {"type": resolver.task_type, "index": resolver.task_id}}
    )
)
