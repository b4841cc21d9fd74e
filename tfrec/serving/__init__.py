"""Serving: a TF Serving gRPC client, a protocol-compatible local server, load tests.

Importing this package loads neither TensorFlow Serving protos nor servers;
submodules do on use.
"""

import importlib

_LAZY = {
    "ServingClient": "tfrec.serving.client",
    "ServingError": "tfrec.serving.client",
    "LocalModelServer": "tfrec.serving.server",
    "run_load_test": "tfrec.serving.load_test",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfrec.serving' has no attribute {name!r}")


__all__ = list(_LAZY)
