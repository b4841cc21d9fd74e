"""`IsotonicCalibration`: a label as a non-decreasing function of one baseline score.

A ranking score such as BM25 has no scale; fit on the training rows, isotonic
regression (scikit-learn's `IsotonicRegression`) maps it to the mean label of
rows with similar scores, so the baseline can be scored with the model's RMSE
(graded relevance) or log loss and calibration error (clicks). Scores outside
the training range get the nearest end's value.

Example:

```python
calibration = IsotonicCalibration().fit([0.0, 1.0, 2.0, 3.0], [1, 1, 2, 3])
calibration.predict([0.5, 2.5, 9.0])      # non-decreasing grades, 3 past the training range
```
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.isotonic import IsotonicRegression


@dataclasses.dataclass
class IsotonicCalibration:
    """Isotonic (non-decreasing) regression of a label on a score."""

    model_: IsotonicRegression | None = None

    def fit(self, score, label) -> IsotonicCalibration:
        score = np.asarray(score, dtype=np.float64).ravel()
        label = np.asarray(label, dtype=np.float64).ravel()
        if len(score) != len(label) or not len(score):
            raise ValueError(f"IsotonicCalibration.fit: need one label per score, got {len(score)} and {len(label)}")
        self.model_ = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(score, label)
        return self

    def predict(self, score) -> np.ndarray:
        if self.model_ is None:
            raise ValueError("IsotonicCalibration.predict: call fit first")
        return np.asarray(self.model_.predict(np.asarray(score, dtype=np.float64).ravel()), dtype=np.float64)
