"""Package attributes imported on first use, so that importing a package stays light.

Example (in a package's `__init__.py`):

```python
_LAZY = {"ServingClient": "tfrec.serving.client"}
__getattr__ = lazy_getattr(__name__, _LAZY)
```

`tfrec.serving.ServingClient` then imports `tfrec.serving.client` the first
time it is read.
"""

from __future__ import annotations

import importlib


def lazy_getattr(package: str, attributes: dict[str, str]):
    """A module `__getattr__` that imports `attributes[name]` (a module path) to get `name`."""

    def __getattr__(name):
        if name in attributes:
            return getattr(importlib.import_module(attributes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
