"""Batch inference helpers: DataFrames in, numpy arrays out.

They run the model through a compiled `tf.function` over `tf.data` batches,
which on CPU keeps all cores busy more steadily than `Model.predict`.

Example:

```python
out = predict_dataframe(model, test_df)        # dict of arrays: ctr, user_value, ...
item_vectors = encode_items(model, catalog_df)  # [num_items, embedding_dim]
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data.pipeline import to_tensors
from tfrec.data.validation import validate


def features_of(df: pd.DataFrame, schema, columns=None) -> dict[str, np.ndarray]:
    """Validated model inputs from the schema's feature columns that `df` has."""
    present = [c for c in schema.feature_names + ([schema.position] if schema.position else []) if c in df.columns]
    if columns is not None:
        present = [c for c in present if c in set(columns)]
    sub = schema.restrict(present)
    report = validate(df, sub, on_bad_rows="raise", require=present)
    features, _ = to_tensors(report.valid, sub, labels=False)
    return features


def _run(fn, features, batch_size):
    ds = tf.data.Dataset.from_tensor_slices(features).batch(batch_size).prefetch(2)
    parts = [fn(batch) for batch in ds]
    if not parts:
        return {}
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
    return np.concatenate([p.numpy() for p in parts])


def predict_dataframe(model, df, batch_size=1024, outputs=None):
    """All model outputs (or only `outputs`) for the rows of `df`."""
    return predictor(model, outputs, batch_size)(features_of(df, model.schema))


def predictor(model, outputs=None, batch_size=1024):
    """A function of model inputs (`features_of`) to outputs, traced once and reused (e.g. after every epoch)."""

    @tf.function(reduce_retracing=True)
    def fn(batch):
        out = model(batch, training=False)
        return {k: v for k, v in out.items() if outputs is None or k in outputs}

    return lambda features: _run(fn, features, batch_size)


def encode_queries(model, df, batch_size=1024) -> np.ndarray:
    """Query/user embeddings `[rows, embedding_dim]`."""
    features = features_of(df, model.schema, model.schema.user_feature_names)
    return _run(tf.function(lambda b: model.encode_query(b)), features, batch_size)


def encode_items(model, df, batch_size=1024) -> np.ndarray:
    """Item embeddings `[rows, embedding_dim]`."""
    features = features_of(df, model.schema, model.schema.item_feature_names)
    return _run(tf.function(lambda b: model.encode_item(b)), features, batch_size)


def predict_user_value(model, df, batch_size=1024) -> dict[str, np.ndarray]:
    """User-value outputs from user features alone."""
    features = features_of(df, model.schema, model.schema.user_feature_names)
    return _run(tf.function(lambda b: model.predict_user_value(b)), features, batch_size)
