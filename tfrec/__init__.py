"""tfrec: TensorFlow/Keras multi-task models for e-commerce search and recommendation.

Importing `tfrec` is cheap and has no side effects; TensorFlow is imported by
the submodules that need it (`tfrec.data.pipeline`, `tfrec.models`, ...).
"""

from tfrec.schema import FeatureSchema, Role, SchemaError

__version__ = "0.1.0"

__all__ = ["FeatureSchema", "Role", "SchemaError", "__version__"]
