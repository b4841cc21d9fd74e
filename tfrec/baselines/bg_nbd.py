"""`BGNBDGammaGamma`: the buy-till-you-die forecast of customer value (BG/NBD + Gamma-Gamma, `lifetimes`).

BG/NBD (Fader, Hardie and Lee, 2005) models each customer's purchases as a
Poisson process that stops for good after any purchase with some
probability; fit by maximum likelihood on the calibration period's
frequency, recency and age, it gives each customer's expected number of
purchases in the next `horizon_days`. Gamma-Gamma (Fader, Hardie and Lee,
2005) shrinks each repeat customer's mean spend per purchase towards the
population's. Their product is the expected spend in the horizon. Both come
from the `lifetimes` package (`BetaGeoFitter`, `GammaGammaFitter`).

The customer table is `tfrec.data.shapes.customer_features`' (purchases are
distinct purchase days): lifetimes' frequency is `frequency - 1` (repeat
purchases), its recency `tenure_days - recency_days` (age at the last
purchase), its `T` `tenure_days`, and the spend per purchase
`mean_day_spend` (net of returns). Fitting needs no labels: it reads only the
calibration period.

Example:

```python
customers = pd.DataFrame({"frequency": [1.0, 2, 5, 9, 1, 3], "recency_days": [80.0, 30, 5, 2, 200, 40],
                          "tenure_days": [90.0, 120, 150, 200, 210, 100],
                          "mean_day_spend": [20.0, 35, 40, 60, 10, 25]})
bg = BGNBDGammaGamma().fit(customers)
bg.predict(customers, horizon_days=90)    # expected spend per customer in the next 90 days
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from typing import Any

import numpy as np
import pandas as pd

#: The customer columns the model reads (as `prepare_transactions` names them).
COLUMNS = ("frequency", "recency_days", "tenure_days", "mean_day_spend")


def _lifetimes():
    with warnings.catch_warnings():  # lifetimes sets a pandas option that pandas 3 deprecates
        warnings.simplefilter("ignore")
        import lifetimes
    return lifetimes


@dataclasses.dataclass
class BGNBDGammaGamma:
    """BG/NBD purchase counts times Gamma-Gamma spend per purchase.

    Args:
        penalizer: L2 penalty on the log-parameters of both models (lifetimes' `penalizer_coef`),
            which keeps the fit finite on small or degenerate tables.
    """

    penalizer: float = 0.001
    purchases_: Any = None
    spend_: Any = None
    mean_spend_: float = 0.0
    penalizers_used_: dict = dataclasses.field(default_factory=dict)

    @staticmethod
    def summary(customers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """lifetimes' (frequency, recency, T, monetary value) of a customer table."""
        missing = [c for c in COLUMNS if c not in customers.columns]
        if missing:
            raise ValueError(f"BGNBDGammaGamma: missing column(s) {missing}; the table has {list(customers.columns)}")
        age = np.clip(customers["tenure_days"].to_numpy(dtype=np.float64), 0.0, None)
        frequency = np.clip(customers["frequency"].to_numpy(dtype=np.float64) - 1.0, 0.0, None)
        recency = np.clip(age - customers["recency_days"].to_numpy(dtype=np.float64), 0.0, age)
        recency = np.where(frequency > 0, recency, 0.0)  # lifetimes: one purchase, recency 0
        spend = np.clip(customers["mean_day_spend"].to_numpy(dtype=np.float64), 0.0, None)
        return frequency, recency, age, spend

    def fit(self, customers: pd.DataFrame) -> BGNBDGammaGamma:
        lt = _lifetimes()
        frequency, recency, age, spend = self.summary(customers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.purchases_ = self._fit(lt.BetaGeoFitter, frequency, recency, age)
            repeat = (frequency > 0) & (spend > 0)
            self.mean_spend_ = float(spend[spend > 0].mean()) if (spend > 0).any() else 0.0
            self.spend_ = None
            if repeat.sum() >= 3:
                self.spend_ = self._fit(lt.GammaGammaFitter, frequency[repeat], spend[repeat])
        return self

    def _fit(self, fitter, *columns):
        """Fits with `penalizer`, retried x10 and x100 where lifetimes does not converge (as on real tables)."""
        from lifetimes.utils import ConvergenceError

        for factor in (1.0, 10.0, 100.0):
            try:
                # lifetimes prints scipy's whole optimiser result when a fit does not converge;
                # the retry with a larger penalty is what matters, not that dump.
                with contextlib.redirect_stdout(io.StringIO()):
                    fitted = fitter(penalizer_coef=self.penalizer * factor).fit(*columns)
                self.penalizers_used_[fitter.__name__] = self.penalizer * factor
                return fitted
            except ConvergenceError:
                if factor == 100.0:
                    raise
        raise AssertionError("unreachable")

    def expected_purchases(self, customers: pd.DataFrame, horizon_days: float) -> np.ndarray:
        if self.purchases_ is None:
            raise ValueError("BGNBDGammaGamma: call fit first")
        frequency, recency, age, _ = self.summary(customers)
        fitted = self.purchases_
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            n = np.asarray(
                fitted.conditional_expected_number_of_purchases_up_to_time(horizon_days, frequency, recency, age),
                dtype=np.float64,
            )
            bad = ~np.isfinite(n)
            if bad.any():
                # The hypergeometric term overflows when the fitted dropout (a, b) is near 0, where BG/NBD
                # becomes the NBD: (r + x) / (alpha + T) purchases a day while alive.
                p = fitted.params_
                alive = np.asarray(fitted.conditional_probability_alive(frequency, recency, age), dtype=np.float64)
                nbd = (p["r"] + frequency) / (p["alpha"] + age) * horizon_days * np.nan_to_num(alive, nan=1.0)
                n = np.where(bad, nbd, n)
        return np.clip(n, 0.0, None)

    def expected_spend_per_purchase(self, customers: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma's conditional mean spend (the population's for one-time buyers)."""
        frequency, _, _, spend = self.summary(customers)
        if self.spend_ is None or self.spend_.params_["q"] <= 1:  # no finite population mean: the sample's
            return np.where(spend > 0, spend, self.mean_spend_)
        m = self.spend_.conditional_expected_average_profit(pd.Series(frequency), pd.Series(spend))
        return np.asarray(m, dtype=np.float64)

    def predict(self, customers: pd.DataFrame, horizon_days: float) -> np.ndarray:
        """Expected spend per customer in the `horizon_days` after the calibration period."""
        return np.clip(
            self.expected_purchases(customers, horizon_days) * self.expected_spend_per_purchase(customers), 0.0, None
        )
