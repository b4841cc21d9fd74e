"""Data: schema validation, tf.data pipelines, splits, simulator, real-data adapters.

The tf.data helpers import TensorFlow; they load on first use so that
`import tfrec.data` stays light.
"""

import importlib

from tfrec.data.simulator import SimulatedData, SimulatorConfig, simulate
from tfrec.data.split import Split, time_split
from tfrec.data.validation import (
    SchemaValidationError,
    ValidationIssue,
    ValidationReport,
    validate,
)

_LAZY = {
    "RowAccounting": "tfrec.data.pipeline",
    "dataset_from_dataframe": "tfrec.data.pipeline",
    "dataset_from_parquet": "tfrec.data.pipeline",
    "to_tensors": "tfrec.data.pipeline",
    "OnlineRetailData": "tfrec.data.online_retail",
    "load_online_retail": "tfrec.data.online_retail",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfrec.data' has no attribute {name!r}")


__all__ = [
    "SchemaValidationError", "SimulatedData", "SimulatorConfig", "Split",
    "ValidationIssue", "ValidationReport", "simulate", "time_split", "validate",
    *_LAZY,
]
