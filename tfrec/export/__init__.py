"""Export to TensorFlow Serving: versioned SavedModels with named signatures."""

from tfrec.export.saved_model import ExportResult, export_model

__all__ = ["ExportResult", "export_model"]
