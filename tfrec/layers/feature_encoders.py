"""Encoders of the user side and the item side features (everything but text).

`UserFeatureEncoder` turns a user's id, categorical and numeric attributes and
recent item history into vectors; `ItemFeatureEncoder` does the same for an
item's id, categorical attributes, price and numeric attributes. Both read the
feature dict keyed by the schema's column names.

The history is the mean of its items' embeddings by default, or an ordered
`SequenceEncoder` of them; its items can be embedded with the item encoder's
own id embedding (one `IdEmbedding` given to both), so that a candidate and
the same item in a history share one vector. Keras's `.keras` saving keeps
such a shared layer shared.

Example:

```python
users = UserFeatureEncoder(id_column="user_id", id_vocabulary=["u1", "u2"],
                           categorical={"segment": ["new", "loyal"]}, numeric_columns=["tenure"],
                           numeric_stats={"mean": [2.0], "std": [1.0], "log_scale": [False]})
profile, id_vector = users({"user_id": tf.constant(["u1", "u7"]), "segment": tf.constant(["new", "x"]),
                            "tenure": tf.constant([1.0, 3.0])})

from tfrec.layers.sequence_encoder import SequenceEncoder

item_ids = IdEmbedding(["i1", "i2", "i3"], output_dim=16, name="item_id_embedding")   # one table for both
items = ItemFeatureEncoder(id_column="item_id", id_embedding=item_ids)
users = UserFeatureEncoder(history_column="history", history_embedding=item_ids,
                           history_encoder=SequenceEncoder(max_length=4))
profile, _ = users({"history": tf.constant([["", "i1", "i3", "i2"], ["", "", "", ""]])})   # [2, 16]
```
"""

import keras
import tensorflow as tf

from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.masked_mean_pooling import MaskedMeanPooling
from tfrec.layers.numeric_features import NumericFeatures
from tfrec.layers.serialization import deserialize_sublayers


def _vocabulary(values):
    """A vocabulary argument as given: a list of ids, or its size (the ids then come from the saved assets)."""
    if isinstance(values, int):
        return values
    return list(values or [])


def _size(embedding):
    return len(embedding.vocabulary) if embedding is not None else 0


def _serialize(layer):
    return keras.saving.serialize_keras_object(layer) if layer is not None else None


def _serialize_shared(layer):
    """The config of a layer that two encoders hold, marked so that loading makes one layer for both.

    Keras's `.keras` loading (inside its object sharing scope) deserialises a
    config with a `shared_object_id` once and returns that object wherever the
    same id appears again. Keras marks shared objects itself only where their
    configs are not copied afterwards; the towers' configs are, so the mark is
    set here, on both sides.
    """
    return {**keras.saving.serialize_keras_object(layer), "shared_object_id": id(layer)}


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

    `profile` concatenates the attribute vectors and the history vector; it
    carries no user id, so the user-value head that reads it generalises to
    new users instead of memorising each user's label. `id_vector` is the
    user id embedding (zeros if the schema has no user id).

    Args:
        id_column, id_vocabulary: the user id column and its known ids.
        history_column, history_vocabulary: the history column (`[B, L]` item
            ids, most recent last, padded with `""`) and the item ids it may
            hold (its own id table; unused with `history_embedding`).
        id_dropout: share of user ids replaced by OOV in training.
        history_embedding: an `IdEmbedding` to embed the history's items
            with instead of an own table: the item encoder's `id_embedding`,
            so that history items and candidates share their id vectors.
        history_encoder: a layer `(vectors [B, L, d], mask [B, L]) -> [B, d']`
            for the history, e.g. a `SequenceEncoder`; default: the masked
            mean of the item vectors (`MaskedMeanPooling`, order-blind).
        categorical, numeric_columns, numeric_stats, embedding_dim, num_oov:
            as `ItemFeatureEncoder`.
    """

    def __init__(
        self,
        id_column=None,
        id_vocabulary=None,
        history_column=None,
        history_vocabulary=None,
        id_dropout=0.0,
        history_embedding=None,
        history_encoder=None,
        **kwargs,
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
        self.history_encoder = None
        self.shares_history_embedding = history_column is not None and history_embedding is not None
        if history_column:
            if history_embedding is None:
                history_embedding = self._embedding(history_vocabulary, "history_embedding")
            self.history_embedding = history_embedding
            self.history_encoder = history_encoder
            if history_encoder is None:
                self.history_pooling = MaskedMeanPooling(name="history_pooling")

    def build(self, input_shape=None):
        super().build(input_shape)
        for layer in (self.id_embedding, self.history_embedding):
            if layer is not None:
                layer.build()

    def history_vector(self, history, training=False):
        """The history's vector: `[B, L]` item ids (most recent last, `""` padding) to `[B, d']`."""
        vectors = self.history_embedding(history, training=training)
        mask = tf.not_equal(history, "")
        if self.history_encoder is None:
            return self.history_pooling(vectors, mask)
        return self.history_encoder(vectors, mask, training=training)

    def call(self, features, training=False):
        parts = self.attribute_vectors(features, training=training)
        if self.history_embedding is not None:
            parts.append(self.history_vector(features[self.history_column], training=training))
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
                "history_vocabulary": 0 if self.shares_history_embedding else _size(self.history_embedding),
                "id_dropout": self.id_dropout,
                # A shared table is serialised here and by its other user (the item
                # encoder); `.keras` loading restores one layer for both.
                "history_embedding": _serialize_shared(self.history_embedding)
                if self.shares_history_embedding
                else None,
                "history_encoder": _serialize(self.history_encoder),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_sublayers(config, ("history_embedding", "history_encoder")))


@keras.saving.register_keras_serializable(package="tfrec")
class ItemFeatureEncoder(_AttributeEncoder):
    """Item id, categorical attributes, price and numerics to one vector.

    Args:
        id_column, id_vocabulary: the item id column and its known ids.
        id_embedding: an `IdEmbedding` to use for the item ids instead of an
            own table of `id_vocabulary` (e.g. one shared with the user
            encoder's history); its own `id_dropout` applies.
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

    def __init__(
        self, id_column=None, id_vocabulary=None, price_column=None, id_dropout=0.0, id_embedding=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.id_column = id_column
        id_vocabulary = _vocabulary(id_vocabulary)
        self.price_column = price_column
        self.id_dropout = float(id_dropout)
        self.id_embedding = None
        self.shares_id_embedding = bool(id_column) and id_embedding is not None
        if id_column:
            if id_embedding is None:
                id_embedding = self._embedding(id_vocabulary, "item_id_embedding", id_dropout=self.id_dropout)
            self.id_embedding = id_embedding

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
                "id_vocabulary": 0 if self.shares_id_embedding else _size(self.id_embedding),
                "price_column": self.price_column,
                "id_dropout": self.id_dropout,
                "id_embedding": _serialize_shared(self.id_embedding) if self.shares_id_embedding else None,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_sublayers(config, ("id_embedding",)))
