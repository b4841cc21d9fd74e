"""Training jobs: strategy choice, resumable custom loop, optimizer and schedule."""

from tfrec.training.cluster import ClusterTask, cluster_task
from tfrec.training.epoch_data import EpochBatches, StreamBatches
from tfrec.training.job import History, train_model, train_streaming
from tfrec.training.optimizer import LayerwiseAdamW, learning_rate_schedule, make_optimizer
from tfrec.training.strategy import choose_strategy, num_workers_in_tf_config
from tfrec.training.trainer import Trainer, weights_fingerprint

__all__ = [
    "ClusterTask",
    "EpochBatches",
    "History",
    "LayerwiseAdamW",
    "StreamBatches",
    "Trainer",
    "choose_strategy",
    "cluster_task",
    "learning_rate_schedule",
    "make_optimizer",
    "num_workers_in_tf_config",
    "train_model",
    "train_streaming",
    "weights_fingerprint",
]
