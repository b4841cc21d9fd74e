"""`IdEmbedding`: string ids to vectors, with hashed out-of-vocabulary buckets.

Known ids (the vocabulary seen in training) get their own rows; any other id,
including ids first seen at serving time, is hashed into one of `num_oov`
shared buckets, so unseen ids never fail. The empty string is the padding
value of histories: it maps to an OOV bucket and callers mask it out.

The vocabulary is saved as an asset beside the weights (`vocabulary.json` in
the `.keras` file), not in the JSON config, which holds only its size: a
layer made by `from_config` alone has placeholder ids until `load_assets`
(which `keras.models.load_model` calls) restores the real ones.

Example:

```python
emb = IdEmbedding(vocabulary=["i1", "i2"], output_dim=8, num_oov=4)
emb(tf.constant(["i1", "never-seen"]))   # [2, 8]
```
"""

import json
import os

import keras
import tensorflow as tf

VOCABULARY_ASSET = "vocabulary.json"


def placeholder_vocabulary(size: int) -> list[str]:
    """`size` ids no real data holds: the stand-in until the saved vocabulary is loaded."""
    return [f"\x00tfrec-unloaded-{i}" for i in range(int(size))]


@keras.saving.register_keras_serializable(package="tfrec")
class IdEmbedding(keras.layers.Layer):
    """Vocabulary lookup with hashed OOV buckets, then an embedding table.

    Args:
        vocabulary: list of known ids (strings), or their number (the ids
            then come from the saved assets).
        output_dim: embedding size.
        num_oov: number of hashed buckets for unknown ids.
        id_dropout: in training, the share of ids replaced by an OOV bucket,
            so that the model also learns to score items by their other
            features (cold start).
        embeddings_regularizer: optional regulariser of the table.
    """

    def __init__(
        self, vocabulary, output_dim, num_oov=8, id_dropout=0.0, embeddings_regularizer=None, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if isinstance(vocabulary, int):
            vocabulary = placeholder_vocabulary(vocabulary)
        self.vocabulary = [str(v) for v in vocabulary]
        self.output_dim = int(output_dim)
        self.num_oov = int(num_oov)
        self.id_dropout = float(id_dropout)
        self.seed = seed
        self.lookup = keras.layers.StringLookup(
            vocabulary=self.vocabulary or None,
            num_oov_indices=self.num_oov,
            mask_token=None,
            name="lookup",
        )
        self.embedding = keras.layers.Embedding(
            len(self.vocabulary) + self.num_oov,
            self.output_dim,
            embeddings_regularizer=embeddings_regularizer,
            name="table",
        )
        self._seed_gen = keras.random.SeedGenerator(seed)

    @property
    def input_dim(self):
        return len(self.vocabulary) + self.num_oov

    def save_assets(self, dir_path):
        with open(os.path.join(dir_path, VOCABULARY_ASSET), "w", encoding="utf-8") as f:
            json.dump(self.vocabulary, f, ensure_ascii=False)

    def load_assets(self, dir_path):
        path = os.path.join(dir_path, VOCABULARY_ASSET)
        if not os.path.exists(path):  # saved when the vocabulary was in the config (it is then already set)
            return
        with open(path, encoding="utf-8") as f:
            vocabulary = [str(v) for v in json.load(f)]
        if len(vocabulary) != len(self.vocabulary):
            raise ValueError(
                f"{self.name}: the saved vocabulary has {len(vocabulary)} ids, the config {len(self.vocabulary)}"
            )
        self.vocabulary = vocabulary
        if vocabulary:
            self.lookup.set_vocabulary(vocabulary)

    def index(self, ids):
        """Row indices: `[0, num_oov)` are OOV buckets, then the vocabulary."""
        return self.lookup(ids)

    def build(self, input_shape=None):
        self.embedding.build((None,))
        self.built = True

    def call(self, ids, training=False):
        index = self.index(ids)
        if training and self.id_dropout > 0:
            drop = keras.random.uniform(tf.shape(index), seed=self._seed_gen) < self.id_dropout
            oov = tf.strings.to_hash_bucket_fast(ids, self.num_oov)
            index = tf.where(drop, oov, index)
        return self.embedding(index)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": len(self.vocabulary),  # the ids are an asset (save_assets)
                "output_dim": self.output_dim,
                "num_oov": self.num_oov,
                "id_dropout": self.id_dropout,
                "embeddings_regularizer": keras.regularizers.serialize(self.embedding.embeddings_regularizer)
                if self.embedding.embeddings_regularizer
                else None,
                "seed": self.seed,
            }
        )
        return config
