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

from tfrec.towers.tower import Tower


@keras.saving.register_keras_serializable(package="tfrec")
class ItemTower(Tower):
    """Item features (+ title) to a normalised embedding.

    Args:
        item_encoder: an `ItemFeatureEncoder`.
        text_encoder: a `TextEncoder` for titles (shared with the query
            tower in `TwoTowerModel`), or None.
        title_encoder: a light title encoder (`BagOfWordsEncoder`) used
            instead of `text_encoder`, or None.
        item_text_column: the feature holding the title (None: no title).
        units, embedding_dim, dropout, text_share: as `QueryTower`.
    """

    sublayers = ("item_encoder", "text_encoder", "title_encoder")
    text_column = "item_text_column"
    side = "item"

    def __init__(
        self,
        item_encoder,
        text_encoder=None,
        title_encoder=None,
        item_text_column=None,
        units=(128,),
        embedding_dim=64,
        dropout=0.0,
        text_share=0.0,
        **kwargs,
    ):
        super().__init__(units=units, embedding_dim=embedding_dim, dropout=dropout, text_share=text_share, **kwargs)
        if text_encoder is not None and title_encoder is not None:
            raise ValueError("ItemTower: give text_encoder or title_encoder, not both")
        self.item_encoder = item_encoder
        self.text_encoder = text_encoder if item_text_column else None
        self.title_encoder = title_encoder if item_text_column else None
        self.item_text_column = item_text_column if (text_encoder or title_encoder) is not None else None
        self._add_head()

    def item_index(self, features):
        """Vocabulary row of each item id (OOV buckets first), or None when items have no id."""
        if self.item_encoder.id_embedding is None:
            return None
        return self.item_encoder.item_index(features)

    def call(self, features, training=False):
        parts = [self.item_encoder(features, training=training)]
        text = None
        if self.text_encoder is not None:
            text = self.text_encoder(tf.reshape(features[self.item_text_column], [-1]), training=training)
            parts.insert(0, text)
        elif self.title_encoder is not None:
            parts.insert(0, self.title_encoder(features[self.item_text_column]))
        hidden, embedding = self.embed(parts, training=training, text=text)
        return {"embedding": embedding, "hidden": hidden}
