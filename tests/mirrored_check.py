"""Run by tests/test_distribute.py in a fresh process: logical devices must be set before TF starts."""

import json
import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

if os.environ.get("TFREC_DEBUG"):
    keras.config.disable_traceback_filtering()
from tfrec.data.simulator import simulate  # noqa: E402
from tfrec.data.split import time_split  # noqa: E402
from tfrec.data.validation import validate  # noqa: E402
from tfrec.jobs.config import JobConfig  # noqa: E402
from tfrec.training import train_model  # noqa: E402

strategy, per_replica = sys.argv[1], int(sys.argv[2])
config = JobConfig.from_dict(
    {
        "simulator": {"num_users": 600, "num_items": 200, "num_sessions": 1500, "seed": 3},
        "model": {
            "embedding_dim": 16,
            "id_embedding_dim": 8,
            "tower_units": [32],
            "expert_units": [16],
            "dropout": 0.0,
            "id_dropout": 0.0,
            "text": {
                "vocabulary_size": 300,
                "hidden_dim": 16,
                "num_layers": 1,
                "num_heads": 2,
                "dropout": 0.0,
                "query_sequence_length": 6,
                "item_sequence_length": 8,
            },
        },
        "training": {
            "epochs": 2,
            "batch_size": per_replica,
            "strategy": strategy,
            "verbose": 0,
            "early_stopping_patience": 0,
            "value_holdout_fraction": 0.0,
        },
    }
)
sim = simulate(config.simulator)
rows = validate(sim.impressions, sim.schema()).valid
split = time_split(rows, sim.schema())
from tfrec.training import choose_strategy  # noqa: E402

strategy = choose_strategy(strategy)
model, history = train_model(config, sim.schema(), split.train, split.valid, strategy=strategy)
print(
    json.dumps(
        {
            "replicas": strategy.num_replicas_in_sync,
            "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        }
    )
)
