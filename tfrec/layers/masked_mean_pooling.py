"""`MaskedMeanPooling`: the mean of a padded sequence of vectors.

Example:

```python
pool = MaskedMeanPooling()
pool(keras.ops.ones((2, 5, 8)), keras.ops.ones((2, 5), "bool"))   # [B, L, D], [B, L] -> [B, D]
```
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfrec")
class MaskedMeanPooling(keras.layers.Layer):
    """Averages `[batch, length, dim]` vectors where `mask` is true; zeros if none."""

    def call(self, vectors, mask):
        weights = tf.cast(mask, vectors.dtype)[..., None]
        total = tf.reduce_sum(vectors * weights, axis=-2)
        count = tf.reduce_sum(weights, axis=-2)
        return total / tf.maximum(count, 1.0)

    def compute_output_shape(self, vectors_shape, mask_shape=None):
        return tuple(vectors_shape[:-2]) + tuple(vectors_shape[-1:])

    def get_config(self):
        return super().get_config()
