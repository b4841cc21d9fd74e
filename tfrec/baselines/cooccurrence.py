"""`ItemCooccurrence`: items bought by the same users recommend each other (item-to-item cosine).

With `X` the users x items matrix of who bought what in training (0/1), the
similarity of two items is the cosine of their columns,
`|users of i and j| / sqrt(|users of i| * |users of j|)` (an item is fully
similar to itself, so repeat purchases are retrieved too). A user's score for
an item is the sum of its similarity to the items of the user's history.
Ties, and users whose history has no item seen in training, are ordered by
training popularity (a tie-break of 1e-9 of the normalised count).

Example:

```python
co = ItemCooccurrence(["tea", "kettle", "desk", "lamp"]).fit(
    users=["a", "a", "b", "b", "c"], items=["tea", "kettle", "tea", "kettle", "desk"])
co.scores([["tea"], ["desk"]])        # [2, 4]: "kettle" high for the tea buyer
co.score_pairs([["tea"], ["tea"]], ["kettle", "lamp"])
```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse


class ItemCooccurrence:
    """Item-to-item cosine of co-occurrence over a fixed catalog.

    Args:
        catalog: the item ids, in the order of the score columns.
        tiebreak: weight of the normalised training popularity added to every score.
    """

    def __init__(self, catalog: Sequence, tiebreak: float = 1e-9):
        self.catalog = pd.Index(list(catalog))
        if not self.catalog.is_unique:
            raise ValueError("ItemCooccurrence: the catalog has duplicate item ids")
        self.tiebreak = float(tiebreak)
        self.similarity_: sparse.csr_matrix | None = None
        self.popularity_: np.ndarray | None = None

    def _columns(self, items) -> np.ndarray:
        return self.catalog.get_indexer(pd.Index(list(items)))

    def fit(self, users: Sequence, items: Sequence) -> ItemCooccurrence:
        """Learns the similarities from (user, item) purchase events (repeats count once)."""
        col = self._columns(items)
        user_codes, _ = pd.factorize(pd.Series(list(users), dtype=object))
        keep = col >= 0
        x = sparse.csr_matrix(
            (np.ones(int(keep.sum())), (user_codes[keep], col[keep])),
            shape=(int(user_codes.max(initial=-1)) + 1, len(self.catalog)),
        )
        x.sum_duplicates()
        x.data[:] = 1.0
        buyers = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
        inv = sparse.diags(np.where(buyers > 0, 1.0 / np.sqrt(np.maximum(buyers, 1.0)), 0.0))
        self.similarity_ = sparse.csr_matrix(inv @ (x.T @ x) @ inv)
        self.popularity_ = buyers / max(buyers.max(initial=0.0), 1.0)
        return self

    def _histories(self, histories: Sequence) -> sparse.csr_matrix:
        rows, cols = [], []
        for i, h in enumerate(histories):
            if h is None or (isinstance(h, float) and np.isnan(h)):
                continue
            c = self._columns(h)
            c = np.unique(c[c >= 0])
            rows.append(np.full(len(c), i))
            cols.append(c)
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        return sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(histories), len(self.catalog)))

    def _fitted(self) -> tuple[sparse.csr_matrix, np.ndarray]:
        if self.similarity_ is None or self.popularity_ is None:
            raise ValueError("ItemCooccurrence: call fit first")
        return self.similarity_, self.popularity_

    def scores(self, histories: Sequence) -> np.ndarray:
        """`[len(histories), catalog]` scores of every item for each history (a list of item ids)."""
        similarity, popularity = self._fitted()
        s = np.asarray((self._histories(histories) @ similarity).toarray(), dtype=np.float64)
        return s + self.tiebreak * popularity[None, :]

    def score_pairs(self, histories: Sequence, items: Sequence) -> np.ndarray:
        """The score of each (history, item) row; an item outside the catalog scores 0."""
        similarity, popularity = self._fitted()
        col = self._columns(items)
        out = np.zeros(len(col), dtype=np.float64)
        known = col >= 0
        if known.any():
            h = self._histories(histories)[np.flatnonzero(known)]
            s = similarity[col[known]]  # symmetric: row j is item j's similarity to every item
            out[known] = np.asarray(h.multiply(s).sum(axis=1)).ravel() + self.tiebreak * popularity[col[known]]
        return out
