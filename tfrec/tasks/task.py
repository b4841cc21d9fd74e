"""`Task`: the base of one training objective (its head, its loss, its metrics).

As in TFRS and keras-rs, a model is composed from towers and tasks: each task
turns tower outputs into its predictions (`call`), scores them against its
label (`compute_loss`) and keeps its own Keras metrics (`update_metrics`).
The model only sums the weighted task losses, so `fit` and the resumable
`Trainer` share one loss path (`TaskModel.weighted_losses`).

Subclasses set `label` (the key of the label in the `y` dict the data
pipeline yields, or None for a task that needs no label) and implement
`call`, `compute_loss` and `update_metrics`.

Per-row weights: the `y` dict may hold `"sample_weight"` (the schema's
`sample_weight` column, divided by the propensity where the model config asks
for it: `TaskModel.loss_labels`). Every task reduces its per-row losses with
`tfrec.losses.weighting.weighted_mean(per_row, sample_weight(labels), mask)`:
`sum(w * loss) / sum(w)` over the rows it has a label for. Without the key
every row weighs 1 and the loss is what it was unweighted, bit for bit.
Metrics stay unweighted.

Example:

```python
class SquaredClickError(Task):
    label = "click"

    def compute_loss(self, labels, outputs, features):
        return tf.reduce_mean(tf.square(labels["click"] - outputs["ctr"]))


task = SquaredClickError(name="click_error")
task.compute_loss({"click": tf.constant([1.0, 0.0])}, {"ctr": tf.constant([0.8, 0.1])}, None)   # 0.025
```
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfrec.data.pipeline import SAMPLE_WEIGHT_KEY


class Task(keras.layers.Layer):
    """One objective. Args: `name` (the task name: loss `"<name>_loss"`), Keras layer kwargs."""

    label: str | None = None

    def __init__(self, **kwargs):
        # Inputs stay as given under a mixed-precision policy (float32 scores,
        # positions, profiles); the heads compute in float32 themselves.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.loss_tracker = keras.metrics.Mean(name=f"{self.name}_loss")

    def has_label(self, labels) -> bool:
        """Whether `labels` (the `y` dict) holds what this task's loss needs."""
        return self.label is None or (labels is not None and self.label in labels)

    def compute_loss(self, labels, outputs, features):
        """Scalar loss of this task: the mean of its per-row losses weighted by `sample_weight(labels)`.

        Not multiplied by the task's `loss_weights` entry (the model does that).
        """
        raise NotImplementedError

    def update_metrics(self, labels, outputs) -> None:
        """Updates this task's metrics (beyond its loss tracker)."""


#: Logit slope of a head started from the score, per unit of cosine: 4 spans most of the sigmoid.
SCORE_SLOPE = 4.0


@keras.saving.register_keras_serializable(package="tfrec")
class ScoreOnlyInitializer(keras.initializers.Initializer):
    """Kernel `[inputs + 1, 1]` of zeros but its last row (the score's), `score_weight`.

    A head started this way ranks as the score does until training gives its
    other inputs weight (`CtrTask` / `RelevanceTask` `start_from_score`).

    Example:

    ```python
    ScoreOnlyInitializer(4.0)((3, 1))   # [[0], [0], [4]]
    ```
    """

    def __init__(self, score_weight=1.0):
        self.score_weight = float(score_weight)

    def __call__(self, shape, dtype=None):
        kernel = np.zeros(tuple(shape), np.float32)
        kernel[-1] = self.score_weight
        return tf.constant(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {"score_weight": self.score_weight}


def sample_weight(labels):
    """The `[batch]` float32 per-row loss weight in `labels` (the `y` dict), or None: every row weighs 1."""
    if not labels or SAMPLE_WEIGHT_KEY not in labels:
        return None
    return tf.reshape(tf.cast(labels[SAMPLE_WEIGHT_KEY], "float32"), [-1])


def masked_label(labels, key):
    """`(label, known)`: the float32 label with NaN (withheld) set to 0, and where it is known."""
    label = tf.cast(labels[key], "float32")
    known = tf.logical_not(tf.math.is_nan(label))
    return tf.where(known, label, 0.0), known
