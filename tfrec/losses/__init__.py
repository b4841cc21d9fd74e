"""Losses of the tfrec heads."""

from tfrec.losses.retrieval import InBatchSoftmaxRetrievalLoss
from tfrec.losses.weighting import weighted_mean
from tfrec.losses.ziln import ZeroInflatedLognormalLoss, ziln_expected_value, ziln_probability

__all__ = [
    "InBatchSoftmaxRetrievalLoss",
    "ZeroInflatedLognormalLoss",
    "weighted_mean",
    "ziln_expected_value",
    "ziln_probability",
]
