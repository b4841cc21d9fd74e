"""The user's own tables, read, validated and prepared for their shape.

`load_data(data, valid_fraction=..., test_fraction=...)` reads the CSV/parquet
files of a `DataConfig` (`data.paths`), maps their columns with `data.schema`,
validates them with row accounting and prepares them for `data.shape`
(`search`, `interactions` or `transactions`, see `tfrec.data.shapes`), split
without leakage.

Example:

```python
prepared, tables = load_data(config.data, valid_fraction=0.1, test_fraction=0.15)
prepared.sizes(), tables.accounting.summary()
```
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tfrec.data import shapes as S
from tfrec.data.readers import Tables, read_tables, reject_rows
from tfrec.schema import FeatureSchema

if TYPE_CHECKING:  # the config type only; data never imports jobs at run time
    from tfrec.jobs.config import DataConfig


def resolve_schema(schema) -> FeatureSchema:
    """The `FeatureSchema` of `data.schema` (a YAML path, a mapping or a schema)."""
    if schema is None:
        raise ValueError("data.schema: no column mapping given (a schema YAML path or an inline mapping)")
    if isinstance(schema, FeatureSchema):
        return schema
    if isinstance(schema, dict):
        return FeatureSchema.from_dict(schema)
    if not os.path.exists(str(schema)):
        raise FileNotFoundError(f"data.schema: schema file not found: {schema}")
    return FeatureSchema.from_yaml(schema)


def check_files_config(data: DataConfig) -> None:
    """Raises if `data` does not say which files to read, in which shape, split how."""
    if data.source != "files":
        raise ValueError(f"the files job needs data.source 'files', got {data.source!r}")
    if not data.paths:
        raise ValueError("data.paths: no data files given (files, globs or folders)")
    if data.shape is None:
        raise ValueError("data.shape: say which shape the data has: 'search', 'interactions' or 'transactions'")
    split_by = data.resolved_split_by()
    if data.shape != "search" and split_by != "time":
        raise ValueError(f"data.split_by: {data.shape} data is split by time only, got {data.split_by!r}")


def load_data(data: DataConfig, *, valid_fraction: float, test_fraction: float) -> tuple[S.PreparedData, Tables]:
    """Reads, validates and prepares the files of `data`; returns (prepared splits, tables).

    `valid_fraction` and `test_fraction` are the job's split shares
    (transactions use `data.value_valid_fraction` for validation).
    """
    check_files_config(data)
    schema = resolve_schema(data.schema)
    qc = data.quantity_column
    read_schema = schema
    amount = None
    if data.shape == "transactions":
        if schema.value_label:
            # A transaction amount may be negative (a return): read it as a
            # plain number, not as a non-negative label.
            amount = schema.value_label
            read_schema = dataclasses.replace(
                schema, value_label=None, user_numeric=list(schema.user_numeric) + [amount]
            )
        elif schema.item_price and qc:
            amount = "_amount"
        else:
            raise S.ShapeError(
                "data.shape 'transactions' needs an amount: map value_label to the amount column, or map "
                "item_price and set data.quantity_column (amount = quantity x price)"
            )
    tables = read_tables(
        data.paths,
        read_schema,
        format=data.format,
        csv_encoding=data.csv_encoding,
        csv_delimiter=data.csv_delimiter,
        required_extra=[qc] if qc else [],
    )
    frame = tables.frame
    if qc:
        quantity = pd.to_numeric(frame[qc], errors="coerce")
        tables = reject_rows(
            tables, ~np.isfinite(quantity.to_numpy(dtype=np.float64, na_value=np.nan)), f"{qc}: not a number"
        )
        tables.frame[qc] = pd.to_numeric(tables.frame[qc]).astype(np.float64)
        if data.shape == "interactions":
            tables = reject_rows(
                tables, tables.frame[qc].to_numpy() <= 0, f"{qc}: quantity <= 0 (a return, not an interaction)"
            )
    if data.shape == "transactions":
        if amount == "_amount":
            tables.frame[amount] = tables.frame[qc] * tables.frame[schema.item_price]
        tables = reject_rows(tables, tables.frame[amount].isna().to_numpy(), f"{amount}: null in required field")
    if data.shape == "search":
        prepared = S.prepare_search(
            tables.frame,
            schema,
            split_by=data.resolved_split_by(),
            valid_fraction=valid_fraction,
            test_fraction=test_fraction,
            cutoff=data.cutoff,
            seed=data.seed,
        )
    elif data.shape == "interactions":
        prepared = S.prepare_interactions(
            tables.frame,
            schema,
            test_fraction=test_fraction,
            cutoff=data.cutoff,
            negatives_per_positive=data.negatives_per_positive,
            history_window_days=data.history_window_days,
            valid_fraction=valid_fraction,
            seed=data.seed,
        )
    else:
        assert amount is not None  # set (or raised) above for transactions, the only shape left
        prepared = S.prepare_transactions(
            tables.frame,
            schema,
            amount=amount,
            cutoff=data.cutoff,
            horizon_end=data.horizon_end,
            training_windows=data.value_training_windows,
            item_history=data.value_item_history,
            valid_fraction=data.value_valid_fraction,
            seed=data.seed,
        )
    for name in ("train", "valid", "test"):
        if not len(getattr(prepared, name)):
            raise S.ShapeError(
                f"the {name} split is empty ({prepared.sizes()}, {prepared.info}); "
                "check data.cutoff, the fractions and the size of the data"
            )
    return prepared, tables
