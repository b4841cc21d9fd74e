"""`Tower`: what `QueryTower` and `ItemTower` share.

A tower encodes one side's features (an encoder for ids and attributes, and
optionally text), concatenates the parts in its compute dtype, runs an MLP and
projects to an L2-normalised `embedding_dim` vector. A subclass names its
sublayers and its text column, builds its parts in `call` and hands them to
`embed`; construction of the MLP and projection, `build`, `get_config` and
`from_config` live here once.

Example:

```python
batch = placeholder_features({"user_id": (None,), "user_tenure_days": (None, 1)}, ["user_tenure_days"])
merged = concat_in_compute_dtype([tf.ones([2, 3]), tf.ones([2, 2], "bfloat16")], "float32")   # [2, 5]
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.layers.mlp import mlp
from tfrec.layers.serialization import deserialize_sublayers


def concat_in_compute_dtype(parts, dtype):
    """Concatenates float32 / bfloat16 / float16 parts in one compute dtype (mixed precision)."""
    return tf.concat([tf.cast(p, dtype) for p in parts], axis=-1)


def placeholder_features(input_shape, numeric_columns, batch_size=2):
    """A batch of placeholder features for `{column: shape}` (numeric columns float32, the rest strings).

    A tower builds its weights by calling itself on such a batch: its inputs
    are a dict of string and numeric columns, which Keras's shape-only
    `build(input_shape)` cannot create from shapes alone.
    """
    numeric = set(numeric_columns)
    out = {}
    for name, shape in input_shape.items():
        shape = [batch_size] + [d if d is not None else 1 for d in list(shape)[1:]]
        out[name] = tf.ones(shape, "float32") if name in numeric else tf.fill(shape, "")
    return out


class Tower(keras.layers.Layer):
    """Base of the towers: MLP + normalised projection, build, config.

    Subclasses set `sublayers` (the constructor arguments that are layers,
    the feature encoder first), `text_column` (the attribute naming the text
    feature) and `side` (the name prefix of the MLP and projection), assign
    their encoders, then call `_add_head()`.

    Args:
        units: hidden sizes of the MLP.
        embedding_dim: size of the output embedding.
        dropout: dropout after each hidden layer.
    """

    sublayers: tuple[str, ...] = ()
    text_column = ""
    side = ""

    def __init__(self, units=(128,), embedding_dim=64, dropout=0.0, **kwargs):
        # Inputs stay as given under a mixed-precision policy: the encoders
        # read float32 prices and counts; the MLP computes in the policy's dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)

    def _add_head(self):
        """The MLP and the projection, created after the encoders (the order Keras tracks them in)."""
        self.mlp = mlp(self.units, f"{self.side}_tower", self.dropout)
        self.projection = keras.layers.Dense(self.embedding_dim, name=f"{self.side}_embedding", dtype="float32")

    def build(self, input_shape):
        # Keras records the first call's input shapes (`get_build_config`);
        # a reloaded tower builds from them.
        if not self.built:
            encoder = getattr(self, self.sublayers[0])
            self.call(placeholder_features(input_shape, encoder.numeric_columns))
        self.built = True

    def embed(self, parts, training=False):
        """`(hidden, embedding)` of the concatenated `parts`: the MLP's output and its normalised projection."""
        hidden = self.mlp(concat_in_compute_dtype(parts, self.compute_dtype), training=training)
        embedding = tf.math.l2_normalize(self.projection(hidden), axis=-1)
        return hidden, embedding

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        for key in self.sublayers:
            layer = getattr(self, key)
            config[key] = serialize(layer) if layer else None
        config.update(
            {
                self.text_column: getattr(self, self.text_column),
                "units": self.units,
                "embedding_dim": self.embedding_dim,
                "dropout": self.dropout,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_sublayers(config, cls.sublayers))
