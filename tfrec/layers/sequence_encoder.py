"""`SequenceEncoder`: an ordered, padded sequence of item vectors to one vector (SASRec-style).

A user's history is a sequence of item vectors, most recent last, with
padding (`""` ids) masked out. The encoder adds a learned embedding of each
item's recency (0 for the most recent valid item, 1 for the one before, ...,
counted over valid items only, so left or right padding and its amount do not
matter), runs `num_layers` bidirectional (causal-free) keras-hub
`TransformerEncoder` blocks with the padding mask, and returns the state at
the most recent item (`pooling="last"`), the masked mean of the states
(`"mean"`), or both concatenated (`"last_mean"`). Unlike a mean of the
vectors, the output depends on the order of the items. An empty history gives
zeros.

Example:

```python
encoder = SequenceEncoder(max_length=5, num_layers=1, num_heads=2)
vectors = tf.random.stateless_normal([2, 5, 8], seed=[0, 1])
mask = tf.constant([[False, False, True, True, True], [False, False, False, False, False]])
encoder(vectors, mask)   # [2, 8]; the second row (no history) is zeros
```
"""

import keras
import keras_hub
import tensorflow as tf

POOLINGS = ("last", "mean", "last_mean")


@keras.saving.register_keras_serializable(package="tfrec")
class SequenceEncoder(keras.layers.Layer):
    """Item vectors `[B, L, d]` and a mask `[B, L]` to a sequence vector `[B, d]` (`[B, 2d]` for `"last_mean"`).

    Args:
        max_length: number of recency positions with their own embedding;
            older items share the last one (the schema's `history_length`).
        num_layers: Transformer blocks.
        num_heads: attention heads per block (key size `d // num_heads`).
        intermediate_dim: feed-forward size of each block (default `2 * d`).
        dropout: dropout of the input and inside the blocks (training only).
        pooling: `"last"` (the state at the most recent item), `"mean"`
            (masked mean of the states) or `"last_mean"` (both).
    """

    def __init__(
        self, max_length, num_layers=1, num_heads=2, intermediate_dim=None, dropout=0.1, pooling="last", **kwargs
    ):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceEncoder: pooling must be one of {POOLINGS}, got {pooling!r}")
        if int(max_length) < 1 or int(num_layers) < 1 or int(num_heads) < 1:
            raise ValueError(
                f"SequenceEncoder: max_length, num_layers and num_heads must be >= 1, "
                f"got {max_length}, {num_layers}, {num_heads}"
            )
        self.max_length = int(max_length)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.intermediate_dim = None if intermediate_dim is None else int(intermediate_dim)
        self.dropout = float(dropout)
        self.pooling = pooling

    def build(self, vectors_shape, mask_shape=None):
        dim = int(vectors_shape[-1])
        self.positions = keras.layers.Embedding(self.max_length, dim, name="recency_embedding")
        self.positions.build((None, None))
        self.input_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="input_norm")
        self.input_norm.build(vectors_shape)
        self.input_dropout = keras.layers.Dropout(self.dropout, name="input_dropout")
        self.blocks = []
        for i in range(self.num_layers):
            block = keras_hub.layers.TransformerEncoder(
                intermediate_dim=self.intermediate_dim or 2 * dim,
                num_heads=self.num_heads,
                dropout=self.dropout,
                activation="gelu",
                name=f"block_{i}",
            )
            block.build(vectors_shape)
            self.blocks.append(block)
        self.built = True

    def call(self, vectors, mask, training=False):
        mask = tf.cast(mask, "bool")
        valid = tf.cast(mask, "int32")
        # Valid items at or after each position, minus one: 0 at the most recent item.
        recency = tf.reverse(tf.cumsum(tf.reverse(valid, [1]), axis=1), [1]) - 1
        recency = tf.clip_by_value(recency, 0, self.max_length - 1)
        x = tf.cast(vectors, self.compute_dtype) + tf.cast(self.positions(recency), self.compute_dtype)
        x = self.input_dropout(self.input_norm(x), training=training)
        for block in self.blocks:
            x = block(x, padding_mask=mask, training=training)
        weights = tf.cast(mask, x.dtype)[..., None]
        parts = []
        if self.pooling in ("last", "last_mean"):
            is_last = tf.cast(tf.logical_and(mask, tf.equal(recency, 0)), x.dtype)[..., None]
            parts.append(tf.reduce_sum(x * is_last, axis=1))  # zeros where there is no valid item
        if self.pooling in ("mean", "last_mean"):
            parts.append(tf.reduce_sum(x * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0))
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)

    def compute_output_shape(self, vectors_shape, mask_shape=None):
        dim = vectors_shape[-1]
        if self.pooling == "last_mean" and dim is not None:
            dim = 2 * dim
        return tuple(vectors_shape[:-2]) + (dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_length": self.max_length,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config
