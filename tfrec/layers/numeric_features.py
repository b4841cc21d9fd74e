"""`NumericFeatures`: robust scaling of numeric columns, with missing flags.

Each column is optionally log-scaled (`log1p`, for prices and counts), then
standardised with the mean and standard deviation of the training data. A
missing value (NaN) becomes 0 (the mean) and raises its missing flag, so the
model can tell "unknown" from "average". The statistics are saved as an asset
(`statistics.json` in the `.keras` file); the JSON config holds only the
number of columns and which are log-scaled.

Example:

```python
layer = NumericFeatures.fit(np.array([[9.5], [12.0], [30.0]]), log_scale=[True])
layer(tf.constant([[12.5], [float("nan")]]))   # [2, 2]: value, missing flag
```
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

STATISTICS_ASSET = "statistics.json"


@keras.saving.register_keras_serializable(package="tfrec")
class NumericFeatures(keras.layers.Layer):
    """Standardises `[batch, n]` floats; output `[batch, 2n]` (values, missing flags).

    Args:
        mean: per-column mean after the optional log scaling (or the number
            of columns: the statistics then come from the saved assets).
        std: per-column standard deviation after the optional log scaling
            (or the number of columns).
        log_scale: per-column booleans: apply `log1p(max(x, 0))` first.
    """

    def __init__(self, mean, std, log_scale=None, **kwargs):
        super().__init__(**kwargs)
        self.mean = [0.0] * mean if isinstance(mean, int) else [float(m) for m in mean]
        self.std = [1.0] * std if isinstance(std, int) else [max(float(s), 1e-6) for s in std]
        n = len(self.mean)
        self.log_scale = [bool(v) for v in (log_scale or [False] * n)]
        if not (len(self.std) == len(self.log_scale) == n):
            raise ValueError("NumericFeatures: mean, std and log_scale must have the same length")

    @classmethod
    def fit(cls, values, log_scale=None, **kwargs):
        """Computes the scaling statistics from `[rows, n]` training values."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        log_scale = log_scale or [False] * values.shape[1]
        scaled = np.where(np.asarray(log_scale)[None, :], np.log1p(np.maximum(values, 0)), values)
        mean = np.nan_to_num(np.nanmean(scaled, axis=0)) if len(scaled) else np.zeros(values.shape[1])
        std = np.nan_to_num(np.nanstd(scaled, axis=0), nan=1.0) if len(scaled) else np.ones(values.shape[1])
        return cls(mean.tolist(), std.tolist(), log_scale, **kwargs)

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, STATISTICS_ASSET), "w", encoding="utf-8") as f:
            json.dump({"mean": self.mean, "std": self.std}, f)

    def load_assets(self, dir_path):
        path = os.path.join(dir_path, STATISTICS_ASSET)
        if not os.path.exists(path):  # saved when the statistics were in the config (they are then already set)
            return
        with open(path, encoding="utf-8") as f:
            stats = json.load(f)
        if len(stats["mean"]) != len(self.mean):
            raise ValueError(f"{self.name}: saved statistics of {len(stats['mean'])} columns, config {len(self.mean)}")
        self.mean = [float(m) for m in stats["mean"]]
        self.std = [float(s) for s in stats["std"]]

    def call(self, values):
        values = tf.cast(values, "float32")
        if values.shape.rank == 1:
            values = values[:, None]
        missing = tf.math.is_nan(values)
        logged = tf.math.log1p(tf.maximum(tf.where(missing, 0.0, values), 0.0))
        scaled = tf.where(tf.constant(self.log_scale)[None, :], logged, values)
        scaled = (scaled - tf.constant(self.mean, "float32")) / tf.constant(self.std, "float32")
        scaled = tf.where(missing, 0.0, scaled)
        return tf.concat([scaled, tf.cast(missing, "float32")], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * len(self.mean))

    def get_config(self):
        config = super().get_config()
        # Column counts only: the statistics are an asset (save_assets).
        config.update({"mean": len(self.mean), "std": len(self.std), "log_scale": self.log_scale})
        return config
