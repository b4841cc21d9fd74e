"""Data: schema validation, tf.data pipelines, splits, simulator, real-data adapters.

The tf.data helpers import TensorFlow; they load on first use so that
`import tfrec.data` stays light.
"""

from tfrec.data.simulator import SimulatedData, SimulatorConfig, simulate
from tfrec.data.split import Split, time_split
from tfrec.data.validation import (
    RowAccounting,
    SchemaValidationError,
    ValidationIssue,
    ValidationReport,
    validate,
)
from tfrec.lazy_exports import lazy_getattr

_LAZY = {
    "dataset_from_dataframe": "tfrec.data.pipeline",
    "dataset_from_parquet": "tfrec.data.pipeline",
    "dataset_from_files": "tfrec.data.pipeline",
    "shard_files": "tfrec.data.pipeline",
    "collect_statistics": "tfrec.data.streaming_stats",
    "TableStatistics": "tfrec.data.streaming_stats",
    "to_tensors": "tfrec.data.pipeline",
    "OnlineRetailData": "tfrec.data.online_retail",
    "load_online_retail": "tfrec.data.online_retail",
}


__getattr__ = lazy_getattr(__name__, _LAZY)
__all__ = [
    "RowAccounting",
    "SchemaValidationError",
    "SimulatedData",
    "SimulatorConfig",
    "Split",
    "ValidationIssue",
    "ValidationReport",
    "simulate",
    "time_split",
    "validate",
] + list(_LAZY)
