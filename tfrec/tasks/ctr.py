"""`CtrTask`: P(click) with the position bias factored out (PAL).

P(click) = P(seen | position) * P(click | seen) (Guo et al., RecSys 2019):
`P(seen | position)` is learnt from logged positions (a per-position logit
starting at 0), `P(click | seen)` from the ranking input plus the two-tower
score (MLPs learn dot products poorly, Rendle et al., RecSys 2020). Scoring
without a position scores position 1. Loss: binary cross-entropy, the
weighted mean over the rows (`sample_weight` in the labels; 1 without);
metric: AUC.

Example:

```python
task = CtrTask(position_column="position", max_position=20)
out = task(ranking_input, score, features)   # {"ctr_logit", "ctr"}
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.losses.weighting import weighted_mean
from tfrec.tasks.task import SCORE_SLOPE, ScoreOnlyInitializer, Task, sample_weight


@keras.saving.register_keras_serializable(package="tfrec")
class CtrTask(Task):
    """Click-through rate of a (query, user, item) at a logged position.

    Args:
        position_column: the feature holding the logged position, or None.
        max_position: positions above it share the last position-bias slot.
        temperature: the two-tower score enters the head as `score / temperature`.
        start_from_score: the head starts from the two-tower score alone
            (`SCORE_SLOPE` per unit of cosine; the other inputs' weights at 0),
            so the untrained model ranks by the two-tower score: with a
            pretrained text encoder, by what the encoder knows
            (`Tower.text_share`).
    """

    label = "click"

    def __init__(
        self, position_column=None, max_position=20, temperature=0.05, start_from_score=False, name="ctr", **kwargs
    ):
        super().__init__(name=name, **kwargs)
        self.position_column = position_column
        self.max_position = int(max_position)
        self.temperature = float(temperature)
        self.start_from_score = bool(start_from_score)
        # Started: the logit moves SCORE_SLOPE per unit of cosine, as the relevance head's does.
        kernel = ScoreOnlyInitializer(SCORE_SLOPE * self.temperature) if self.start_from_score else "glorot_uniform"
        self.head = keras.layers.Dense(1, kernel_initializer=kernel, name="ctr_logit", dtype="float32")
        # Logit of P(seen | position); starts at 0 (P = 0.5) for every
        # position, where the sigmoid is not saturated and the curve can move.
        self.position_bias = keras.layers.Embedding(
            self.max_position + 1, 1, embeddings_initializer="zeros", name="position_bias", dtype="float32"
        )
        self.auc = keras.metrics.AUC(name="ctr_auc")

    def build(self, ranking_input_shape, score_shape=None, features_shape=None):
        self.head.build(tuple(ranking_input_shape[:-1]) + (ranking_input_shape[-1] + 1,))
        self.position_bias.build((None,))
        self.built = True

    def position(self, features, batch_size):
        """Logged position if given, else 1 (serving scores the top slot)."""
        if self.position_column and self.position_column in features:
            position = tf.reshape(tf.cast(features[self.position_column], "float32"), [-1])
            position = tf.where(tf.math.is_nan(position), 1.0, position)
            return tf.cast(tf.clip_by_value(position, 1, self.max_position), "int32")
        return tf.ones([batch_size], "int32")

    def call(self, ranking_input, score, features):
        scaled_score = score[:, None] / self.temperature
        click_if_seen = tf.reshape(self.head(tf.concat([tf.cast(ranking_input, "float32"), scaled_score], -1)), [-1])
        seen = tf.reshape(self.position_bias(self.position(features, tf.shape(score)[0])), [-1])
        # log P(click) and log P(no click) of P = sigmoid(seen) * sigmoid(click_if_seen).
        log_p = tf.math.log_sigmoid(click_if_seen) + tf.math.log_sigmoid(seen)
        log_not_p = tf.math.log(-tf.math.expm1(tf.minimum(log_p, -1e-7)))
        return {"ctr_logit": log_p - log_not_p, "ctr": tf.exp(log_p)}

    def compute_loss(self, labels, outputs, features):
        per_row = tf.nn.sigmoid_cross_entropy_with_logits(
            labels=tf.cast(labels["click"], "float32"), logits=outputs["ctr_logit"]
        )
        return weighted_mean(per_row, sample_weight(labels))

    def update_metrics(self, labels, outputs):
        self.auc.update_state(labels["click"], outputs["ctr"])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "position_column": self.position_column,
                "max_position": self.max_position,
                "temperature": self.temperature,
                "start_from_score": self.start_from_score,
            }
        )
        return config
