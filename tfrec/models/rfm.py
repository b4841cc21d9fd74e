"""`RFMRegressor`: the recency-frequency-monetary baseline of customer value.

A linear least-squares regression of future spend on the customer's recency,
frequency and monetary value (each `log1p`-transformed, plus the mean spend per
purchase day and tenure), with a small ridge penalty (scikit-learn's
`StandardScaler` and `Ridge`). Fitting the spend itself
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
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

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
    pipeline_: Pipeline | None = None

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
        # Ridge's penalty is alpha * |w|^2 on the summed squared error: l2 per row.
        self.pipeline_ = make_pipeline(StandardScaler(), Ridge(alpha=self.l2 * len(x)))
        self.pipeline_.fit(x, y)
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        if self.pipeline_ is None:
            raise ValueError("RFMRegressor.predict: call fit first")
        return np.clip(self.pipeline_.predict(self._design(frame)), 0.0, None)
