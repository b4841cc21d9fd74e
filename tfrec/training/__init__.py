"""Training: tf.distribute strategy selection (more of the training-jobs issue to come)."""

from tfrec.training.strategy import choose_strategy, num_workers_in_tf_config

__all__ = ["choose_strategy", "num_workers_in_tf_config"]
