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
            `multi_worker` or `one_device`. Jobs train with a custom
            `strategy.run` loop under every strategy (Keras `fit` fails under
            MultiWorkerMirroredStrategy, keras-team/keras#20585).
        learning_rate: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        clipnorm: gradient clipping by global norm; None = off.
        early_stopping_patience: stop after this many epochs without a better
            validation loss and keep the best epoch's weights; 0 = off.
        value_holdout_fraction: share of users whose future value is hidden
            from training, so the value head is judged on users it never saw.
        lr_schedule: `constant` or `cosine` (decay to `min_learning_rate_ratio`
            of the peak by the last step).
        warmup_steps: steps of linear warmup from ~0 to `learning_rate`.
        min_learning_rate_ratio: the cosine schedule's final share of the peak.
        backbone_learning_rate_multiplier: the text encoder (BERT) learns at
            this fraction of `learning_rate` (e.g. 0.1 when fine-tuning a
            pretrained checkpoint); 1 = same rate.
        mixed_precision: `off`, `mixed_bfloat16` (CPUs with AVX512-BF16, TPUs,
            Ampere+ GPUs) or `mixed_float16` (GPUs; adds loss scaling). Heads,
            embeddings and losses stay float32.
        xla: XLA auto-clustering of the training graph (GPUs; the in-graph
            tokeniser's string ops stay outside the compiled clusters).
        checkpoint_every_steps: steps between backups of model, optimizer and
            data position (a killed job restarts from the last one); 0 = only
            at the end of each epoch.
        keep_checkpoints: end-of-epoch checkpoints kept in `<output_dir>/checkpoints`.
        backup_dir: where the backup lives; default `<output_dir>/backup`. In
            multi-worker jobs it must be storage every worker can read (only
            the chief writes there).
        monitor: the validation metric that picks the best model and drives
            early stopping (`val_loss` or `val_<task>_loss`); lower is better.
        log_every_steps: steps between progress lines and TensorBoard points.
        tensorboard: write TensorBoard logs to `<output_dir>/tensorboard`.
        shuffle_buffer: rows in the shuffle buffer (whole table when smaller).
        seed: seed of shuffling and initialisation.
        verbose: progress output (0 silent, 1 progress bar, 2 lines every
            `log_every_steps`).
    """

    epochs: int = 2
    batch_size: int = 512
    strategy: str = "auto"
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    clipnorm: float | None = 1.0
    early_stopping_patience: int = 1
    value_holdout_fraction: float = 0.2
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    min_learning_rate_ratio: float = 0.0
    backbone_learning_rate_multiplier: float = 1.0
    mixed_precision: str = "off"
    xla: bool = False
    checkpoint_every_steps: int = 200
    keep_checkpoints: int = 3
    backup_dir: str | None = None
    monitor: str = "val_loss"
    log_every_steps: int = 50
    tensorboard: bool = True
    shuffle_buffer: int = 100_000
    seed: int = 0
    verbose: int = 2

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("training.epochs must be >= 1 and training.batch_size >= 2")
        if not 0 <= self.value_holdout_fraction < 1:
            raise ValueError(f"training.value_holdout_fraction must be in [0, 1), got {self.value_holdout_fraction}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"training.lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.mixed_precision not in ("off", "mixed_bfloat16", "mixed_float16"):
            raise ValueError("training.mixed_precision must be 'off', 'mixed_bfloat16' or 'mixed_float16', "
                             f"got {self.mixed_precision!r}")
        if self.warmup_steps < 0 or self.checkpoint_every_steps < 0 or self.log_every_steps < 1:
            raise ValueError("training.warmup_steps and training.checkpoint_every_steps must be >= 0 "
                             "and training.log_every_steps >= 1")
        if not 0 < self.backbone_learning_rate_multiplier <= 10:
            raise ValueError("training.backbone_learning_rate_multiplier must be in (0, 10], "
                             f"got {self.backbone_learning_rate_multiplier}")
        if self.monitor != "val_loss" and not (self.monitor.startswith("val_") and self.monitor.endswith("_loss")):
            raise ValueError(f"training.monitor must be 'val_loss' or 'val_<task>_loss', got {self.monitor!r}")


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


DATA_SOURCES = ("simulator", "files")
DATA_SHAPES = ("search", "interactions", "transactions")


@dataclasses.dataclass
class DataConfig:
    """Where the job's data comes from: the simulator or the user's own files.

    With `source: files`, `tfrec.jobs.tables.run` reads `paths`, maps their
    columns with `schema` and prepares them for one of three `shape`s:

    * `search`: judged or logged search results (query text, item, click or
      graded relevance); split by query, so no query is in two splits.
    * `interactions`: user x item events without queries (user id, item id,
      item text and attributes, time); the query side is the user's earlier
      items; split by time; CTR trains on sampled negatives.
    * `transactions`: customer, time and amount (items optional); features
      from the calibration period up to `cutoff`, the label is the spend in
      `(cutoff, horizon_end]`; split by time.

    Example (YAML):

    ```yaml
    data:
      source: files
      paths: ["logs/*.csv"]
      csv_encoding: latin-1
      schema: training/configs/schemas/interactions.yaml
      shape: interactions
      cutoff: "2024-03-31"
    ```

    Args:
        source: `"simulator"` (default: the embedded simulator, the
            quickstart) or `"files"`.
        paths: files, globs (`logs/*.parquet`, `**` allowed) or folders
            (their CSV and parquet files); default none.
        format: `"auto"` (default: by file ending), `"csv"` or `"parquet"`.
        csv_encoding: encoding of CSV files (default `"utf-8"`).
        csv_delimiter: field separator of CSV files (default `","`).
        schema: the column mapping: a schema YAML path or an inline mapping
            (see `FeatureSchema`); default none (required for files).
        shape: `"search"`, `"interactions"` or `"transactions"`; default
            none (required for files).
        split_by: `"auto"` (default: `query` for search, `time` otherwise),
            `"time"` or `"query"`. Search data may be split by time when it
            maps `event_time`; interactions and transactions only by time.
            The shares come from the job's `valid_fraction` and
            `test_fraction`.
        cutoff: search/interactions: rows after this time form the test
            split (default none: the last `test_fraction` of rows by time).
            Transactions: the last day of the calibration period (required).
            A date without a time of day includes that whole day.
        horizon_end: transactions: the last day of the horizon whose spend is
            the label (default none: the last transaction in the data).
        quantity_column: a column outside the schema holding quantities
            (default none). Transactions: the amount is `quantity x
            item_price` when the schema maps no `value_label`; a negative
            amount (a return) is netted against the customer's spend.
            Interactions: rows with quantity <= 0 are returns, not
            interactions (rejected, counted).
        negatives_per_positive: interactions: items drawn at random by
            popularity per event as CTR negatives (default 1; 0 = none).
        history_window_days: interactions: only items from the last this
            many days enter a user's history (default none: all earlier
            items; the schema's `history_length` caps the count).
        value_valid_fraction: transactions: share of training customers
            held out for validation (default 0.1).
        value_training_windows: transactions: label windows of the
            horizon's length the model learns from, ending at the cutoff, half
            a horizon before it, and so on (default 1; more windows, more
            training rows, all labels still before the cutoff).
        value_item_history: transactions with items: give the model each
            customer's latest items as an id history (default false: only
            the count of distinct items; per-item embeddings learnt from one
            row per customer overfit small data).
        min_query_rows: search: queries with fewer rows are still kept; the
            per-query NDCG counts only queries with at least this many rows
            and at least one positive (default 2).
        seed: seed of the query split and negative sampling (default 0).
    """

    source: str = "simulator"
    paths: list[str] = dataclasses.field(default_factory=list)
    format: str = "auto"
    csv_encoding: str = "utf-8"
    csv_delimiter: str = ","
    schema: Any = None
    shape: str | None = None
    split_by: str = "auto"
    cutoff: str | None = None
    horizon_end: str | None = None
    quantity_column: str | None = None
    negatives_per_positive: int = 1
    history_window_days: float | None = None
    value_valid_fraction: float = 0.1
    value_training_windows: int = 1
    value_item_history: bool = False
    min_query_rows: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.source not in DATA_SOURCES:
            raise ValueError(f"data.source must be one of {DATA_SOURCES}, got {self.source!r}")
        if isinstance(self.paths, (str, os.PathLike)):
            self.paths = [os.fspath(self.paths)]
        self.paths = [os.fspath(p) for p in (self.paths or [])]
        if self.format not in ("auto", "csv", "parquet"):
            raise ValueError(f"data.format must be 'auto', 'csv' or 'parquet', got {self.format!r}")
        if self.shape is not None and self.shape not in DATA_SHAPES:
            raise ValueError(f"data.shape must be one of {DATA_SHAPES}, got {self.shape!r}")
        if self.split_by not in ("auto", "time", "query"):
            raise ValueError(f"data.split_by must be 'auto', 'time' or 'query', got {self.split_by!r}")
        if self.schema is not None and not isinstance(self.schema, (str, dict)):
            raise ValueError(f"data.schema must be a YAML path or a mapping, got {type(self.schema).__name__}")
        if int(self.negatives_per_positive) < 0:
            raise ValueError(f"data.negatives_per_positive must be >= 0, got {self.negatives_per_positive}")
        if not 0 <= self.value_valid_fraction < 1:
            raise ValueError(f"data.value_valid_fraction must be in [0, 1), got {self.value_valid_fraction}")
        if int(self.value_training_windows) < 1:
            raise ValueError(f"data.value_training_windows must be >= 1, got {self.value_training_windows}")
        for name in ("cutoff", "horizon_end"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, str(value))

    def resolved_split_by(self) -> str:
        """The split `split_by: auto` stands for with this shape."""
        if self.split_by != "auto":
            return self.split_by
        return "query" if self.shape == "search" else "time"


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
        data: the `DataConfig`: the simulator (default) or the user's files.
        output_dir: the run directory (model, metrics, resolved config).
    """

    simulator: SimulatorConfig = dataclasses.field(default_factory=SimulatorConfig)
    valid_fraction: float = 0.1
    test_fraction: float = 0.15
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
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
        if isinstance(self.data, dict):
            self.data = _from_dict(DataConfig, self.data, "data")

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
