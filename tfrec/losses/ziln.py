"""Zero-inflated lognormal (ZILN) loss for customer lifetime value.

Wang, Liu and Miao, "A Deep Probabilistic Model for Customer Lifetime Value
Prediction" (2019). The head emits three numbers per user: the logit of
P(value > 0), and the location `mu` and raw scale of a lognormal for the
positive part. The loss is the binary cross-entropy of "spends at all" plus,
for spenders, the lognormal negative log-likelihood of the amount. Written here
because neither keras-rs nor keras-hub has it.

Example:

```python
loss = ZeroInflatedLognormalLoss()
head_logits = tf.constant([[-1.0, 0.5, 0.2], [2.0, 2.4, 0.1]])   # P(spends) logit, mu, sigma
loss(y_true=[[0.0], [12.0]], y_pred=head_logits)
ziln_expected_value(head_logits)                    # E[value], [2]
```
"""

import math

import keras
import tensorflow as tf

_MIN_SCALE = math.sqrt(keras.config.epsilon())


def _split(logits):
    logits = tf.convert_to_tensor(logits, "float32")
    p_logit = logits[..., 0]
    loc = logits[..., 1]
    scale = tf.maximum(tf.nn.softplus(logits[..., 2]), _MIN_SCALE)
    return p_logit, loc, scale


def ziln_probability(logits):
    """P(value > 0) from `[..., 3]` ZILN logits."""
    return tf.sigmoid(_split(logits)[0])


def ziln_expected_value(logits):
    """E[value] = P(value > 0) * exp(mu + scale^2 / 2).

    The exponent is capped at 30 (about 1e13) so that an untrained head cannot
    overflow to inf.
    """
    p_logit, loc, scale = _split(logits)
    return tf.sigmoid(p_logit) * tf.exp(tf.minimum(loc + 0.5 * tf.square(scale), 30.0))


def ziln_loss_per_example(labels, logits):
    """Per-example ZILN loss; `labels` `[...]`, `logits` `[..., 3]`."""
    labels = tf.convert_to_tensor(labels, "float32")
    p_logit, loc, scale = _split(logits)
    labels = tf.reshape(labels, tf.shape(p_logit))
    positive = tf.cast(labels > 0, "float32")
    classification = tf.nn.sigmoid_cross_entropy_with_logits(labels=positive, logits=p_logit)
    safe = tf.where(labels > 0, labels, tf.ones_like(labels))
    log_safe = tf.math.log(safe)
    log_prob = (
        -log_safe
        - tf.math.log(scale)
        - 0.5 * math.log(2 * math.pi)
        - tf.square(log_safe - loc) / (2.0 * tf.square(scale))
    )
    return classification - positive * log_prob


@keras.saving.register_keras_serializable(package="tfrec")
class ZeroInflatedLognormalLoss(keras.losses.Loss):
    """ZILN loss: `y_true` non-negative values, `y_pred` `[batch, 3]` logits."""

    def __init__(self, name="ziln", reduction="sum_over_batch_size", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)

    def call(self, y_true, y_pred):
        return ziln_loss_per_example(tf.reshape(y_true, [-1]), tf.reshape(y_pred, [-1, 3]))
