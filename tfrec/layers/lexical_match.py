"""`LexicalMatch`: how well a query's words match an item's text, computed in the graph.

Strong product-search rankers read lexical match signals beside the learnt
representations: a from-scratch or frozen text encoder maps an unseen product
name to a vague vector, while "the query's words are in the title" needs no
training. For each (query, item text) row the layer gives a float32 vector
`[batch, 7]`, in `LexicalMatch.FEATURES` order:

* `exact`: share of the query's terms found in the item text;
* `partial`: share found exactly or by prefix: the shorter of the query term
  and an item term (at least `min_prefix` characters) begins the longer
  ("shoe" / "shoes", "run" / "running");
* `phrase`: 1 where the query's terms appear in the item text consecutively,
  in order;
* `log_bm25`: `log(1 + BM25)` of the query against the item text: Okapi BM25
  with Lucene's IDF, the formula of `tfrec.baselines.BM25`, with document
  frequencies and the mean length of the catalog given to `adapt`;
* `bm25_fraction`: BM25 over its bound for this query (the sum of each query
  term's `idf * (k1 + 1)`), in `[0, 1)`;
* `log_query_terms`, `log_item_terms`: `log(1 + number of terms)`.

Terms: lower-cased, accents stripped ("Crème" and "creme" match), "ß" read
as "ss", split on anything but letters, digits and `_` (the `\\w+` runs of
`tfrec.baselines.bm25.tokenize`). The first `max_query_terms` query terms
and `max_item_terms` item terms are compared (the item's length counts all
its terms). Terms are compared by 64-bit fingerprint; the catalog's
fingerprints and IDF are weights of the layer, so `.keras` files and
SavedModels carry them. Core TensorFlow ops only: it serves on stock TF
Serving.

Example:

```python
layer = LexicalMatch()
layer.adapt(["Red running shoes", "oak desk", "blue shoes"])   # the catalog's item texts
features = layer(tf.constant(["red shoe", "Oak Desk"]), tf.constant(["Red running shoes", "oak desk"]))
assert features.shape == (2, len(LexicalMatch.FEATURES))
bm25 = layer.bm25(tf.constant(["red shoes"]), tf.constant(["Red running shoes"]))   # [1]
```
"""

from __future__ import annotations

import functools
import unicodedata

import keras
import numpy as np
import tensorflow as tf

# Code points below this are case-folded and stripped of accents by a table;
# above it (CJK and other scripts without accents or case) only lower-cased.
_TABLE_SIZE = 0x2000
# Fingerprints are taken modulo this: 64-bit, non-negative.
_FINGERPRINT_BUCKETS = 2**63 - 1
_QUERY_PAD, _ITEM_PAD = -1, -2  # never equal to each other or to a fingerprint


@functools.lru_cache(maxsize=1)
def _fold_table() -> np.ndarray:
    """Code point -> case-folded code point without accents; -1 drops it (a combining mark)."""
    table = np.arange(_TABLE_SIZE, dtype=np.int32)
    for cp in range(_TABLE_SIZE):
        char = chr(cp)
        if unicodedata.category(char) == "Mn":
            table[cp] = -1
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", char) if unicodedata.category(c) != "Mn").casefold()
        if len(base) == 1:
            table[cp] = ord(base)
    return table


def normalize_text(texts):
    """Lower-cased text without accents, "ß" as "ss": `"Crème BRÛLÉE"` -> `"creme brulee"`."""
    texts = tf.strings.lower(tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1]), encoding="utf-8")
    chars = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
    flat = chars.flat_values
    table = tf.constant(_fold_table())
    folded = tf.where(flat < _TABLE_SIZE, tf.gather(table, tf.minimum(flat, _TABLE_SIZE - 1)), flat)
    chars = chars.with_flat_values(folded)
    chars = tf.ragged.boolean_mask(chars, chars >= 0)
    return tf.strings.regex_replace(tf.strings.unicode_encode(chars, "UTF-8"), "ß", "ss")


def tokenize(texts):
    """Terms of each text, ragged `[batch, (terms)]`: normalised (`normalize_text`) runs of letters, digits, `_`."""
    words = tf.strings.regex_replace(normalize_text(texts), r"[^\p{L}\p{N}_]+", " ")
    return tf.strings.split(words)


def _fingerprints(tokens):
    return tf.ragged.map_flat_values(tf.strings.to_hash_bucket_fast, tokens, _FINGERPRINT_BUCKETS)


@keras.saving.register_keras_serializable(package="tfrec")
class LexicalMatch(keras.layers.Layer):
    """Lexical match features of (query, item text) rows; see the module docstring.

    Args:
        num_terms: distinct terms of the catalog (set by `adapt`; from a saved
            config, the size of the weights to load).
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation (0 = none, 1 = full).
        min_prefix: the shorter term of a prefix match has at least this many characters.
        max_query_terms: query terms compared (the rest are ignored).
        max_item_terms: item terms compared (the rest are ignored, but count in the length).
        max_prefix_chars: characters compared for a prefix match (longer
            shared prefixes match too).

    Call: `layer(queries, items)`: the query texts and the item texts, strings `[batch]` (or `[batch, 1]`).
    """

    FEATURES = ("exact", "partial", "phrase", "log_bm25", "bm25_fraction", "log_query_terms", "log_item_terms")

    def __init__(
        self,
        num_terms=0,
        k1=1.2,
        b=0.75,
        min_prefix=3,
        max_query_terms=16,
        max_item_terms=128,
        max_prefix_chars=12,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"LexicalMatch: k1 must be >= 0 and b in [0, 1], got k1={k1}, b={b}")
        for key, value in (
            ("min_prefix", min_prefix),
            ("max_query_terms", max_query_terms),
            ("max_item_terms", max_item_terms),
            ("max_prefix_chars", max_prefix_chars),
        ):
            if int(value) < 1:
                raise ValueError(f"LexicalMatch: {key} must be >= 1, got {value}")
        self.num_terms = int(num_terms)
        self.k1 = float(k1)
        self.b = float(b)
        self.min_prefix = int(min_prefix)
        self.max_query_terms = int(max_query_terms)
        self.max_item_terms = int(max_item_terms)
        self.max_prefix_chars = int(max_prefix_chars)

    @property
    def output_dim(self) -> int:
        return len(self.FEATURES)

    # ---------------------------------------------------------------- state
    def build(self, queries_shape=None, items_shape=None):
        if self.built:
            return
        if self.num_terms == 0:
            raise ValueError("LexicalMatch: call adapt(item_texts) with the catalog's item texts first")
        # The catalog's term fingerprints, ascending, and each term's IDF.
        self.term_ids = self.add_weight(
            shape=(self.num_terms,), dtype="int64", initializer="zeros", trainable=False, name="term_ids"
        )
        self.idf = self.add_weight(
            shape=(self.num_terms,), dtype="float32", initializer="zeros", trainable=False, name="idf"
        )
        self.mean_length = self.add_weight(
            shape=(), dtype="float32", initializer="ones", trainable=False, name="mean_length"
        )
        self.built = True

    def get_build_config(self):
        return {"num_terms": self.num_terms}  # non-empty: Keras builds the layer before loading its weights

    def build_from_config(self, config):
        self.build()

    def adapt(self, item_texts, batch_size=4096):
        """Document frequencies (IDF) and mean length of the catalog's item texts (one per item; None/NaN: empty).

        Returns the layer. A built layer is adapted again only to a catalog
        with as many distinct terms (the weights' size is fixed once built).
        """
        texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in item_texts]
        ids, rows, lengths = [], [], []
        for start in range(0, len(texts), batch_size):
            tokens = _fingerprints(tokenize(tf.constant(texts[start : start + batch_size], tf.string)))
            ids.append(tokens.flat_values.numpy())
            rows.append(tokens.value_rowids().numpy() + start)
            lengths.append(tokens.row_lengths().numpy())
        flat_ids = np.concatenate(ids) if ids else np.zeros([0], np.int64)
        if flat_ids.size == 0:
            raise ValueError("LexicalMatch.adapt: the item texts have no terms")
        pairs = np.unique(np.stack([flat_ids, np.concatenate(rows)], axis=1), axis=0)  # (term, document) once
        terms, df = np.unique(pairs[:, 0], return_counts=True)  # ascending
        n = len(texts)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        if self.built and len(terms) != self.num_terms:
            raise ValueError(
                f"LexicalMatch.adapt: this layer is built for {self.num_terms} terms, the texts have {len(terms)}; "
                "adapt a new layer"
            )
        self.num_terms = len(terms)
        self.build()
        self.term_ids.assign(terms.astype(np.int64))
        self.idf.assign(idf.astype(np.float32))
        self.mean_length.assign(max(float(np.concatenate(lengths).mean()), 1e-12))
        return self

    # ----------------------------------------------------------------- call
    def _terms(self, texts, limit, pad):
        tokens = tokenize(texts)
        count = tokens.row_lengths()
        tokens = tokens[:, :limit]
        ids = _fingerprints(tokens).to_tensor(default_value=pad)  # [B, T]
        chars = tf.strings.unicode_decode(tokens, "UTF-8").to_tensor(
            default_value=0, shape=[None, None, self.max_prefix_chars]
        )  # [B, T, C], truncated
        lengths = tf.strings.length(tokens, unit="UTF8_CHAR").to_tensor(default_value=0)  # [B, T]
        return ids, chars, lengths, tf.cast(count, "float32")

    def _idf(self, ids):
        flat = tf.reshape(ids, [-1])
        position = tf.minimum(tf.searchsorted(self.term_ids, flat), self.num_terms - 1)
        known = tf.equal(tf.gather(self.term_ids, position), flat)
        return tf.reshape(tf.where(known, tf.gather(self.idf, position), 0.0), tf.shape(ids))

    def match(self, queries, items) -> dict:
        """Each feature of `FEATURES` `[batch]`, and the raw `bm25`."""
        q_ids, q_chars, q_len, _ = self._terms(queries, self.max_query_terms, _QUERY_PAD)
        d_ids, d_chars, d_len, d_count = self._terms(items, self.max_item_terms, _ITEM_PAD)
        q_mask = tf.not_equal(q_ids, _QUERY_PAD)  # [B, Q]
        q_count = tf.reduce_sum(tf.cast(q_mask, "float32"), -1)
        per_term = tf.maximum(q_count, 1.0)
        same = tf.equal(q_ids[:, :, None], d_ids[:, None, :])  # [B, Q, D]
        # Prefix match: the first min(len) characters (at most max_prefix_chars) agree.
        shorter = tf.minimum(q_len[:, :, None], d_len[:, None, :])  # [B, Q, D]
        compared = tf.minimum(shorter, self.max_prefix_chars)
        char_same = tf.equal(q_chars[:, :, None, :], d_chars[:, None, :, :])  # [B, Q, D, C]
        beyond = tf.range(self.max_prefix_chars)[None, None, None, :] >= compared[..., None]
        prefix = tf.logical_and(tf.reduce_all(char_same | beyond, -1), shorter >= self.min_prefix)
        exact = tf.reduce_any(same, -1)  # [B, Q]; padding never matches
        partial = tf.logical_and(tf.reduce_any(same | prefix, -1), q_mask)
        # Phrase: some item position starts the query's terms, in order.
        width = tf.shape(q_ids)[1]
        d_padded = tf.pad(d_ids, [[0, 0], [0, width]], constant_values=_ITEM_PAD)
        windows = tf.gather(d_padded, tf.range(tf.shape(d_ids)[1])[:, None] + tf.range(width)[None, :], axis=1)
        in_order = tf.reduce_all(tf.equal(windows, q_ids[:, None, :]) | ~q_mask[:, None, :], -1)  # [B, D]
        phrase = tf.logical_and(tf.reduce_any(in_order, -1), q_count > 0)
        # BM25 (tfrec.baselines.BM25): sum over query terms of idf * tf (k1 + 1) / (tf + k1 (1 - b + b len / mean)).
        idf = self._idf(q_ids)  # 0 for padding and terms not in the catalog
        tf_count = tf.reduce_sum(tf.cast(same, "float32"), -1)  # [B, Q]
        norm = self.k1 * (1.0 - self.b + self.b * d_count / self.mean_length)  # [B]
        k1 = self.k1
        bm25 = tf.reduce_sum(idf * tf_count * (k1 + 1.0) / tf.maximum(tf_count + norm[:, None], 1e-12), -1)
        bound = tf.reduce_sum(idf, -1) * (k1 + 1.0)
        return {
            "exact": tf.reduce_sum(tf.cast(exact, "float32"), -1) / per_term,
            "partial": tf.reduce_sum(tf.cast(partial, "float32"), -1) / per_term,
            "phrase": tf.cast(phrase, "float32"),
            "log_bm25": tf.math.log1p(bm25),
            "bm25_fraction": tf.math.divide_no_nan(bm25, bound),
            "log_query_terms": tf.math.log1p(q_count),
            "log_item_terms": tf.math.log1p(d_count),
            "bm25": bm25,
        }

    def bm25(self, queries, items):
        """Okapi BM25 of each query against its item text, `[batch]` (as `tfrec.baselines.BM25.score_pairs`)."""
        return self.match(queries, items)["bm25"]

    def call(self, queries, items):
        features = self.match(queries, items)
        return tf.stack([features[name] for name in self.FEATURES], axis=-1)

    def compute_output_shape(self, queries_shape, items_shape=None):
        return (queries_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_terms": self.num_terms,
                "k1": self.k1,
                "b": self.b,
                "min_prefix": self.min_prefix,
                "max_query_terms": self.max_query_terms,
                "max_item_terms": self.max_item_terms,
                "max_prefix_chars": self.max_prefix_chars,
            }
        )
        return config
