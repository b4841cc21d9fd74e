"""Reading the user's own tables: CSV and parquet files, globs and folders.

`read_tables` reads every file a list of paths, globs or folders names,
validates each file against the schema on its own (so an error names the file
as well as the column), and returns the valid rows of all files together with
the row accounting and the rejected rows (each with its reason and file).

Example:

```python
tables = read_tables(["logs/2024-*.csv"], schema, csv_encoding="latin-1")
print(tables.accounting.summary())   # rows read = used + rejected, by reason
tables.frame                         # typed valid rows of every file
tables.rejected                      # bad rows, with _reject_reason and _source
```
"""

from __future__ import annotations

import dataclasses
import glob
import os
from collections.abc import Iterable, Sequence

import pandas as pd

from tfrec.data.validation import (
    RowAccounting,
    SchemaValidationError,
    ValidationIssue,
    validate,
)
from tfrec.schema import FeatureSchema

FORMATS = ("auto", "csv", "parquet")
#: File endings `format="auto"` recognises (compressed CSV included).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
SOURCE_COLUMN = "_source"


class DataFileError(ValueError):
    """A data file that cannot be found or read; the message names it."""


def expand_data_paths(
    paths: str | os.PathLike | Iterable[str | os.PathLike], suffixes: tuple[str, ...] = CSV_SUFFIXES + PARQUET_SUFFIXES
) -> list[str]:
    """Files named by paths, globs (`logs/*.csv`, `**` included) or folders.

    A folder stands for the files directly inside it whose names end with one
    of `suffixes` (default: CSV and parquet). The result is sorted within each
    argument and keeps the arguments' order.

    Raises:
        DataFileError: an argument matches no file.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        matches = sorted(glob.glob(p, recursive=True)) if any(c in p for c in "*?[") else [p]
        if not matches:
            raise DataFileError(f"no files match {p!r}")
        for m in matches:
            if os.path.isdir(m):
                inside = sorted(f for f in glob.glob(os.path.join(m, "*")) if f.lower().endswith(suffixes))
                if not inside:
                    raise DataFileError(f"folder {m!r} holds no data files (names ending {', '.join(suffixes)})")
                out += inside
            elif not os.path.exists(m):
                raise DataFileError(f"data file not found: {m}")
            else:
                out.append(m)
    if not out:
        raise DataFileError("no data files given")
    return out


def file_format(path: str, format: str = "auto") -> str:
    """`"csv"` or `"parquet"` for `path`; `format="auto"` goes by the file ending."""
    if format not in FORMATS:
        raise ValueError(f"data.format must be one of {FORMATS}, got {format!r}")
    if format != "auto":
        return format
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataFileError(f"cannot tell the format of {path!r} from its name; set data.format to 'csv' or 'parquet'")


def read_file(
    path: str,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One CSV or parquet file as a DataFrame (only `columns` when given).

    CSV columns are read as text (ids such as `"00123"` keep their zeros);
    validation converts them to the types their roles need. Columns the file
    lacks are left out here; validation reports them by name.

    Raises:
        DataFileError: the file cannot be read (wrong encoding, not parquet, ...).
    """
    kind = file_format(path, format)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            wanted = None if columns is None else [c for c in columns if c in names]
            return pd.read_parquet(path, columns=wanted)
        header = pd.read_csv(path, encoding=csv_encoding, sep=csv_delimiter, nrows=0)
        wanted = None if columns is None else [c for c in columns if c in header.columns]
        return pd.read_csv(
            path, encoding=csv_encoding, sep=csv_delimiter, usecols=wanted, dtype=str, keep_default_na=True
        )
    except UnicodeDecodeError as e:
        raise DataFileError(
            f"cannot read {path!r} as CSV with encoding {csv_encoding!r} ({e.reason} at byte "
            f"{e.start}); set data.csv_encoding (e.g. 'latin-1', 'cp1252')"
        ) from e
    except DataFileError:
        raise
    except Exception as e:  # pyarrow / pandas parser errors
        raise DataFileError(f"cannot read {path!r} as {kind}: {e}") from e


@dataclasses.dataclass
class Tables:
    """What `read_tables` returns.

    Attributes:
        frame: the typed valid rows of every file, in file order, with a
            `_source` column naming each row's file.
        rejected: the rejected rows with `_reject_reason` and `_source`.
        accounting: rows read, used and rejected by reason, over all files.
        files: the files read.
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame
    accounting: RowAccounting
    files: list[str]


def read_tables(
    paths,
    schema: FeatureSchema,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
    extra_columns: Sequence[str] = (),
    required_extra: Sequence[str] = (),
) -> Tables:
    """Reads and validates every file of `paths` against `schema`.

    Args:
        paths: files, globs or folders (see `expand_data_paths`).
        schema: the column mapping; each file must have every mapped column.
        format, csv_encoding, csv_delimiter: how to read the files.
        extra_columns: columns outside the schema to keep if present.
        required_extra: columns outside the schema that every file must have
            (for example a quantity column); missing ones are errors.

    Raises:
        DataFileError: a file cannot be found or read.
        SchemaValidationError: a file lacks a mapped column or holds a column
            whose type cannot fit its role; the message names file and column.
    """
    files = expand_data_paths(paths)
    columns = list(dict.fromkeys(schema.column_names() + list(extra_columns) + list(required_extra)))
    accounting = RowAccounting()
    valid, rejected = [], []
    for path in files:
        df = read_file(path, format=format, csv_encoding=csv_encoding, csv_delimiter=csv_delimiter, columns=columns)
        missing = [c for c in required_extra if c not in df.columns]
        if missing:
            raise SchemaValidationError(
                [
                    ValidationIssue(c, "missing column", len(df), f"the table has {list(df.columns)[:20]}")
                    for c in missing
                ],
                len(df),
                source=path,
            )
        report = validate(df, schema, source=path)
        accounting.add(report)
        valid.append(report.valid.assign(**{SOURCE_COLUMN: path}))
        if len(report.rejected):
            rejected.append(report.rejected.assign(**{SOURCE_COLUMN: path}))
    frame = pd.concat(valid, ignore_index=True) if len(valid) > 1 else valid[0]
    rejected_frame = _uniform_columns(pd.concat(rejected, ignore_index=True)) if rejected else pd.DataFrame()
    return Tables(frame=frame, rejected=rejected_frame, accounting=accounting, files=files)


def _uniform_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows keep their raw values; a column that mixes kinds across files (text from a CSV,
    numbers from a parquet file) is written as text, so `rejected.parquet` can hold every row."""
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        values = frame[column]
        present = values[values.notna()]
        kinds = {type(v) for v in present}
        if len(kinds) > 1 and not any(k in (list, tuple) for k in kinds):
            frame[column] = values.map(lambda v: str(v) if pd.notna(v) else None)
    return frame


def reject_rows(tables: Tables, mask, reason: str) -> Tables:
    """Moves the rows of `tables.frame` where `mask` holds to the rejected rows, with `reason`.

    The accounting stays exact: those rows count as rejected, not used.
    """
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return tables
    from tfrec.data.validation import REASON_COLUMN

    moved = tables.frame.loc[mask].assign(**{REASON_COLUMN: reason})
    tables.accounting.rows_used -= int(mask.sum())
    tables.accounting.rejected[reason] += int(mask.sum())
    tables.accounting.check()
    rejected = (
        pd.concat([tables.rejected, moved], ignore_index=True) if len(tables.rejected) else moved.reset_index(drop=True)
    )
    return Tables(
        frame=tables.frame.loc[~mask].reset_index(drop=True),
        rejected=rejected,
        accounting=tables.accounting,
        files=tables.files,
    )
