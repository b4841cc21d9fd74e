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
import re
from typing import Any

import yaml

from tfrec.config_validation import check_choice, check_config, check_range, from_dict, read_yaml
from tfrec.data.readers import FORMATS
from tfrec.data.simulator import SimulatorConfig
from tfrec.models.config import ModelConfig


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
        checkpoint_every_steps: steps between backups in `backup_dir` (a
            killed job restarts from the last one). Default null (auto): four
            per epoch, i.e. every quarter of an epoch rounded up and at most
            every 1,000 steps; 0 = only at the end of each epoch (so does any
            value of at least the epoch's steps). A backup is also written at
            every epoch end. Each holds the model, the optimizer, the random
            state of dropout and id dropout, the position in the epoch's
            fixed order and the epoch's running loss sums, so a job killed at
            any step resumes as if it had never stopped (on CPU: the same
            weights and history; on GPUs only as far as two uninterrupted
            runs agree); the interval only sets the steps it redoes.
        keep_checkpoints: end-of-epoch checkpoints kept in `<output_dir>/checkpoints`.
        backup_dir: where the backup lives; default `<output_dir>/backup`. In
            multi-worker jobs it must be storage every worker can read (only
            the chief writes there).
        monitor: the validation metric that picks the best model and drives
            early stopping: `val_loss` or `val_<task>_loss` (lower is better),
            or, for search tables, `val_ndcg@K` (NDCG@K of the ranking head
            per validation query, higher is better). A model that starts from
            a pretrained encoder (`model.text.text_share`) is validated before
            its first step too (history epoch 0), and that start is kept
            unless an epoch beats it.
        log_every_steps: steps between progress lines and TensorBoard points.
        tensorboard: write TensorBoard logs to `<output_dir>/tensorboard`.
        shuffle_buffer: rows in the shuffle buffer (whole table when smaller).
        seed: seed of shuffling and initialisation.
        verbose: progress output (0 silent, 1 progress bar, 2 lines every
            `log_every_steps`).
        init_from: a warm start: a previous run directory (its `model.keras`)
            or a `.keras` file whose weights this run starts from, on this
            run's data (`tfrec.training.warm_start`). Every vocabulary grows
            (the previous ids first, in their order, then the new ones): ids
            seen before keep their embedding rows and the OOV buckets theirs,
            bit for bit; new ids get fresh rows. The text encoder, towers and
            heads carry over; the numeric scaling statistics, a from-scratch
            BERT's WordPiece vocabulary and the lexical IDF stay the previous
            run's (the carried weights learnt on them); the logQ item
            probabilities are computed from this run's rows. The model
            settings must be the previous run's: a weight of another shape
            is an error naming it and both shapes. Resume wins: a run whose
            `backup_dir` holds a backup resumes from it and copies nothing
            (`init_from` then only gives the vocabularies, so it must stay
            readable until the run ends; in multi-worker jobs, by every
            worker). The path is checked when training starts. Default
            null: from scratch.
        init_optimizer: with `init_from`, `reset` (default: a new optimizer)
            or `keep`: the previous run's AdamW moments and step counter, from
            the epoch checkpoint in its `checkpoints/` that holds the weights
            of its `model.keras`; new id rows start with zero moments. `keep`
            needs a run directory, `lr_schedule: constant` and
            `warmup_steps: 0` (the schedule would read the continued step
            count as already spent).
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
    checkpoint_every_steps: int | None = None
    keep_checkpoints: int = 3
    backup_dir: str | None = None
    monitor: str = "val_loss"
    log_every_steps: int = 50
    tensorboard: bool = True
    shuffle_buffer: int = 100_000
    seed: int = 0
    verbose: int = 2
    init_from: str | None = None
    init_optimizer: str = "reset"

    def __post_init__(self):
        check_config(
            self,
            "training",
            choices={
                "strategy": _check_strategy,
                "lr_schedule": ("constant", "cosine"),
                "mixed_precision": ("off", "mixed_bfloat16", "mixed_float16"),
                "verbose": (0, 1, 2),
                "init_optimizer": ("reset", "keep"),
            },
            ranges={
                "epochs": ">= 1",
                "batch_size": ">= 2",  # in-batch negatives need a second row
                "learning_rate": "> 0",
                "weight_decay": ">= 0",
                "clipnorm": "> 0",
                "early_stopping_patience": ">= 0",
                "value_holdout_fraction": "[0, 1)",
                "warmup_steps": ">= 0",
                "min_learning_rate_ratio": "[0, 1]",
                "backbone_learning_rate_multiplier": "(0, 10]",
                "checkpoint_every_steps": ">= 0",
                "keep_checkpoints": ">= 1",
                "log_every_steps": ">= 1",
                "shuffle_buffer": ">= 1",
                "seed": ">= 0",
            },
        )
        ranking = re.fullmatch(r"val_ndcg@[1-9][0-9]*", self.monitor) is not None
        task_loss = self.monitor.startswith("val_") and self.monitor.endswith("_loss")
        if self.monitor != "val_loss" and not (task_loss or ranking):
            raise ValueError(
                f"training.monitor: unknown {self.monitor!r}; one of 'val_loss', 'val_<task>_loss' "
                "or 'val_ndcg@K' (search tables: NDCG@K per validation query, higher is better)"
            )
        self._check_init()

    def _check_init(self):
        """`init_from` names a run directory or a `.keras` file; `init_optimizer: keep` can continue its state."""
        if self.init_from is not None and not self.init_from.strip():
            raise ValueError("training.init_from: expected a previous run directory or a .keras file (or null), got ''")
        if self.init_optimizer != "keep":
            return
        if self.init_from is None:
            raise ValueError("training.init_optimizer: keep needs training.init_from (the run whose optimizer to keep)")
        if self.init_from.endswith(".keras"):
            raise ValueError(
                f"training.init_optimizer: keep needs training.init_from to be a run directory (its checkpoints/ "
                f"hold the optimizer state), got the .keras file {self.init_from!r}"
            )
        if self.lr_schedule != "constant" or self.warmup_steps:
            raise ValueError(
                "training.init_optimizer: keep continues the previous run's step counter (Adam's bias correction "
                "belongs to its moments), which a warmup or cosine schedule would read as already spent; use "
                f"lr_schedule: constant and warmup_steps: 0 (got {self.lr_schedule!r}, {self.warmup_steps}), "
                "or init_optimizer: reset"
            )


def _check_strategy(key, value):
    if value != "auto":  # the default needs no TensorFlow import
        from tfrec.training.strategy import STRATEGIES

        check_choice(key, value, STRATEGIES)


@dataclasses.dataclass
class EvaluationConfig:
    """What evaluation reports.

    Args:
        ks: cut-offs for Recall@K, NDCG@K and the business metrics.
        max_queries: most test queries scored against the whole catalog.
    """

    ks: list[int] = dataclasses.field(default_factory=lambda: [10, 50, 100])
    max_queries: int = 5000

    def __post_init__(self):
        check_config(self, "evaluation", ranges={"ks": ">= 1", "max_queries": ">= 1"})
        if not self.ks:
            raise ValueError("evaluation.ks: expected at least one cut-off, got []")


@dataclasses.dataclass
class ExportConfig:
    """Where and how the trained model is exported for TF Serving.

    Args:
        enabled: export at the end of the job.
        base_dir: TF Serving model base directory; default `<output_dir>/models`.
        model_name: the model's name (folder and `model_spec.name`).
        max_k: most items the `retrieve` signature returns.
        keep_versions: versions kept in `base_dir/model_name` (0 = all).
    """

    enabled: bool = True
    base_dir: str | None = None
    model_name: str = "tfrec"
    max_k: int = 100
    keep_versions: int = 3

    def __post_init__(self):
        check_config(self, "export", ranges={"max_k": ">= 1", "keep_versions": ">= 0"})
        if not self.model_name or os.sep in self.model_name or "/" in self.model_name:
            raise ValueError(f"export.model_name: expected a folder name, got {self.model_name!r}")


DATA_SOURCES = ("simulator", "files")
DATA_SHAPES = ("search", "interactions", "transactions")


@dataclasses.dataclass
class DataConfig:
    """Where the job's data comes from: the simulator or the user's own files.

    With `source: files`, `tfrec.jobs.files.run` reads `paths`, maps their
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
            training rows, all labels still before the cutoff). A horizon
            that leaves under 28 days of history for the features of such a
            window (say one as long as the history before the cutoff) trains
            on windows of half that history instead, their spend scaled to
            the horizon (logged; `split_info` in metrics.json records
            `train_label_days` and `label_scale`).
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
        if self.paths is None or isinstance(self.paths, (str, os.PathLike)):
            self.paths = [] if self.paths is None else [self.paths]
        if self.schema is not None and not isinstance(self.schema, (str, dict)):
            raise ValueError(f"data.schema: expected a YAML path or a mapping, got {type(self.schema).__name__}")
        check_config(
            self,
            "data",
            choices={
                "source": DATA_SOURCES,
                "format": FORMATS,
                "shape": DATA_SHAPES,
                "split_by": ("auto", "time", "query"),
            },
            ranges={
                "negatives_per_positive": ">= 0",
                "history_window_days": "> 0",
                "value_valid_fraction": "[0, 1)",
                "value_training_windows": ">= 1",
                "min_query_rows": ">= 1",
                "seed": ">= 0",
            },
        )

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
        output_dir: the run directory (model, metrics, resolved config);
            default `runs/quickstart`, relative to the working directory.
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
        for name, cls in (
            ("simulator", SimulatorConfig),
            ("model", ModelConfig),
            ("training", TrainingConfig),
            ("evaluation", EvaluationConfig),
            ("export", ExportConfig),
            ("data", DataConfig),
        ):
            if isinstance(getattr(self, name), dict) or getattr(self, name) is None:
                setattr(self, name, from_dict(cls, getattr(self, name), name))
        check_config(self, "config", ranges={"valid_fraction": "[0, 1)", "test_fraction": "[0, 1)"})
        check_range("config.valid_fraction + config.test_fraction", self.valid_fraction + self.test_fraction, "[0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config) -> JobConfig:
        return from_dict(cls, config or {}, "config")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> JobConfig:
        return cls.from_dict(read_yaml(path, "config"))

    def to_yaml(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(self.to_dict(), f, sort_keys=False)
