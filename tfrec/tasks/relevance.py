"""`RelevanceTask`: graded relevance of a (query, item) pair, regressed onto the label range.

The head maps the ranking input (and, with `start_from_score`, the
two-tower score) to `low + (high - low) * sigmoid(logit)`; loss: squared
error, the weighted mean over the rows (`sample_weight` in the labels; 1
without); metric: RMSE. `start_from_score` starts the head as
`sigmoid(SCORE_SLOPE * score)`: the untrained model ranks by the two-tower
score, which with a pretrained text encoder is (mostly) the encoder's
zero-shot cosine (`Tower.text_share`).

Example:

```python
task = RelevanceTask(relevance_range=(1.0, 3.0))
out = task(ranking_input)   # {"relevance": [batch] in [1, 3]}
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.losses.weighting import weighted_mean
from tfrec.tasks.task import SCORE_SLOPE, ScoreOnlyInitializer, Task, sample_weight


@keras.saving.register_keras_serializable(package="tfrec")
class RelevanceTask(Task):
    """Args: `relevance_range`: `(low, high)` of the graded labels; `start_from_score`: see the module."""

    label = "relevance"

    def __init__(self, relevance_range=(0.0, 1.0), start_from_score=False, name="relevance", **kwargs):
        super().__init__(name=name, **kwargs)
        self.relevance_range = tuple(float(v) for v in relevance_range)
        self.start_from_score = bool(start_from_score)
        kernel = ScoreOnlyInitializer(SCORE_SLOPE) if self.start_from_score else "glorot_uniform"
        self.head = keras.layers.Dense(1, kernel_initializer=kernel, name="relevance", dtype="float32")
        self.rmse = keras.metrics.RootMeanSquaredError(name="relevance_rmse")

    def build(self, ranking_input_shape, score_shape=None):
        shape = tuple(ranking_input_shape)
        if self.start_from_score:
            self.head.build(shape[:-1] + (shape[-1] + 1,))
        else:
            self.head.build(shape)
        self.built = True

    def call(self, ranking_input, score=None):
        low, high = self.relevance_range
        x = tf.cast(ranking_input, "float32")
        if self.start_from_score:
            if score is None:
                raise ValueError("RelevanceTask(start_from_score=True) needs the two-tower score")
            x = tf.concat([x, tf.reshape(tf.cast(score, "float32"), [-1, 1])], -1)
        raw = tf.reshape(self.head(x), [-1])
        return {"relevance": low + (high - low) * tf.sigmoid(raw)}

    def compute_loss(self, labels, outputs, features):
        per_row = tf.square(outputs["relevance"] - tf.cast(labels["relevance"], "float32"))
        return weighted_mean(per_row, sample_weight(labels))

    def update_metrics(self, labels, outputs):
        self.rmse.update_state(labels["relevance"], outputs["relevance"])

    def get_config(self):
        config = super().get_config()
        config.update({"relevance_range": list(self.relevance_range), "start_from_score": self.start_from_score})
        return config
