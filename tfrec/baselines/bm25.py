"""`BM25`: Okapi BM25 of a query against item texts, the first thing to try for text search.

Each document (an item's text) is a row of term weights
`idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / mean len))` with
Lucene's non-negative `idf(t) = log(1 + (N - df + 0.5) / (df + 0.5))` over the
`N` documents `fit` saw; a query's score is the sum of its tokens' weights
(a token repeated in the query counts again). Tokens: case-folded runs of
letters and digits (`tokenize`).

Written on scipy sparse matrices rather than with `rank_bm25` or `bm25s`: those
score one query against the whole corpus at a time, while evaluation also
scores millions of logged (query, item) rows, which one sparse product gives.

Example:

```python
bm25 = BM25(k1=1.2, b=0.75).fit(["red running shoes", "oak desk", "blue shoes"])
bm25.scores(["red shoes"])                      # [1, 3]: the red shoes first
bm25.score_pairs(["red shoes", "desk"], [2, 1])  # one score per (query, document) row
```
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

_TOKEN = re.compile(r"\w+")


def tokenize(text) -> list[str]:
    """Case-folded word tokens: `"Red  Shoes-42"` -> `["red", "shoes", "42"]` (missing text: none)."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    return _TOKEN.findall(str(text).casefold())


@dataclasses.dataclass
class BM25:
    """Okapi BM25 scorer of queries against a fixed set of documents.

    Args:
        k1: term-frequency saturation.
        b: document-length normalisation (0 = none, 1 = full).
    """

    k1: float = 1.2
    b: float = 0.75
    vocabulary_: dict[str, int] | None = None
    weights_: sparse.csr_matrix | None = None  # [documents, vocabulary]

    def fit(self, documents: Sequence) -> BM25:
        """Indexes `documents` (strings; None/NaN = empty): the vocabulary, IDF and each term's weight."""
        tokens = [tokenize(d) for d in documents]
        vocabulary: dict[str, int] = {}
        rows, cols = [], []
        for i, toks in enumerate(tokens):
            for t in toks:
                rows.append(i)
                cols.append(vocabulary.setdefault(t, len(vocabulary)))
        n = len(tokens)
        tf = sparse.csr_matrix(
            (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(n, len(vocabulary)),
        )
        tf.sum_duplicates()  # term counts per document
        lengths = np.asarray(tf.sum(axis=1), dtype=np.float64).ravel()
        mean_length = max(float(lengths.mean()) if n else 0.0, 1e-12)
        df = np.bincount(tf.indices, minlength=len(vocabulary)).astype(np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1.0 - self.b + self.b * lengths / mean_length)  # per document
        counts = tf.data
        doc_of = np.repeat(np.arange(n), np.diff(tf.indptr))
        tf.data = idf[tf.indices] * counts * (self.k1 + 1.0) / (counts + norm[doc_of])
        self.vocabulary_, self.weights_ = vocabulary, tf
        return self

    def _weights(self) -> sparse.csr_matrix:
        if self.weights_ is None:
            raise ValueError("BM25: call fit first")
        return self.weights_

    def query_matrix(self, queries: Sequence) -> sparse.csr_matrix:
        """`[queries, vocabulary]` counts of each query's known tokens (unknown tokens score nothing)."""
        weights, vocabulary = self._weights(), self.vocabulary_ or {}
        rows, cols = [], []
        for i, q in enumerate(queries):
            for t in tokenize(q):
                j = vocabulary.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        m = sparse.csr_matrix(
            (np.ones(len(rows)), (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
            shape=(len(queries), weights.shape[1]),
        )
        m.sum_duplicates()
        return m

    def scores(self, queries: Sequence) -> np.ndarray:
        """`[queries, documents]` BM25 scores (dense: score blocks of queries against a large catalog)."""
        return np.asarray((self.query_matrix(queries) @ self._weights().T).toarray(), dtype=np.float64)

    def score_pairs(self, queries: Sequence, documents) -> np.ndarray:
        """The score of each (query, document index) row; a document index < 0 scores 0.

        Each distinct query text is tokenised once.
        """
        documents = np.asarray(documents, dtype=np.int64)
        codes, unique = pd.factorize(pd.Series(list(queries), dtype=object), use_na_sentinel=False)
        q = self.query_matrix(list(unique))[codes]
        known = documents >= 0
        out = np.zeros(len(documents), dtype=np.float64)
        if known.any():
            d = self._weights()[documents[known]]
            out[known] = np.asarray(q[known].multiply(d).sum(axis=1), dtype=np.float64).ravel()
        return out
