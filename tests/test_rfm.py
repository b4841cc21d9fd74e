"""The RFM baseline: a ridge regression on log1p RFM features (scikit-learn), checked by hand."""

import numpy as np
import pandas as pd
import pytest

from tfrec.models.rfm import RFM_COLUMNS, RFMRegressor


def test_rfm_regressor_equals_the_closed_form_ridge_and_floors_at_zero():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0, 300) for c in RFM_COLUMNS})
    frame["tenure_days"] = 7.0  # a constant column: scaled by 1, its weight 0
    y = 3.0 * np.log1p(frame["frequency"]) - 2.0 * np.log1p(frame["recency_days"]) + rng.normal(0, 0.1, 300)
    model = RFMRegressor(l2=0.01).fit(frame, y)
    x = np.log1p(frame[list(RFM_COLUMNS)].to_numpy())
    std = np.where(x.std(0) > 0, x.std(0), 1.0)
    z = np.column_stack([np.ones(len(x)), (x - x.mean(0)) / std])
    coef = np.linalg.solve(z.T @ z + 0.01 * len(x) * np.diag([0.0] + [1.0] * x.shape[1]), z.T @ y)
    np.testing.assert_allclose(model.predict(frame), np.clip(z @ coef, 0, None), atol=1e-9)
    assert (model.predict(frame) >= 0).all() and (z @ coef < 0).any()  # negative fits are floored
    with pytest.raises(ValueError, match="missing column"):
        model.predict(frame.drop(columns=["monetary"]))
    with pytest.raises(ValueError, match="call fit first"):
        RFMRegressor().predict(frame)
