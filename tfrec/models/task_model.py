"""`TaskModel`: a Keras model composed of towers and tasks, with one loss path.

The model sums the weighted losses of its tasks (`weighted_losses`); Keras
`fit` (through `compute_loss`) and the resumable `tfrec.training.Trainer`
both call it, so both train the same objective. Each task updates its own
metrics. Subclasses implement `call` and list their tasks in `self.tasks`.

Per-row weights travel in the `y` dict (`y["sample_weight"]`, the schema's
`sample_weight` column; `tfrec.data.pipeline`), so `fit` and the `Trainer`
weight the same way; each task takes the weighted mean of its per-row losses
(`tfrec.losses.weighting`). With `ModelConfig.weight_by_inverse_propensity`
the weight is divided by `y["propensity"]`, clipped below at
`MIN_PROPENSITY` (`loss_labels`). A weight given to Keras `fit` as
`sample_weight` multiplies it.

Example:

```python
total, losses = model.weighted_losses(features, labels, model(features))   # what fit and Trainer minimise
assert sorted(losses) == sorted(model.task_names)
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.data.pipeline import PROPENSITY_KEY, SAMPLE_WEIGHT_KEY
from tfrec.models.config import ModelConfig
from tfrec.schema import FeatureSchema

#: Inverse propensity weights use `max(propensity, MIN_PROPENSITY)`: a row weighs at most 100x its sample weight.
MIN_PROPENSITY = 0.01


class TaskModel(keras.Model):
    """Base of tfrec models. Args: `schema`, `config` (`ModelConfig` or dicts), Keras model kwargs."""

    def __init__(self, schema, config, **kwargs):
        # Inputs stay as given (float32 prices, counts, positions) under a
        # mixed-precision policy; each sublayer casts what it computes on.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, FeatureSchema) else FeatureSchema.from_dict(schema)
        self.config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        if self.config.weight_by_inverse_propensity and not self.schema.propensity:
            raise ValueError(
                "model.weight_by_inverse_propensity: true needs the schema's 'propensity' column "
                "(the logging policy's probability of each row), but the schema maps none; "
                "map it (propensity: <column>) or set weight_by_inverse_propensity: false"
            )
        self.tasks = []

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def text_encoder(self):
        """The BERT `TextEncoder` of the model, or None (a model without text)."""
        return None

    def fit(self, *args, **kwargs):
        # Keras 3.15's `fit` under a strategy reduces a sample batch with MEAN,
        # which fails on string features (the code path of keras-team/keras#20585).
        if self.distribute_strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "model.fit under a tf.distribute strategy with more than one replica cannot take tfrec's string "
                "features; train with tfrec.training.Trainer (or tfrec.training.train_model / tfrec train), "
                "which runs under every strategy"
            )
        return super().fit(*args, **kwargs)

    def components(self) -> list:
        """The model's top-level layers (towers, tasks, ...): what an export tracks."""
        raise NotImplementedError

    # ---------------------------------------------------------------- build
    def dummy_features(self, batch_size=2):
        """A batch of placeholder features in the schema's input format."""
        from tfrec.data.pipeline import feature_spec

        out = {}
        for name, spec in feature_spec(self.schema).items():
            shape = [batch_size] + list(spec.shape[1:])
            out[name] = tf.fill(shape, "") if spec.dtype == tf.string else tf.ones(shape, spec.dtype)
        return out

    def build(self, input_shape=None):
        if self.built:
            return
        # Creating every weight needs one forward pass over a placeholder batch
        # (string and numeric columns: shapes alone cannot make one).
        self.call(self.dummy_features(), training=False)
        self.built = True

    def get_build_config(self):
        # Non-empty, or Keras skips build_from_config and loads weights into
        # an unbuilt model.
        return {"dummy_batch": True}

    def build_from_config(self, config):
        self.build()

    # ----------------------------------------------------------------- loss
    def task_inputs(self, x, y_pred):
        """What the tasks' losses read beyond `y_pred` (subclasses add e.g. item indices)."""
        return y_pred

    def loss_labels(self, y, sample_weight=None):
        """`y` with the per-row loss weight the tasks read (`y["sample_weight"]`; absent: every row weighs 1).

        The weight is the schema's `sample_weight` column, times Keras's
        `sample_weight` if `fit` was given one, divided by
        `max(propensity, MIN_PROPENSITY)` with `weight_by_inverse_propensity`.
        `y` comes back unchanged (the same object) when none of them applies.
        """
        y = y or {}
        if sample_weight is not None:
            if isinstance(sample_weight, (dict, list, tuple)):
                raise ValueError(
                    "TaskModel: sample_weight must be one [batch] array for every task, got a "
                    f"{type(sample_weight).__name__} (Keras makes one per label from a single array given with a "
                    f"dict y); put the weights in y['{SAMPLE_WEIGHT_KEY}'] or the schema's sample_weight column"
                )
            y = dict(y)
            weight = tf.reshape(tf.cast(sample_weight, "float32"), [-1])
            if SAMPLE_WEIGHT_KEY in y:
                weight = weight * tf.cast(y[SAMPLE_WEIGHT_KEY], "float32")
            y[SAMPLE_WEIGHT_KEY] = weight
        if self.config.weight_by_inverse_propensity and PROPENSITY_KEY in y:
            y = dict(y)
            inverse = 1.0 / tf.maximum(tf.cast(y[PROPENSITY_KEY], "float32"), MIN_PROPENSITY)
            if SAMPLE_WEIGHT_KEY in y:
                inverse = inverse * tf.cast(y[SAMPLE_WEIGHT_KEY], "float32")
            y[SAMPLE_WEIGHT_KEY] = inverse
        return y

    def task_losses(self, x, y, y_pred) -> dict:
        """Unweighted loss of each task whose label `y` holds, as a dict of scalars."""
        outputs = self.task_inputs(x, y_pred)
        return {t.name: t.compute_loss(y, outputs, x) for t in self.tasks if t.has_label(y)}

    def weighted_losses(self, x, y, y_pred, sample_weight=None):
        """`(total, losses)`: the weighted sum of the task losses (plus layer losses) and each task's loss.

        Each task's loss is the weighted mean over its rows of the per-row
        weights of `loss_labels(y, sample_weight)`.
        """
        losses = self.task_losses(x, self.loss_labels(y, sample_weight), y_pred)
        weights = self.config.loss_weights
        terms = [tf.cast(weights[k], "float32") * tf.cast(v, "float32") for k, v in losses.items()]
        terms += [tf.cast(v, "float32") for v in self.losses]
        total = tf.add_n(terms) if terms else tf.constant(0.0)
        return total, losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total, losses = self.weighted_losses(x, y, y_pred, sample_weight)
        for task in self.tasks:
            if task.name in losses:
                task.loss_tracker.update_state(losses[task.name])
        # Keras sums gradients over replicas and unscales the reported loss:
        # like its built-in losses, return this replica's share of the mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / replicas if replicas > 1 else total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        y = y or {}
        outputs = self.task_inputs(x, y_pred)  # what the losses read (e.g. the rows' item indices, categories)
        for task in self.tasks:
            if task.label is not None and task.has_label(y):
                task.update_metrics(y, outputs)
        return self.get_metrics_result()

    # ---------------------------------------------------------------- config
    def get_config(self):
        return {"name": self.name, "schema": self.schema.to_dict(), "config": self.config.to_dict()}
