"""`UserValueTask`: a user's future value (lifetime value) from the user profile.

Zero-inflated lognormal (Wang et al., 2019: P(spends), and the lognormal of
the amount) or MSE / Huber on the raw value. Labels given as NaN are withheld
(held-out users) and skipped: the loss is the weighted mean over the rows
with a known label (`sample_weight` in the labels; 1 without). The profile can be read detached: one user's
value label repeats on every row of that user, and letting it train shared
embeddings makes them memorise users. Metric: RMSE on known labels.

Example:

```python
task = UserValueTask(value_loss="ziln")
out = task(profile)   # {"value_logits", "user_value", "value_probability"}
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.layers.mlp import mlp
from tfrec.losses.weighting import weighted_mean
from tfrec.losses.ziln import ziln_expected_value, ziln_loss_per_example, ziln_probability
from tfrec.tasks.task import Task, masked_label, sample_weight

VALUE_LOSSES = ("ziln", "mse", "huber")


@keras.saving.register_keras_serializable(package="tfrec")
class UserValueTask(Task):
    """Args: `value_loss` (`"ziln"`, `"mse"`, `"huber"`), `detach_profile`, `units`, `dropout`."""

    label = "value"

    def __init__(self, value_loss="ziln", detach_profile=True, units=(64,), dropout=0.0, name="value", **kwargs):
        super().__init__(name=name, **kwargs)
        if value_loss not in VALUE_LOSSES:
            raise ValueError(f"UserValueTask: value_loss must be one of {VALUE_LOSSES}, got {value_loss!r}")
        self.value_loss = value_loss
        self.detach_profile = bool(detach_profile)
        self.units = [int(u) for u in units]
        self.dropout = float(dropout)
        self.tower = mlp(self.units, "value_tower", self.dropout)
        self.head = keras.layers.Dense(3 if value_loss == "ziln" else 1, name="value_logits", dtype="float32")
        self.rmse = keras.metrics.RootMeanSquaredError(name="value_rmse")

    def build(self, input_shape):
        self.tower.build(input_shape)
        self.head.build(self.tower.compute_output_shape(input_shape))
        self.built = True

    def call(self, profile, training=False):
        if self.detach_profile:
            profile = tf.stop_gradient(profile)
        raw = self.head(self.tower(profile, training=training))
        if self.value_loss == "ziln":
            return {
                "value_logits": raw,
                "user_value": ziln_expected_value(raw),
                "value_probability": ziln_probability(raw),
            }
        return {"value_logits": raw, "user_value": tf.reshape(raw, [-1])}

    def compute_loss(self, labels, outputs, features):
        label, known = masked_label(labels, "value")
        if self.value_loss == "ziln":
            per_row = ziln_loss_per_example(label, outputs["value_logits"])
        elif self.value_loss == "mse":
            per_row = tf.square(outputs["user_value"] - label)
        else:
            per_row = keras.losses.huber(label[:, None], outputs["user_value"][:, None], delta=1.0)
        return weighted_mean(tf.reshape(per_row, [-1]), sample_weight(labels), mask=known)

    def update_metrics(self, labels, outputs):
        label, known = masked_label(labels, "value")
        self.rmse.update_state(tf.boolean_mask(label, known), tf.boolean_mask(outputs["user_value"], known))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "value_loss": self.value_loss,
                "detach_profile": self.detach_profile,
                "units": self.units,
                "dropout": self.dropout,
            }
        )
        return config
