"""The optimizer of a training job: AdamW, warmup + decay, a smaller backbone rate.

Keras 3 has no per-variable learning rate (TF1's `MultiOptimizer` and
tensorflow-addons are gone), so `LayerwiseAdamW` scales the learning rate of
chosen variables inside `update_step`: the usual way to fine-tune a pretrained
BERT backbone more gently than freshly initialised heads.

Example:

```python
optimizer = make_optimizer(config.training, total_steps=10_000, model=model)
model.compile(optimizer=optimizer)   # or a custom loop: optimizer.apply(grads, vars)
```
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable("tfrec")
class LayerwiseAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is multiplied by a factor for some variables.

    Args:
        **kwargs: `keras.optimizers.AdamW` arguments.

    Call `scale_learning_rate(variables, factor)` before the optimizer is
    built. Decoupled weight decay still uses the base learning rate. The
    multipliers are not part of `get_config` (they name variables, not
    values): a restored optimizer gets them from `make_optimizer` again.

    Example:

    ```python
    opt = LayerwiseAdamW(learning_rate=1e-3)
    opt.scale_learning_rate(model.text_encoder.trainable_variables, 0.1)
    ```
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._factor_by_id = {}
        self._factor_by_update_target = {}

    def scale_learning_rate(self, variables, factor: float) -> None:
        if self.built:
            raise RuntimeError("scale_learning_rate must be called before the optimizer is built")
        if factor <= 0:
            raise ValueError(f"learning-rate multiplier must be > 0, got {factor}")
        for v in variables:
            self._factor_by_id[id(v)] = float(factor)

    def build(self, var_list):
        super().build(var_list)
        # `update_step` receives the backend variable (under a strategy, one
        # replica's copy), not the Keras variable: map every such object, found
        # through public APIs (`Variable.value`, `experimental_local_results`).
        strategy = tf.distribute.get_strategy()
        for v in var_list:
            factor = self._factor_by_id.get(id(v))
            if factor is None:
                continue
            targets = [v, getattr(v, "value", v)]
            targets += list(strategy.experimental_local_results(targets[-1]))
            for target in targets:
                self._factor_by_update_target[id(target)] = factor

    def update_step(self, gradient, variable, learning_rate):
        scale = self._factor_by_update_target.get(id(variable), 1.0)
        if scale != 1.0:
            learning_rate = learning_rate * scale
        return super().update_step(gradient, variable, learning_rate)


def learning_rate_schedule(training, total_steps: int):
    """The config's learning rate: constant, or linear warmup then cosine decay.

    `training.lr_schedule` is `constant` (after `warmup_steps` of linear
    warmup, if any) or `cosine` (warmup, then cosine decay to
    `training.min_learning_rate_ratio` of the peak at `total_steps`).
    """
    peak = training.learning_rate
    warmup = min(training.warmup_steps, max(total_steps - 1, 0))
    if training.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak / max(warmup, 1) if warmup else peak,
            decay_steps=max(total_steps - warmup, 1),
            alpha=training.min_learning_rate_ratio,
            warmup_target=peak if warmup else None,
            warmup_steps=warmup,
        )
    if warmup:
        # Linear warmup to the peak, then constant: CosineDecay with alpha=1.
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=peak / warmup,
            decay_steps=1,
            alpha=1.0,
            warmup_target=peak,
            warmup_steps=warmup,
        )
    return peak


def make_optimizer(training, total_steps: int, model=None):
    """`LayerwiseAdamW` with the config's schedule, clipping and backbone rate.

    With `model` and `training.backbone_learning_rate_multiplier != 1`, the
    text encoder's variables learn at that fraction of the rate. With
    `training.mixed_precision == "mixed_float16"` the optimizer is wrapped in
    Keras's `LossScaleOptimizer` (bfloat16 needs no loss scaling).
    """
    optimizer = LayerwiseAdamW(
        learning_rate=learning_rate_schedule(training, total_steps),
        weight_decay=training.weight_decay,
        clipnorm=training.clipnorm,
    )
    multiplier = training.backbone_learning_rate_multiplier
    encoder = getattr(model, "text_encoder", None) if model is not None else None
    if multiplier != 1.0 and encoder is not None:
        optimizer.scale_learning_rate(encoder.trainable_variables, multiplier)
    if training.mixed_precision == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
