"""The one reduction of per-row losses: the weighted mean over the batch.

Every task loss reduces its per-row losses with `weighted_mean`:
`sum(w * loss) / sum(w)` over the rows, `w` the row's sample weight times a
0/1 `mask` (the rows the loss is defined on: a known label, a positive pair).
A row of weight 0 is the same as no row; a row of integer weight `k` is the
same as `k` copies of it (for losses of one row each). A batch whose weights
sum to 0 has loss 0. Without a weight the reduction is exactly today's:
`reduce_mean` without a mask, `sum(mask * loss) / max(sum(mask), 1)` with one;
weights of 1 give the same numbers bit for bit (`mean(w * loss) / mean(w)` is
`mean(loss)` when every `w` is 1). Under a `tf.distribute` strategy each replica
takes the weighted mean of its own rows, as it takes the plain mean.

Example:

```python
per_row = tf.constant([1.0, 2.0, 3.0])
weighted_mean(per_row)                                   # 2.0
weighted_mean(per_row, weight=tf.constant([0.0, 1.0, 3.0]))   # (2 + 9) / 4 = 2.75
weighted_mean(per_row, mask=tf.constant([True, True, False]))   # 1.5
```
"""

from __future__ import annotations

import tensorflow as tf


def weighted_mean(per_row, weight=None, mask=None):
    """`sum(w * per_row) / sum(w)`, `w = weight * mask` (a missing one is 1); 0 where `sum(w)` is 0.

    Args:
        per_row: `[batch]` losses.
        weight: `[batch]` non-negative sample weights, or None (every row 1).
        mask: `[batch]` 0/1 (or bool) rows the loss counts, or None (all).
    """
    per_row = tf.convert_to_tensor(per_row)
    if mask is not None:
        mask = tf.cast(tf.reshape(mask, [-1]), per_row.dtype)
    if weight is None:
        if mask is None:
            return tf.reduce_mean(per_row)
        return tf.reduce_sum(per_row * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
    weight = tf.cast(tf.reshape(weight, [-1]), per_row.dtype)
    if mask is None:
        # The mean form: with every weight 1 this is `reduce_mean(per_row)` exactly.
        return tf.math.divide_no_nan(tf.reduce_mean(per_row * weight), tf.reduce_mean(weight))
    weight = weight * mask
    return tf.math.divide_no_nan(tf.reduce_sum(per_row * weight), tf.reduce_sum(weight))
