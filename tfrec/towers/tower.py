"""`Tower`: what `QueryTower` and `ItemTower` share.

A tower encodes one side's features (an encoder for ids and attributes, and
optionally text), concatenates the parts in its compute dtype, runs an MLP and
projects to an L2-normalised `embedding_dim` vector. A subclass names its
sublayers and its text column, builds its parts in `call` and hands them to
`embed`; construction of the MLP and projection, `build`, `get_config` and
`from_config` live here once.

With `text_share` > 0 (a pretrained text encoder on both sides) the tower
starts from what the encoder knows: its embedding is
`[sqrt(a) * text / |text|, sqrt(1 - a) * learned]`, unit length, with
`a = sigmoid(logit)` a learned weight that starts at `text_share`. The dot
product of two such towers is `a_q a_i`-weighted encoder cosine plus the
learned towers' cosine, so before the first step the retrieval score ranks
(almost) as the encoder's zero-shot cosine does, and training moves the
weight where the data says. The embedding is then `embedding_dim +
text dimension` wide.

Example:

```python
batch = placeholder_features({"user_id": (None,), "user_tenure_days": (None, 1)}, ["user_tenure_days"])
merged = concat_in_compute_dtype([tf.ones([2, 3]), tf.ones([2, 2], "bfloat16")], "float32")   # [2, 5]
```
"""

from __future__ import annotations

import keras
import numpy as np
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

    def __init__(self, units=(128,), embedding_dim=64, dropout=0.0, text_share=0.0, **kwargs):
        # Inputs stay as given under a mixed-precision policy: the encoders
        # read float32 prices and counts; the MLP computes in the policy's dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.text_share = float(text_share)
        if not 0.0 <= self.text_share < 1.0:
            raise ValueError(f"{type(self).__name__}: text_share must be in [0, 1), got {text_share}")

    def _add_head(self):
        """The MLP and the projection, created after the encoders (the order Keras tracks them in)."""
        self.mlp = mlp(self.units, f"{self.side}_tower", self.dropout)
        self.projection = keras.layers.Dense(self.embedding_dim, name=f"{self.side}_embedding", dtype="float32")
        self.text_share_logit = None
        if self.text_share > 0:
            if self.text_encoder is None:
                raise ValueError(f"{type(self).__name__}: text_share > 0 needs a text encoder")
            share = self.text_share
            self.text_share_logit = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(float(np.log(share / (1.0 - share)))),
                name="text_share_logit",
                dtype="float32",
            )

    @property
    def output_dim(self) -> int:
        """Width of the embedding: `embedding_dim`, plus the text dimension with `text_share` > 0."""
        return self.embedding_dim + (self.text_encoder.output_dim if self.text_share_logit is not None else 0)

    def build(self, input_shape):
        # Keras records the first call's input shapes (`get_build_config`);
        # a reloaded tower builds from them.
        if not self.built:
            encoder = getattr(self, self.sublayers[0])
            self.call(placeholder_features(input_shape, encoder.numeric_columns))
        self.built = True

    def embed(self, parts, training=False, text=None):
        """`(hidden, embedding)` of the concatenated `parts`: the MLP's output and its normalised projection.

        `text`: the text encoder's vector, which the embedding carries as
        well when `text_share` > 0.
        """
        hidden = self.mlp(concat_in_compute_dtype(parts, self.compute_dtype), training=training)
        embedding = tf.math.l2_normalize(self.projection(hidden), axis=-1)
        if self.text_share_logit is not None:
            # float32 whatever the policy (a variable read under mixed precision may autocast).
            share = tf.sigmoid(tf.cast(self.text_share_logit, "float32"))
            text = tf.math.l2_normalize(tf.cast(text, "float32"), axis=-1)
            embedding = tf.concat(
                [tf.sqrt(share) * text, tf.sqrt(1.0 - share) * tf.cast(embedding, "float32")], axis=-1
            )
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
                "text_share": self.text_share,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_sublayers(config, cls.sublayers))
