"""Reading files one chunk at a time: parquet record batches and CSV `chunksize` frames, validated.

`iter_valid_chunks` reads each file in chunks of at most `chunk_rows` rows
(parquet: pyarrow `iter_batches`, only the schema's columns; CSV: pandas
`read_csv(chunksize=...)`, columns as text as `read_file` reads them) and
validates every chunk on its own (`tfrec.data.validation.validate`, the
file's name as the source), so memory holds one chunk, not the file. A
missing column raises `SchemaValidationError` naming the column and the file
before any row is read; a file that cannot be read raises `DataFileError`
naming it.

Validation is per row, so the valid rows of the chunks are the valid rows of
the whole file, with one exception: a column in which every row of a chunk
fails to parse is a table-level problem of that chunk (an error), where the
whole file would only reject those rows.

Example:

```python
accounting = RowAccounting()
for path, report in iter_valid_chunks("logs/*.parquet", schema, accounting=accounting):
    report.valid        # typed valid rows of one chunk of `path`
print(accounting.summary())
```
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import pandas as pd

from tfrec.data.readers import DataFileError, expand_data_paths, file_format
from tfrec.data.validation import RowAccounting, SchemaValidationError, ValidationIssue, ValidationReport, validate
from tfrec.schema import FeatureSchema

#: Rows per chunk by default (a parquet record batch, a CSV `chunksize`).
CHUNK_ROWS = 65_536


def _check_columns(path: str, present: Sequence[str], schema: FeatureSchema) -> None:
    """Raises `SchemaValidationError` naming every schema column `path` lacks."""
    have = set(present)
    issues = [
        ValidationIssue(spec.name, "missing column", 0, f"role '{spec.role.value}'; the file has {list(present)[:20]}")
        for spec in schema.columns()
        if spec.name not in have
    ]
    if issues:
        raise SchemaValidationError(issues, 0, path)


def iter_file_chunks(
    path: str,
    schema: FeatureSchema,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """The schema's columns of one file as DataFrames of at most `chunk_rows` rows (not validated).

    Raises:
        SchemaValidationError: the file lacks a schema column (names both).
        DataFileError: the file cannot be read (names it and says why).
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    kind = file_format(path, format)
    if os.path.getsize(path) == 0:
        raise DataFileError(f"cannot read {path!r}: the file is empty (0 bytes: no header, no rows); re-export it")
    columns = schema.column_names()
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
            _check_columns(path, names, schema)
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns):
                yield batch.to_pandas()
            return
        header = pd.read_csv(path, encoding=csv_encoding, sep=csv_delimiter, nrows=0)
        _check_columns(path, list(header.columns), schema)
        reader = pd.read_csv(
            path,
            encoding=csv_encoding,
            sep=csv_delimiter,
            usecols=columns,
            dtype=str,
            keep_default_na=True,
            chunksize=chunk_rows,
        )
        with reader:
            yield from reader
    except (DataFileError, SchemaValidationError):
        raise
    except Exception as e:  # pyarrow / pandas parser and decoding errors
        raise DataFileError(f"cannot read {path!r} as {kind}: {str(e).rstrip('. ')}") from e


def iter_valid_chunks(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    schema: FeatureSchema,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
    chunk_rows: int = CHUNK_ROWS,
    accounting: RowAccounting | None = None,
) -> Iterator[tuple[str, ValidationReport]]:
    """`(path, report)` of every chunk of every file (paths, globs, folders), validated on its own.

    `accounting` counts the rows read, used and rejected (by reason) and the
    files read (and those without data rows) as the chunks go by.
    """
    for path in expand_data_paths(paths):
        rows = 0
        for chunk in iter_file_chunks(
            path,
            schema,
            format=format,
            csv_encoding=csv_encoding,
            csv_delimiter=csv_delimiter,
            chunk_rows=chunk_rows,
        ):
            report = validate(chunk, schema, source=path)
            rows += report.rows_read
            if accounting is not None:
                accounting.add(report)
            yield path, report
        if accounting is not None:
            accounting.files_read += 1
            if not rows:
                accounting.files_without_rows.append(path)
