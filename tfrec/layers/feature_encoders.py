"""Encoders of the user side and the item side features (everything but text).

`UserFeatureEncoder` turns a user's id, categorical and numeric attributes and
recent item history into vectors; `ItemFeatureEncoder` does the same for an
item's id, categorical attributes, price and numeric attributes. Both read the
feature dict keyed by the schema's column names.

Example:

```python
users = UserFeatureEncoder(id_column="user_id", id_vocabulary=["u1", "u2"],
                           categorical={"segment": ["new", "loyal"]}, numeric_columns=["tenure"],
                           numeric_stats={"mean": [2.0], "std": [1.0], "log_scale": [False]})
profile, id_vector = users({"user_id": tf.constant(["u1", "u7"]), "segment": tf.constant(["new", "x"]),
                            "tenure": tf.constant([1.0, 3.0])})
```
"""

import keras
import tensorflow as tf

from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.masked_mean_pooling import MaskedMeanPooling
from tfrec.layers.numeric_features import NumericFeatures


def _vocabulary(values):
    """A vocabulary argument as given: a list of ids, or its size (the ids then come from the saved assets)."""
    if isinstance(values, int):
        return values
    return list(values or [])


def _size(embedding):
    return len(embedding.vocabulary) if embedding is not None else 0


def _column(features, name):
    value = features[name]
    if value.shape.rank == 2 and value.shape[-1] == 1:
        value = tf.squeeze(value, -1)
    return value


class _AttributeEncoder(keras.layers.Layer):
    """Shared machinery: categorical embeddings and numeric scaling."""

    def __init__(
        self,
        categorical=None,
        numeric_columns=None,
        numeric_stats=None,
        embedding_dim=16,
        num_oov=8,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.categorical = {k: _vocabulary(v) for k, v in (categorical or {}).items()}
        self.numeric_columns = list(numeric_columns or [])
        self.numeric_stats = numeric_stats
        self.embedding_dim = int(embedding_dim)
        self.num_oov = int(num_oov)
        self.seed = seed
        self.categorical_embeddings = {
            name: self._embedding(vocab, f"{name}_embedding") for name, vocab in self.categorical.items()
        }
        self.numeric = None
        if self.numeric_columns:
            if not numeric_stats:
                raise ValueError(f"{self.name}: numeric_stats is required for numeric columns {self.numeric_columns}")
            self.numeric = NumericFeatures(**numeric_stats, name="numeric")

    def _embedding(self, vocabulary, name, **kwargs):
        """An `IdEmbedding` of `vocabulary` with this encoder's size, OOV buckets and seed."""
        return IdEmbedding(vocabulary, self.embedding_dim, num_oov=self.num_oov, seed=self.seed, name=name, **kwargs)

    def build(self, input_shape=None):
        for layer in self.categorical_embeddings.values():
            layer.build()
        self.built = True

    def attribute_vectors(self, features, training=False):
        parts = [
            self.categorical_embeddings[name](_column(features, name), training=training) for name in self.categorical
        ]
        if self.numeric is not None:
            values = tf.stack([tf.cast(_column(features, c), "float32") for c in self.numeric_columns], axis=-1)
            parts.append(self.numeric(values))
        return parts

    def _numeric_config(self):
        if self.numeric is None:
            return None
        numeric = self.numeric.get_config()  # column counts; the statistics are its asset
        return {k: numeric[k] for k in ("mean", "std", "log_scale")}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                # Sizes only: the vocabularies are assets of the embeddings.
                "categorical": {name: _size(layer) for name, layer in self.categorical_embeddings.items()},
                "numeric_columns": self.numeric_columns,
                "numeric_stats": self._numeric_config(),
                "embedding_dim": self.embedding_dim,
                "num_oov": self.num_oov,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfrec")
class UserFeatureEncoder(_AttributeEncoder):
    """User id, attributes and history to `(profile, id_vector)`.

    `profile` concatenates the attribute vectors and the mean embedding of the
    history items; it carries no user id, so the user-value head that reads it
    generalises to new users instead of memorising each user's label.
    `id_vector` is the user id embedding (zeros if the schema has no user id).

    Args:
        id_column, id_vocabulary: the user id column and its known ids.
        history_column, history_vocabulary: the history column and the item
            ids it may hold.
        id_dropout: share of user ids replaced by OOV in training.
        categorical, numeric_columns, numeric_stats, embedding_dim, num_oov:
            as `ItemFeatureEncoder`.
    """

    def __init__(
        self, id_column=None, id_vocabulary=None, history_column=None, history_vocabulary=None, id_dropout=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.id_column = id_column
        id_vocabulary = _vocabulary(id_vocabulary)
        self.history_column = history_column
        history_vocabulary = _vocabulary(history_vocabulary)
        self.id_dropout = float(id_dropout)
        self.id_embedding = None
        if id_column:
            self.id_embedding = self._embedding(id_vocabulary, "user_id_embedding", id_dropout=self.id_dropout)
        self.history_embedding = None
        if history_column:
            self.history_embedding = self._embedding(history_vocabulary, "history_embedding")
            self.history_pooling = MaskedMeanPooling(name="history_pooling")

    def build(self, input_shape=None):
        super().build(input_shape)
        for layer in (self.id_embedding, self.history_embedding):
            if layer is not None:
                layer.build()

    def call(self, features, training=False):
        parts = self.attribute_vectors(features, training=training)
        if self.history_embedding is not None:
            history = features[self.history_column]
            vectors = self.history_embedding(history, training=training)
            parts.append(self.history_pooling(vectors, tf.not_equal(history, "")))
        any_column = next(iter(features.values()))
        batch = tf.shape(any_column)[0]
        # Sublayers follow the global dtype policy; the parts meet in this
        # layer's dtype (float32 in tfrec models, also under mixed precision).
        profile = (
            tf.concat([tf.cast(p, self.compute_dtype) for p in parts], axis=-1)
            if parts
            else tf.zeros([batch, 1], self.compute_dtype)
        )
        if self.id_embedding is not None:
            id_vector = tf.cast(
                self.id_embedding(_column(features, self.id_column), training=training), self.compute_dtype
            )
        else:
            id_vector = tf.zeros([batch, self.embedding_dim], self.compute_dtype)
        return profile, id_vector

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "id_column": self.id_column,
                "id_vocabulary": _size(self.id_embedding),
                "history_column": self.history_column,
                "history_vocabulary": _size(self.history_embedding),
                "id_dropout": self.id_dropout,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tfrec")
class ItemFeatureEncoder(_AttributeEncoder):
    """Item id, categorical attributes, price and numerics to one vector.

    Args:
        id_column, id_vocabulary: the item id column and its known ids.
        price_column: the price column; its log is standardised with the
            other numeric columns (give it in `numeric_columns` too).
        id_dropout: share of item ids replaced by OOV in training, so that
            cold-start items are scored from their text and attributes.
        categorical: `{column: vocabulary}` of categorical attributes.
        numeric_columns: numeric columns, price included.
        numeric_stats: `NumericFeatures` arguments (mean, std, log_scale).
        embedding_dim: size of id and categorical embeddings.
        num_oov: hashed OOV buckets per column.
    """

    def __init__(self, id_column=None, id_vocabulary=None, price_column=None, id_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.id_column = id_column
        id_vocabulary = _vocabulary(id_vocabulary)
        self.price_column = price_column
        self.id_dropout = float(id_dropout)
        self.id_embedding = None
        if id_column:
            self.id_embedding = self._embedding(id_vocabulary, "item_id_embedding", id_dropout=self.id_dropout)

    def build(self, input_shape=None):
        super().build(input_shape)
        if self.id_embedding is not None:
            self.id_embedding.build()

    def item_index(self, features):
        """Vocabulary row of each item id (OOV buckets first)."""
        return self.id_embedding.index(_column(features, self.id_column))

    def call(self, features, training=False):
        parts = self.attribute_vectors(features, training=training)
        if self.id_embedding is not None:
            parts.insert(0, self.id_embedding(_column(features, self.id_column), training=training))
        return tf.concat([tf.cast(p, self.compute_dtype) for p in parts], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "id_column": self.id_column,
                "id_vocabulary": _size(self.id_embedding),
                "price_column": self.price_column,
                "id_dropout": self.id_dropout,
            }
        )
        return config
