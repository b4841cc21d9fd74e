"""`RFMBoosting`: gradient-boosted trees on the customer features the model sees.

scikit-learn's `HistGradientBoostingRegressor` with the Poisson loss (a log
link on non-negative, heavy-tailed spend; at its optimum the predictions'
mean matches the training labels', so the decile MAPE is as fair as the
ranking), fit on the training window's labels: the strong tabular baseline of
customer value. Categorical attributes are native categorical splits (the
250 most frequent values of each; rarer and unseen values count as missing).

Example:

```python
rng = np.random.default_rng(0)
customers = pd.DataFrame({"frequency": rng.integers(1, 20, 300).astype(float), "region": rng.choice(["n", "s"], 300)})
customers["future_value"] = customers["frequency"] * 10 * rng.random(300)
gbm = RFMBoosting(numeric=("frequency",), categorical=("region",)).fit(customers, customers["future_value"])
gbm.predict(customers.head(3))
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from tfrec.schema import FeatureSchema

_MAX_CATEGORIES = 250  # HistGradientBoosting takes at most max_bins (255) categories per feature
# Below this many rows the trees are built on one OpenMP thread: on small tables the threads' synchronisation
# costs more than it saves, many times more on busy cores (0.15 s on one thread, 1 to 10 s on two, for 300 rows).
_ONE_THREAD_ROWS = 50_000


def _threads(rows: int):
    return threadpool_limits(1 if rows < _ONE_THREAD_ROWS else None, user_api="openmp")


@dataclasses.dataclass
class RFMBoosting:
    """Poisson gradient boosting of spend on numeric and categorical customer columns.

    Args:
        numeric: numeric feature columns.
        categorical: categorical feature columns.
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf: the trees' budget (scikit-learn's names).
        seed: random state (early stopping's validation split on large tables).
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 20
    seed: int = 0
    categories_: dict[str, pd.Index] = dataclasses.field(default_factory=dict)
    model_: Any = None

    @classmethod
    def for_schema(cls, schema: FeatureSchema, **kwargs) -> RFMBoosting:
        """The model's own customer features: the schema's user numeric and categorical columns."""
        return cls(numeric=tuple(schema.user_numeric), categorical=tuple(schema.user_categorical), **kwargs)

    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns = list(self.numeric) + list(self.categorical)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"RFMBoosting: missing column(s) {missing}; the table has {list(frame.columns)}")
        x = pd.DataFrame(index=frame.index)
        for c in self.numeric:
            x[c] = pd.to_numeric(frame[c], errors="coerce").astype(np.float64)
        for c in self.categorical:
            x[c] = pd.Categorical(frame[c].astype(str), categories=self.categories_[c])
        return x

    def fit(self, frame: pd.DataFrame, target) -> RFMBoosting:
        y = np.clip(np.asarray(target, dtype=np.float64), 0.0, None)
        if len(y) != len(frame) or len(y) < 2:
            raise ValueError(f"RFMBoosting.fit: need >= 2 rows and one target per row, got {len(frame)} and {len(y)}")
        if not self.numeric and not self.categorical:
            raise ValueError("RFMBoosting: no feature columns")
        self.categories_ = {
            c: pd.Index(frame[c].astype(str).value_counts().index[:_MAX_CATEGORIES]) for c in self.categorical
        }
        model = HistGradientBoostingRegressor(
            loss="poisson" if y.sum() > 0 else "squared_error",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            categorical_features="from_dtype",
            random_state=self.seed,
        )
        with _threads(len(y)):
            self.model_ = model.fit(self._design(frame), y)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.model_ is None:
            raise ValueError("RFMBoosting.predict: call fit first")
        with _threads(len(frame)):
            predicted = self.model_.predict(self._design(frame))
        return np.clip(np.asarray(predicted, dtype=np.float64), 0.0, None)
