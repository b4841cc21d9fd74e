"""Frozen text encoders answer from memory: each unique text of a job's tables is encoded once.

A frozen pretrained encoder (MiniLM with `model.text.trainable: false`) gives
the same vector for a text every time, so a job computes it once per unique
query and title (`TextEncoder.cache_texts`) instead of once per row and epoch.
Training and scoring through the frozen tower then cost about as much as a
model without text. Texts outside the cache still run through the encoder, and
exports never hold the cache (`TextEncoder.text_cache_disabled`).

Example:

```python
encoded = cache_table_texts(model, train_df, test_df)   # 0 unless model.text_encoder is frozen
```
"""

from __future__ import annotations

import time

import pandas as pd

from tfrec.console import log


def cacheable_encoder(model):
    """The model's text encoder where its outputs can be cached (frozen, `cache_frozen` on), else None."""
    encoder = getattr(model, "text_encoder", None)
    config = getattr(model, "config", None)
    if encoder is None or not encoder.frozen:
        return None
    if config is not None and not config.text.cache_frozen:
        return None
    return encoder


def cache_table_texts(model, *frames: pd.DataFrame | None, verbose: bool = True) -> int:
    """Caches the query and item texts of `frames` in the model's frozen encoder; returns how many were new."""
    encoder = cacheable_encoder(model)
    if encoder is None:
        return 0
    schema = model.schema
    columns = [c for c in (schema.query_text, schema.item_text) if c]
    texts = []
    for frame in frames:
        if frame is None:
            continue
        for column in columns:
            if column in frame:
                texts.extend(pd.unique(frame[column].fillna("").astype(str)).tolist())
    t0 = time.time()
    new = encoder.cache_texts(texts)
    if new and verbose:
        log(f"frozen text encoder: {new:,} unique texts encoded once in {time.time() - t0:.1f}s (cached)")
    return new


def copy_text_cache(source, target) -> None:
    """Gives `target`'s frozen encoder the texts `source`'s has cached (a reloaded copy of a trained model)."""
    src, dst = cacheable_encoder(source), cacheable_encoder(target)
    if src is None or dst is None or src.cached_texts() is None:
        return
    dst.set_text_cache(*src.cached_texts())
