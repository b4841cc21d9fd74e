"""`ItemTower`: the item side of the two-tower model.

Reads the item's id, attributes and price (`ItemFeatureEncoder`) and its
title, either through a BERT `TextEncoder` (usually the query tower's, shared)
or a light `BagOfWordsEncoder`, runs an MLP and projects to an L2-normalised
`embedding_dim` vector whose dot product with the query embedding is the
retrieval score.

Example:

```python
tower = ItemTower(item_encoder, text_encoder, item_text_column=schema.item_text, units=[128], embedding_dim=64)
out = tower(features)   # {"embedding": [B, 64], "hidden": [B, 128]}
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.layers.mlp import mlp
from tfrec.towers.query_tower import concat_in_compute_dtype, placeholder_features


@keras.saving.register_keras_serializable(package="tfrec")
class ItemTower(keras.layers.Layer):
    """Item features (+ title) to a normalised embedding.

    Args:
        item_encoder: an `ItemFeatureEncoder`.
        text_encoder: a `TextEncoder` for titles (shared with the query
            tower in `TwoTowerModel`), or None.
        title_encoder: a light title encoder (`BagOfWordsEncoder`) used
            instead of `text_encoder`, or None.
        item_text_column: the feature holding the title (None: no title).
        units, embedding_dim, dropout: as `QueryTower`.
    """

    def __init__(
        self,
        item_encoder,
        text_encoder=None,
        title_encoder=None,
        item_text_column=None,
        units=(128,),
        embedding_dim=64,
        dropout=0.0,
        **kwargs,
    ):
        # Inputs stay as given under a mixed-precision policy: the encoders
        # read float32 prices and counts; the MLP computes in the policy's dtype.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if text_encoder is not None and title_encoder is not None:
            raise ValueError("ItemTower: give text_encoder or title_encoder, not both")
        self.item_encoder = item_encoder
        self.text_encoder = text_encoder if item_text_column else None
        self.title_encoder = title_encoder if item_text_column else None
        self.item_text_column = item_text_column if (text_encoder or title_encoder) is not None else None
        self.units = [int(u) for u in units]
        self.embedding_dim = int(embedding_dim)
        self.dropout = float(dropout)
        self.mlp = mlp(self.units, "item_tower", self.dropout)
        self.projection = keras.layers.Dense(self.embedding_dim, name="item_embedding", dtype="float32")

    def item_index(self, features):
        """Vocabulary row of each item id (OOV buckets first), or None when items have no id."""
        if self.item_encoder.id_embedding is None:
            return None
        return self.item_encoder.item_index(features)

    def build(self, input_shape):
        if not self.built:
            self.call(placeholder_features(input_shape, self.item_encoder.numeric_columns))
        self.built = True

    def call(self, features, training=False):
        parts = [self.item_encoder(features, training=training)]
        if self.text_encoder is not None:
            parts.insert(0, self.text_encoder(tf.reshape(features[self.item_text_column], [-1]), training=training))
        elif self.title_encoder is not None:
            parts.insert(0, self.title_encoder(features[self.item_text_column]))
        hidden = self.mlp(concat_in_compute_dtype(parts, self.compute_dtype), training=training)
        embedding = tf.math.l2_normalize(self.projection(hidden), axis=-1)
        return {"embedding": embedding, "hidden": hidden}

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            {
                "item_encoder": serialize(self.item_encoder),
                "text_encoder": serialize(self.text_encoder) if self.text_encoder else None,
                "title_encoder": serialize(self.title_encoder) if self.title_encoder else None,
                "item_text_column": self.item_text_column,
                "units": self.units,
                "embedding_dim": self.embedding_dim,
                "dropout": self.dropout,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("item_encoder", "text_encoder", "title_encoder"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
