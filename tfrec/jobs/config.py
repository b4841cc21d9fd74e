"""Job configuration: one YAML file, dataclasses with documented defaults.

Unknown keys are errors that name the key. Example `quickstart.yaml`:

```yaml
simulator: {num_users: 8000, num_items: 2000, num_sessions: 20000, seed: 0}
model: {embedding_dim: 64, text: {hidden_dim: 64, num_layers: 2}}
training: {epochs: 2, batch_size: 512, learning_rate: 0.002}
evaluation: {ks: [10, 50, 100]}
output_dir: runs/quickstart
```

```python
config = JobConfig.from_yaml("training/configs/quickstart.yaml")
```
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import yaml

from tfrec.data.simulator import SimulatorConfig
from tfrec.models.config import ModelConfig, _from_dict


@dataclasses.dataclass
class TrainingConfig:
    """How the model is fitted.

    Args:
        epochs: passes over the training split.
        batch_size: rows per step per replica; the global batch is
            `batch_size x replicas` (in-batch negatives span the global batch).
        strategy: `auto` (several workers in TF_CONFIG -> multi-worker,
            several GPUs -> mirrored, else default), `default`, `mirrored`,
            `multi_worker` or `one_device`. Keras `fit` under multi-worker
            fails in Keras 3.15 (keras-team/keras#20585); multi-worker
            training is not supported by this version yet.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        clipnorm: gradient clipping by global norm; None = off.
        early_stopping_patience: stop after this many epochs without a better
            validation loss and keep the best epoch's weights; 0 = off.
        value_holdout_fraction: share of users whose future value is hidden
            from training, so the value head is judged on users it never saw.
        seed: seed of shuffling and initialisation.
        verbose: Keras progress output (0 silent, 1 bar, 2 one line per epoch).
    """

    epochs: int = 2
    batch_size: int = 512
    strategy: str = "auto"
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    clipnorm: float | None = 1.0
    early_stopping_patience: int = 1
    value_holdout_fraction: float = 0.2
    seed: int = 0
    verbose: int = 2

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("training.epochs must be >= 1 and training.batch_size >= 2")
        if not 0 <= self.value_holdout_fraction < 1:
            raise ValueError(f"training.value_holdout_fraction must be in [0, 1), got {self.value_holdout_fraction}")


@dataclasses.dataclass
class EvaluationConfig:
    """What evaluation reports.

    Args:
        ks: cut-offs for Recall@K, NDCG@K and the business metrics.
        max_queries: most test queries scored against the whole catalog.
    """

    ks: list[int] = dataclasses.field(default_factory=lambda: [10, 50, 100])
    max_queries: int = 5000


@dataclasses.dataclass
class ExportConfig:
    """Where and how the trained model is exported for TF Serving.

    Args:
        enabled: export at the end of the job.
        base_dir: TF Serving model base directory; default `<output_dir>/models`.
        model_name: the model's name (folder and `model_spec.name`).
        max_k: most items the `retrieve` signature returns.
        keep_versions: versions kept in `base_dir/model_name`.
    """

    enabled: bool = True
    base_dir: str | None = None
    model_name: str = "tfrec"
    max_k: int = 100
    keep_versions: int = 3


@dataclasses.dataclass
class JobConfig:
    """A whole job: data, model, training, evaluation and where to write.

    Args:
        simulator: the `SimulatorConfig` of the embedded default data.
        valid_fraction, test_fraction: time-split shares of the later rows.
        model: the `ModelConfig`.
        training: the `TrainingConfig`.
        evaluation: the `EvaluationConfig`.
        export: the `ExportConfig`.
        output_dir: the run directory (model, metrics, resolved config).
    """

    simulator: SimulatorConfig = dataclasses.field(default_factory=SimulatorConfig)
    valid_fraction: float = 0.1
    test_fraction: float = 0.15
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    output_dir: str = "runs/quickstart"

    def __post_init__(self):
        if isinstance(self.simulator, dict):
            self.simulator = _from_dict(SimulatorConfig, self.simulator, "simulator")
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        if isinstance(self.training, dict):
            self.training = _from_dict(TrainingConfig, self.training, "training")
        if isinstance(self.evaluation, dict):
            self.evaluation = _from_dict(EvaluationConfig, self.evaluation, "evaluation")
        if isinstance(self.export, dict):
            self.export = _from_dict(ExportConfig, self.export, "export")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config) -> "JobConfig":
        return _from_dict(cls, config or {}, "config")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "JobConfig":
        if not os.path.exists(path):
            raise FileNotFoundError(f"config file not found: {path}")
        with open(path, encoding="utf-8") as f:
            try:
                data = yaml.safe_load(f)
            except yaml.YAMLError as e:
                raise ValueError(f"config {path} is not valid YAML: {e}") from e
        return cls.from_dict(data)

    def to_yaml(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
