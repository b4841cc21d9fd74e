"""SavedModels on disk: version folders, the `saved_model.pb` proto, its ops.

`version_numbers` lists the numeric version folders of a TF Serving model
directory (the export numbers new versions from it, the local server loads
from it); `read_saved_model` parses `saved_model.pb`; `disallowed_ops` says
which ops stock TF Serving lacks.

Stock `tensorflow/serving` links core TensorFlow and, since 2.10, the TF Text
tokeniser ops below. `RoundRobinTrim` (keras-hub's default round-robin
truncation) is only there from 2.20 and is left out on purpose, as are ScaNN
and any other custom op.

Example:

```python
assert version_numbers("models/tfrec") == [2, 3]
assert not disallowed_ops("models/tfrec/3")
```
"""

from __future__ import annotations

import os
import re

# TF Text ops bundled with TF Serving since 2.10.
TF_SERVING_TEXT_OPS = frozenset(
    {
        "CaseFoldUTF8",
        "NormalizeUTF8",
        "NormalizeUTF8WithOffsets",
        "RegexSplitWithOffsets",
        "FastWordpieceTokenizeWithOffsets",
        "WordpieceTokenizeWithOffsets",
        "WhitespaceTokenizeWithOffsets",
        "WhitespaceTokenizeWithOffsetsV2",
        "UnicodeScriptTokenizeWithOffsets",
        "SplitMergeTokenizeWithOffsets",
        "ConstrainedSequence",
    }
)


def version_numbers(model_dir, complete: bool = False) -> list[int]:
    """The numeric version folders of `model_dir`, ascending ([] if it does not exist).

    `complete=True` keeps only folders holding a `saved_model.pb`.
    """
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(d)
        for d in os.listdir(model_dir)
        if re.fullmatch(r"\d+", d) and (not complete or os.path.exists(os.path.join(model_dir, d, "saved_model.pb")))
    )


def read_saved_model(path):
    """The `SavedModel` proto of `path/saved_model.pb`."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    return sm


def saved_model_ops(path) -> set[str]:
    """Every op type in the SavedModel's graph and function library."""
    sm = read_saved_model(path)
    ops = set()
    for meta_graph in sm.meta_graphs:
        ops |= {node.op for node in meta_graph.graph_def.node}
        for function in meta_graph.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    return ops


def core_tensorflow_ops() -> set[str]:
    import tensorflow as tf

    return {name for name in dir(tf.raw_ops) if not name.startswith("_")}


def disallowed_ops(path) -> list[str]:
    """Ops of the SavedModel that stock TF Serving (2.10+) does not have."""
    allowed = core_tensorflow_ops() | TF_SERVING_TEXT_OPS
    return sorted(saved_model_ops(path) - allowed)
