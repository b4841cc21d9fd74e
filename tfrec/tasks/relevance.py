"""`RelevanceTask`: graded relevance of a (query, item) pair, regressed onto the label range.

The head maps the ranking input to `low + (high - low) * sigmoid(logit)`;
loss: mean squared error; metric: RMSE.

Example:

```python
task = RelevanceTask(relevance_range=(1.0, 3.0))
out = task(ranking_input)   # {"relevance": [batch] in [1, 3]}
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.tasks.task import Task


@keras.saving.register_keras_serializable(package="tfrec")
class RelevanceTask(Task):
    """Args: `relevance_range`: `(low, high)` of the graded labels."""

    label = "relevance"

    def __init__(self, relevance_range=(0.0, 1.0), name="relevance", **kwargs):
        super().__init__(name=name, **kwargs)
        self.relevance_range = tuple(float(v) for v in relevance_range)
        self.head = keras.layers.Dense(1, name="relevance", dtype="float32")
        self.rmse = keras.metrics.RootMeanSquaredError(name="relevance_rmse")

    def build(self, input_shape):
        self.head.build(input_shape)
        self.built = True

    def call(self, ranking_input):
        low, high = self.relevance_range
        raw = tf.reshape(self.head(ranking_input), [-1])
        return {"relevance": low + (high - low) * tf.sigmoid(raw)}

    def compute_loss(self, labels, outputs, features):
        return tf.reduce_mean(tf.square(outputs["relevance"] - tf.cast(labels["relevance"], "float32")))

    def update_metrics(self, labels, outputs):
        self.rmse.update_state(labels["relevance"], outputs["relevance"])

    def get_config(self):
        config = super().get_config()
        config.update({"relevance_range": list(self.relevance_range)})
        return config
