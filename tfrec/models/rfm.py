"""`RFMRegressor`: the recency-frequency-monetary baseline of customer value.

A linear least-squares regression of future spend on the customer's recency,
frequency and monetary value (each `log1p`-transformed, plus the mean spend per
purchase day and tenure), with a small ridge penalty. Fitting the spend itself
(not its log) keeps the predictions' mean equal to the training labels' mean,
so the decile MAPE of the baseline is as fair as its ranking. Predictions are
floored at 0.

Example:

```python
rfm = RFMRegressor().fit(train_customers, train_customers["future_value"])
predicted = rfm.predict(test_customers)
```
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

#: The customer columns the regressor reads (as `prepare_transactions` names them).
RFM_COLUMNS = ("recency_days", "frequency", "monetary", "mean_day_spend", "tenure_days")


@dataclasses.dataclass
class RFMRegressor:
    """Ridge regression of spend on log1p(R, F, M, spend per day, tenure).

    Args:
        columns: the feature columns.
        l2: ridge penalty on the standardised features (not the intercept).
    """

    columns: tuple[str, ...] = RFM_COLUMNS
    l2: float = 1e-3
    coef_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    std_: np.ndarray | None = None

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"RFMRegressor: missing column(s) {missing}; the table has {list(frame.columns)}")
        x = np.log1p(np.clip(frame[list(self.columns)].to_numpy(dtype=np.float64), 0, None))
        return x

    def fit(self, frame: pd.DataFrame, target) -> RFMRegressor:
        x = self._design(frame)
        y = np.asarray(target, dtype=np.float64)
        if len(y) != len(x) or len(y) < 2:
            raise ValueError(f"RFMRegressor.fit: need >= 2 rows and one target per row, got {len(x)} and {len(y)}")
        self.mean_ = x.mean(0)
        self.std_ = np.where(x.std(0) > 0, x.std(0), 1.0)
        z = np.column_stack([np.ones(len(x)), (x - self.mean_) / self.std_])
        penalty = self.l2 * len(x) * np.diag([0.0] + [1.0] * x.shape[1])
        self.coef_ = np.linalg.solve(z.T @ z + penalty, z.T @ y)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.coef_ is None:
            raise ValueError("RFMRegressor.predict: call fit first")
        x = self._design(frame)
        z = np.column_stack([np.ones(len(x)), (x - self.mean_) / self.std_])
        return np.clip(z @ self.coef_, 0.0, None)
