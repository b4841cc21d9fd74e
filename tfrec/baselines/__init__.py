"""Baselines: the simple methods a practitioner tries first, scored beside the model on the same test split.

One concept per module, each fit on training data only and scoring test rows
with no knowledge of the model:

* search: `BM25` (query vs item text) and `ZeroShotCosine` (cosine of the
  pretrained all-MiniLM-L6-v2, no training; `minilm_cosine()` loads it),
  with `IsotonicCalibration` mapping a score to a label (graded relevance
  RMSE, click log loss);
* interactions: `ItemCooccurrence` (item-to-item cosine of co-occurrence in
  users' purchases, scored against the user's history);
* transactions: `BGNBDGammaGamma` (buy-till-you-die forecast, `lifetimes`)
  and `RFMBoosting` (gradient boosting on the customer features).

`tfrec.evaluation.tables` scores them with the metrics of
`tfrec.evaluation.metrics`; this package computes scores, never metrics.
Importing it does not import TensorFlow (only `ZeroShotCosine.from_preset`
does).

Example:

```python
from tfrec.baselines import BM25
BM25().fit(["red running shoes", "oak desk"]).scores(["red shoes"])
```
"""

from tfrec.baselines.bg_nbd import BGNBDGammaGamma
from tfrec.baselines.bm25 import BM25, tokenize
from tfrec.baselines.calibrated import IsotonicCalibration
from tfrec.baselines.cooccurrence import ItemCooccurrence
from tfrec.baselines.rfm_boosting import RFMBoosting
from tfrec.baselines.zero_shot import ZeroShotCosine, minilm_cosine

__all__ = [
    "BM25",
    "BGNBDGammaGamma",
    "IsotonicCalibration",
    "ItemCooccurrence",
    "RFMBoosting",
    "ZeroShotCosine",
    "minilm_cosine",
    "tokenize",
]
