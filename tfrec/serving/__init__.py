"""Serving: a TF Serving gRPC client, a local server with TF Serving's gRPC and REST APIs and flags, load tests.

Importing this package loads neither TensorFlow Serving protos nor servers;
submodules do on use.
"""

from tfrec.lazy_exports import lazy_getattr

_LAZY = {
    "ServingClient": "tfrec.serving.client",
    "ServingError": "tfrec.serving.client",
    "LocalModelServer": "tfrec.serving.server",
    "RestApi": "tfrec.serving.rest",
    "serve_rest": "tfrec.serving.rest",
    "run_load_test": "tfrec.serving.load_test",
}
__getattr__ = lazy_getattr(__name__, _LAZY)
__all__ = list(_LAZY)
