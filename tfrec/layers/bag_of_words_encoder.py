"""`BagOfWordsEncoder`: a light text encoder, the mean of word embeddings.

For item titles where a BERT pass per item is too costly: lower-cased words,
looked up in a vocabulary from the training corpus (unknown words share OOV
buckets), embedded and averaged. All ops are core TensorFlow, so it serves
anywhere.

Example:

```python
encoder = BagOfWordsEncoder.from_corpus(["red running shoes", "oak desk"], output_dim=32)
encoder(tf.constant(["red running shoes"]))   # [1, 32]
```
"""

import collections
import re

import keras
import tensorflow as tf

from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.masked_mean_pooling import MaskedMeanPooling


@keras.saving.register_keras_serializable(package="tfrec")
class BagOfWordsEncoder(keras.layers.Layer):
    """Mean word embedding of each string.

    Args:
        vocabulary: known words (lower case).
        output_dim: embedding size.
        max_words: words read per text (the rest are ignored).
        num_oov: hashed buckets for unknown words.
    """

    def __init__(self, vocabulary, output_dim=32, max_words=16, num_oov=8, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.max_words = int(max_words)
        self.num_oov = int(num_oov)
        vocabulary = vocabulary if isinstance(vocabulary, int) else list(vocabulary)
        self.words = IdEmbedding(vocabulary, self.output_dim, num_oov=self.num_oov, name="words")
        self.pooling = MaskedMeanPooling(name="mean")

    @property
    def vocabulary(self) -> list[str]:
        """The known words (an asset of `self.words` when saved)."""
        return self.words.vocabulary

    @classmethod
    def from_corpus(cls, corpus, output_dim=32, max_vocabulary=20_000, min_count=1, **kwargs):
        counts = collections.Counter(w for text in corpus for w in re.findall(r"[a-z0-9]+", str(text).lower()))
        vocab = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
        return cls(vocab[:max_vocabulary], output_dim=output_dim, **kwargs)

    def build(self, input_shape=None):
        self.words.build()
        self.built = True

    def call(self, texts):
        texts = tf.reshape(tf.convert_to_tensor(texts), [-1])
        cleaned = tf.strings.regex_replace(tf.strings.lower(texts), r"[^a-z0-9]+", " ")
        tokens = tf.strings.split(cleaned).to_tensor(default_value="", shape=[None, self.max_words])
        return self.pooling(self.words(tokens), tf.not_equal(tokens, ""))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": len(self.words.vocabulary),  # the words are an asset of `self.words`
                "output_dim": self.output_dim,
                "max_words": self.max_words,
                "num_oov": self.num_oov,
            }
        )
        return config
