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


def _run(fn, features, batch_size, order=None):
    """`fn` over batches of `features`; with `order` (a permutation of the rows) batched in that order, answers in
    the rows' own order."""
    if order is not None:
        features = {k: v[order] for k, v in features.items()}
    ds = tf.data.Dataset.from_tensor_slices(features).batch(batch_size).prefetch(2)
    parts = [fn(batch) for batch in ds]
    if not parts:
        return {}
    if isinstance(parts[0], dict):
        out = {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}
    else:
        out = np.concatenate([p.numpy() for p in parts])
    if order is None:
        return out
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return {k: v[inverse] for k, v in out.items()} if isinstance(out, dict) else out[inverse]


def length_order(features, columns) -> np.ndarray | None:
    """Row order by text length (the texts of `columns`: words, then characters), shortest first; None without text.

    A text encoder pads each batch to its longest text (`TextEncoder`'s dynamic
    padding), so batches of similar lengths (as sentence-transformers batches)
    compute less than batches in the rows' order. Words and characters stand
    in for the token count (a tokenisation pass of its own would cost more).
    """
    present = [c for c in columns if c and c in features]
    if not present:
        return None
    rows = len(features[present[0]])
    if rows < 2:
        return None
    words = np.zeros(rows, np.int64)
    chars = np.zeros(rows, np.int64)
    for c in present:
        texts = pd.Series(features[c]).map(lambda t: t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t))
        words += texts.str.count(" ").to_numpy() + 1
        chars += texts.str.len().to_numpy()
    return np.lexsort((chars, words)).astype(np.int64)


def predict_dataframe(model, df, batch_size=1024, outputs=None):
    """All model outputs (or only `outputs`) for the rows of `df`."""
    return predictor(model, outputs, batch_size)(features_of(df, model.schema))


def predictor(model, outputs=None, batch_size=1024, sort_by_length=True):
    """A function of model inputs (`features_of`) to outputs, traced once and reused (e.g. after every epoch).

    With `sort_by_length` rows are batched by query and title length (`length_order`); outputs keep the rows' order.
    """
    fn = traced(model, "__call__", outputs)
    columns = [model.schema.query_text, model.schema.item_text] if sort_by_length else []
    return lambda features: _run(fn, features, batch_size, length_order(features, columns))


def encode_queries(model, df, batch_size=1024, sort_by_length=True) -> np.ndarray:
    """Query/user embeddings `[rows, embedding_dim]`; `sort_by_length`: batched by query length (`length_order`)."""
    features = features_of(df, model.schema, model.schema.user_feature_names)
    order = length_order(features, [model.schema.query_text]) if sort_by_length else None
    return _run(traced(model, "encode_query"), features, batch_size, order)


def encode_items(model, df, batch_size=1024, sort_by_length=True) -> np.ndarray:
    """Item embeddings `[rows, embedding_dim]`; `sort_by_length`: batched by title length (`length_order`)."""
    features = features_of(df, model.schema, model.schema.item_feature_names)
    order = length_order(features, [model.schema.item_text]) if sort_by_length else None
    return _run(traced(model, "encode_item"), features, batch_size, order)


def predict_user_value(model, df, batch_size=1024) -> dict[str, np.ndarray]:
    """User-value outputs from user features alone."""
    features = features_of(df, model.schema, model.schema.user_feature_names)
    return _run(traced(model, "predict_user_value"), features, batch_size)


def predict_intent(model, df, batch_size=1024, sort_by_length=True) -> np.ndarray:
    """Query-intent probabilities `[rows, categories]` (of `model.intent_task.vocabulary`) from user features alone."""
    features = features_of(df, model.schema, model.schema.user_feature_names)
    order = length_order(features, [model.schema.query_text]) if sort_by_length else None
    return _run(traced(model, "predict_intent"), features, batch_size, order)["intent_probabilities"]


def traced(model, method: str, outputs=None):
    """`model.<method>(batch)` in inference mode as a `tf.function`, kept on the model and reused by later calls.

    A new `tf.function` per call would trace the model again every time
    (seconds for a BERT tower: each evaluation, each epoch's validation
    metrics). The function is kept in the model's `__dict__` (not a tracked
    attribute: it must not reach a SavedModel) and traced again only when
    what a trace bakes in changes: the frozen text encoder's cache (set,
    grown or disabled) or whether the encoder is frozen. `reduce_retracing`
    makes a last, smaller batch reuse the trace.
    """
    state = _text_cache_states(model)
    key = (method, None if outputs is None else tuple(sorted(outputs)))
    functions = model.__dict__.setdefault("_tfrec_traced_functions", {})
    entry = functions.get(key)
    if entry is None or not _same_states(entry[0], state):
        if method == "__call__":

            def fn(batch):
                out = model(batch, training=False)
                return {k: v for k, v in out.items() if outputs is None or k in outputs}

        else:
            bound = getattr(model, method)

            def fn(batch):
                return bound(batch)

        entry = (state, tf.function(fn, reduce_retracing=True))
        functions[key] = entry
    return entry[1]


def _text_cache_states(model) -> list:
    """`(cache token, frozen)` of each text encoder of the model's towers (one if they share it)."""
    encoders = {}
    for tower in ("query_tower", "item_tower"):
        encoder = getattr(getattr(model, tower, None), "text_encoder", None)
        if encoder is not None and hasattr(encoder, "text_cache_state"):
            encoders[id(encoder)] = encoder
    return [(e.text_cache_state, e.frozen) for e in encoders.values()]


def _same_states(a, b) -> bool:
    return len(a) == len(b) and all(x[0] is y[0] and x[1] == y[1] for x, y in zip(a, b))


def tower_outputs(model, df, side: str, batch_size=1024, sort_by_length=True) -> dict[str, np.ndarray]:
    """The `"query"` or `"item"` tower's `embedding` and `hidden` for the rows of `df` (`score_candidates` input)."""
    if side not in ("query", "item"):
        raise ValueError(f"tower_outputs: side must be 'query' or 'item', got {side!r}")
    schema = model.schema
    columns = schema.user_feature_names if side == "query" else schema.item_feature_names
    features = features_of(df, schema, columns)
    text = schema.query_text if side == "query" else schema.item_text
    order = length_order(features, [text]) if sort_by_length else None
    return _run(traced(model, f"{side}_outputs"), features, batch_size, order)


def candidate_scores(
    model, query, items, candidates, query_text=None, item_text=None, batch_size=64
) -> dict[str, np.ndarray]:
    """`model.score_candidates` over batches of `batch_size` queries: `[B, N]` arrays (`score`, `ctr`, `relevance`)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    items = {k: tf.constant(v) for k, v in items.items()}
    item_text = None if item_text is None else tf.constant(np.asarray(item_text, dtype=object).astype(str))
    query_text = None if query_text is None else np.asarray(query_text, dtype=object).astype(str)

    @tf.function(reduce_retracing=True)
    def fn(q, c, t):
        return model.score_candidates(q, items, c, t, item_text)

    parts = []
    for start in range(0, len(candidates), batch_size):
        rows = slice(start, start + batch_size)
        q = {k: tf.constant(query[k][rows]) for k in ("embedding", "hidden")}
        t = tf.constant(query_text[rows]) if query_text is not None else tf.constant([""])
        parts.append({k: v.numpy() for k, v in fn(q, tf.constant(candidates[rows]), t).items()})
    if not parts:
        return {}
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
