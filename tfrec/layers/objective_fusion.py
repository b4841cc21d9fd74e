"""`ObjectiveFusion`: one ranking score from predicted clicks, relevance, price and user value.

A ranking for the business weighs what the model predicts about a
(query, user, item) against what the item is worth. With the model's
predicted click probability `ctr` (at position 1), graded relevance
`relevance` (on `[0, relevance_max]`), the item's `price` (or margin) and the
user's predicted value `user_value`, the fused score is

    v = c * log(ctr) + r * relevance / relevance_max
        + p * log(price) + u * log(1 + user_value) * log(price)

with weights `c` (`click_weight`), `r` (`relevance_weight`), `p`
(`price_weight`) and `u` (`value_weight`). In the seed's terms
`v = a*q + b*i + c*b + d*a`: `log(ctr)` is the learnt query-user-item match
(intent and behaviour), `relevance` the query-item relevance, `log(price)` the
item attribute the business is paid by, and the last term the user's value
tilting that attribute. `c = 1, p = 0` ranks by expected clicks;
`c = 1, p = 1` ranks by `ctr * price`, the expected click-weighted revenue
(`tfrec.evaluation.business`); values between trade clicks for revenue.
Prices and values are clipped at `1e-6` below, so `log` stays finite.

Candidates for the ranking stage come from retrieval by the same objective
with the two-tower logit `score / temperature` (the in-batch softmax's
estimate of the log-probability of a click, up to a constant per query) in
place of `log(ctr)`: with `p > 0`, expensive items a click model would rank
well are retrieved too (`log_ctr` in `signals`).

Weights come from the config and can be overridden per row (the `rank`
signature's `*_weight` inputs): `call`'s `weights` maps a weight name to a
`[batch]` tensor.

Example:

```python
fusion = ObjectiveFusion(click_weight=1.0, price_weight=1.0)
v = fusion({"ctr": tf.constant([[0.1, 0.2]]), "price": tf.constant([[30.0, 10.0]])})
# log(0.1 * 30) > log(0.2 * 10): the first item ranks first
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

WEIGHTS = ("click_weight", "relevance_weight", "price_weight", "value_weight")
_FLOOR = 1e-6


@keras.saving.register_keras_serializable(package="tfrec")
class ObjectiveFusion(keras.layers.Layer):
    """Fuses ranking signals into `v` (see the module docstring).

    Args:
        click_weight, relevance_weight, price_weight, value_weight: the
            default weights `c`, `r`, `p`, `u`.
        relevance_max: the top of the relevance label's range.

    Call arguments:
        signals: dict of `[batch, candidates]` tensors `ctr` (or its log,
            `log_ctr`), and where their weight is used, `relevance` and
            `price`; `user_value` is `[batch]`.
        weights: optional dict of weight name -> `[batch]` (or scalar)
            overrides of the defaults.
    """

    def __init__(
        self,
        click_weight: float = 1.0,
        relevance_weight: float = 0.0,
        price_weight: float = 0.0,
        value_weight: float = 0.0,
        relevance_max: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not relevance_max > 0:
            raise ValueError(f"ObjectiveFusion: relevance_max must be > 0, got {relevance_max}")
        self.defaults = {
            "click_weight": float(click_weight),
            "relevance_weight": float(relevance_weight),
            "price_weight": float(price_weight),
            "value_weight": float(value_weight),
        }
        self.relevance_max = float(relevance_max)

    def weight_values(self, batch_size, weights=None):
        """Each weight as a `[batch, 1]` float32 column: the override where given, else the default."""
        weights = dict(weights or {})
        unknown = set(weights) - set(WEIGHTS)
        if unknown:
            raise ValueError(f"ObjectiveFusion: unknown weights {sorted(unknown)}; known: {list(WEIGHTS)}")
        out = {}
        for name in WEIGHTS:
            value = weights.get(name)
            if value is None:
                value = tf.fill([batch_size], self.defaults[name])
            value = tf.broadcast_to(tf.reshape(tf.cast(value, "float32"), [-1]), [batch_size])
            out[name] = value[:, None]
        return out

    def call(self, signals, weights=None):
        if "log_ctr" in signals:
            log_ctr = tf.cast(signals["log_ctr"], "float32")
        else:
            log_ctr = tf.math.log(tf.maximum(tf.cast(signals["ctr"], "float32"), _FLOOR))
        w = self.weight_values(tf.shape(log_ctr)[0], weights)
        v = w["click_weight"] * log_ctr
        if "relevance" in signals:
            v += w["relevance_weight"] * tf.cast(signals["relevance"], "float32") / self.relevance_max
        if "price" in signals:
            log_price = tf.math.log(tf.maximum(tf.cast(signals["price"], "float32"), _FLOOR))
            tilt = w["price_weight"]
            if "user_value" in signals:
                user_value = tf.maximum(tf.cast(tf.reshape(signals["user_value"], [-1, 1]), "float32"), 0.0)
                tilt += w["value_weight"] * tf.math.log1p(user_value)
            v += tilt * log_price
        return v

    def get_config(self):
        config = super().get_config()
        config.update({**self.defaults, "relevance_max": self.relevance_max})
        return config
