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

from tfrec.towers.tower import Tower


@keras.saving.register_keras_serializable(package="tfrec")
class QueryTower(Tower):
    """User features (+ query text) to a normalised embedding.

    Args:
        user_encoder: a `UserFeatureEncoder`.
        text_encoder: a `TextEncoder` for the query text, or None.
        query_text_column: the feature holding the query text (None: no text).
        units: hidden sizes of the MLP.
        embedding_dim: size of the output embedding.
        dropout: dropout after each hidden layer.
        text_share: with a pretrained text encoder, the share of the
            embedding (and so of the retrieval score) that starts as the
            encoder's own normalised vector (`Tower`); 0 = off.
    """

    sublayers = ("user_encoder", "text_encoder")
    text_column = "query_text_column"
    side = "query"

    def __init__(
        self,
        user_encoder,
        text_encoder=None,
        query_text_column=None,
        units=(128,),
        embedding_dim=64,
        dropout=0.0,
        text_share=0.0,
        **kwargs,
    ):
        super().__init__(units=units, embedding_dim=embedding_dim, dropout=dropout, text_share=text_share, **kwargs)
        self.user_encoder = user_encoder
        self.text_encoder = text_encoder if query_text_column else None
        self.query_text_column = query_text_column if text_encoder is not None else None
        self._add_head()

    def call(self, features, training=False):
        profile, id_vector = self.user_encoder(features, training=training)
        parts = [profile, id_vector]
        text = None
        if self.text_encoder is not None:
            text = self.text_encoder(tf.reshape(features[self.query_text_column], [-1]), training=training)
            parts.insert(0, text)
        hidden, embedding = self.embed(parts, training=training, text=text)
        return {"embedding": embedding, "hidden": hidden, "profile": profile}
