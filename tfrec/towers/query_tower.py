"""`QueryTower`: the query/user side of the two-tower model.

Reads the query text (a keras-hub BERT `TextEncoder`, optional), the user's
attributes, id and recent items (`UserFeatureEncoder`), runs an MLP and
projects to an L2-normalised `embedding_dim` vector. The user profile (the
attribute and history vectors, no id) is returned too: the user-value task
reads it.

Example:

```python
tower = QueryTower(user_encoder, text_encoder, query_text_column=schema.query_text, units=[128],
                   embedding_dim=64)
out = tower(features)   # {"embedding": [B, 64], "hidden": [B, 128], "profile": [B, p]}
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.layers.mlp import mlp


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


@keras.saving.register_keras_serializable(package="tfrec")
class QueryTower(keras.layers.Layer):
    """User features (+ query text) to a normalised embedding.

    Args:
        user_encoder: a `UserFeatureEncoder`.
        text_encoder: a `TextEncoder` for the query text, or None.
        query_text_column: the feature holding the query text (None: no text).
        units: hidden sizes of the MLP.
        embedding_dim: size of the output embedding.
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        user_encoder,
        text_encoder=None,
        query_text_column=None,
        units=(128,),
        embedding_dim=64,
        dropout=0.0,
        **kwargs,
    ):
        # Inputs stay as given under a mixed-precision policy: the encoders
        # read float32 prices and counts; the MLP computes in the policy's dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.user_encoder = user_encoder
        self.text_encoder = text_encoder if query_text_column else None
        self.query_text_column = query_text_column if text_encoder is not None else None
        self.units = [int(u) for u in units]
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.mlp = mlp(self.units, "query_tower", self.dropout)
        self.projection = keras.layers.Dense(self.embedding_dim, name="query_embedding", dtype="float32")

    def build(self, input_shape):
        # Keras records the first call's input shapes (`get_build_config`);
        # a reloaded tower builds from them.
        if not self.built:
            self.call(placeholder_features(input_shape, self.user_encoder.numeric_columns))
        self.built = True

    def call(self, features, training=False):
        profile, id_vector = self.user_encoder(features, training=training)
        parts = [profile, id_vector]
        if self.text_encoder is not None:
            parts.insert(0, self.text_encoder(tf.reshape(features[self.query_text_column], [-1]), training=training))
        hidden = self.mlp(concat_in_compute_dtype(parts, self.compute_dtype), training=training)
        embedding = tf.math.l2_normalize(self.projection(hidden), axis=-1)
        return {"embedding": embedding, "hidden": hidden, "profile": profile}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "user_encoder": keras.saving.serialize_keras_object(self.user_encoder),
                "text_encoder": keras.saving.serialize_keras_object(self.text_encoder) if self.text_encoder else None,
                "query_text_column": self.query_text_column,
                "units": self.units,
                "embedding_dim": self.embedding_dim,
                "dropout": self.dropout,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("user_encoder", "text_encoder"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
