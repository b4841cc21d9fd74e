"""Reading the user's own tables: CSV and parquet files, globs and folders.

`read_tables` reads every file a list of paths, globs or folders names,
validates each file against the schema on its own (so an error names the file
as well as the column), and returns the valid rows of all files together with
the row accounting and the rejected rows (each with its reason, file and row).

What counts as an error and what as a warning:

* errors (`DataFileError`, naming the file): a file that is missing, empty
  (0 bytes, or only blank lines: no header), not decodable with the CSV
  encoding (the message gives the byte offset, line and column and suggests
  an encoding), not parquet or truncated; and no data rows in any file.
* warnings (`Tables.warnings()`, also counted in `Tables.accounting`): a file
  with a header and no data rows, and used rows that repeat an earlier row
  exactly (kept: an event log may repeat an event on purpose).

Row numbers are data rows of their file counting from 1 (the header is not a
row; in a CSV file without blank lines or fields spanning lines, row N is on
line N + 1).

Example:

```python
tables = read_tables(["logs/2024-*.csv"], schema, csv_encoding="latin-1")
print(tables.accounting.summary())   # rows read = used + rejected, by reason
tables.frame                         # typed valid rows of every file
tables.rejected                      # bad rows, with _reject_reason, _source and _row
for warning in tables.warnings():    # header-only files, duplicated rows
    print(warning)
```
"""

from __future__ import annotations

import bz2
import codecs
import dataclasses
import glob
import gzip
import io
import lzma
import os
import zipfile
from collections.abc import Iterable, Sequence

import numpy as np
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
#: Column of the rejected rows holding each row's data row number in its file (from 1).
ROW_COLUMN = "_row"
#: Row numbers a warning lists before "...".
_EXAMPLE_ROWS = 5


class DataFileError(ValueError):
    """A data file that cannot be found or read; the message names it."""


class NoDataRowsError(DataFileError):
    """The files hold no data rows, or every row read was rejected; the message names the files."""


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
    raise DataFileError(
        f"cannot tell the format of {path!r} from its name (CSV: {', '.join(CSV_SUFFIXES)}; parquet: "
        f"{', '.join(PARQUET_SUFFIXES)}); set data.format to 'csv' or 'parquet'"
    )


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
    lacks are left out here; validation reports them by name. A file with a
    header and no data rows gives an empty frame (`read_tables` warns).

    Raises:
        DataFileError: the file cannot be read; the message names it and says
            why: empty (0 bytes) or without a header, not decodable with
            `csv_encoding` (with the byte offset, line and column of the first
            bad byte and an encoding to try), not parquet or truncated.
    """
    kind = file_format(path, format)
    if os.path.getsize(path) == 0:
        raise DataFileError(f"cannot read {path!r}: the file is empty (0 bytes: no header, no rows); re-export it")
    if kind == "csv":
        try:
            codecs.lookup(csv_encoding)
        except LookupError:
            raise DataFileError(
                f"cannot read {path!r}: unknown encoding {csv_encoding!r} (--encoding, data.csv_encoding); "
                "e.g. 'utf-8', 'latin-1', 'cp1252'"
            ) from None
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
        raise DataFileError(_decode_error_message(path, csv_encoding, csv_delimiter, e)) from e
    except pd.errors.EmptyDataError as e:
        raise DataFileError(
            f"cannot read {path!r}: no header row (the file holds nothing but blank lines); re-export it"
        ) from e
    except DataFileError:
        raise
    except Exception as e:  # pyarrow / pandas parser errors
        hint = (
            "; the file may be truncated (cut short or still being written) or not parquet" if kind == "parquet" else ""
        )
        raise DataFileError(f"cannot read {path!r} as {kind}: {str(e).rstrip('. ')}{hint}") from e


def _open_text_bytes(path: str) -> tuple[io.BufferedIOBase, bool]:
    """The bytes of a CSV file's text (decompressed by its ending, as pandas does) and whether it was compressed."""
    lower = path.lower()
    if lower.endswith(".gz"):
        return gzip.open(path, "rb"), True
    if lower.endswith(".bz2"):
        return bz2.open(path, "rb"), True
    if lower.endswith(".xz"):
        return lzma.open(path, "rb"), True
    if lower.endswith(".zip"):
        archive = zipfile.ZipFile(path)
        return io.BytesIO(archive.read(archive.namelist()[0])), True
    return open(path, "rb"), False


def _first_undecodable(path: str, encoding: str) -> tuple[int, bytes, bytes, bool] | None:
    """Where `path`'s text first fails to decode: (byte offset, the bytes of that line up to the bad
    byte, the rest of that line, compressed?), or None if it decodes (or cannot be re-read)."""
    chunk_size = 1 << 20
    try:
        f, compressed = _open_text_bytes(path)
    except Exception:  # the located position is a bonus; pandas' error stands without it
        return None
    with f:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        start = 0  # offset of `chunk` in the text
        tail = b""  # the current line so far, from earlier chunks
        while True:
            chunk = f.read(chunk_size)
            pending = decoder.getstate()[0]  # bytes of an unfinished character from the last chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                data = pending + chunk
                offset = start - len(pending) + e.start
                before = tail[: len(tail) - len(pending)] + data[: e.start]
                line_start = before.rfind(b"\n") + 1
                after = data[e.start :].split(b"\n", 1)[0]
                return offset, before[line_start:], after, compressed
            if not chunk:
                return None
            newline = chunk.rfind(b"\n")
            tail = tail + chunk if newline < 0 else chunk[newline + 1 :]
            tail = tail[-4096:]
            start += len(chunk)


def _line_number(path: str, offset: int) -> int:
    """1-based line of the byte at `offset` of `path`'s text."""
    f, _ = _open_text_bytes(path)
    lines, read = 1, 0
    with f:
        while read < offset:
            chunk = f.read(min(1 << 20, offset - read))
            if not chunk:
                break
            lines += chunk.count(b"\n")
            read += len(chunk)
    return lines


def _suggest_encoding(line: bytes, given: str) -> tuple[str, str]:
    """(encoding, description) to try for a line `given` cannot decode."""
    if line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "UTF-16 (it starts with a UTF-16 byte-order mark)"
    if codecs.lookup(given).name != "utf-8":
        try:
            line.decode("utf-8")
            return "utf-8", "UTF-8"
        except UnicodeDecodeError:
            pass
    if any(0x80 <= b <= 0x9F for b in line):
        try:
            line.decode("cp1252")
            return "cp1252", "Windows cp1252 (bytes 0x80-0x9f: curly quotes, dashes, the euro sign)"
        except UnicodeDecodeError:
            pass
    return "latin-1", "Latin-1 or Windows cp1252"


def _column_at(path: str, encoding: str, delimiter: str, line_before: bytes) -> str | None:
    """The header's name of the field a line's bad byte falls in (`line_before`: the line up to it)."""
    import csv

    try:
        f, _ = _open_text_bytes(path)
        with f:
            header_line = f.readline(1 << 16).decode(encoding, errors="replace").lstrip("\ufeff")
        names = next(csv.reader([header_line], delimiter=delimiter))
        fields = next(csv.reader([line_before.decode(encoding, errors="replace") + "x"], delimiter=delimiter))
    except Exception:  # an approximate bonus only
        return None
    return names[len(fields) - 1] if len(fields) <= len(names) else None


def _decode_error_message(path: str, encoding: str, delimiter: str, error: UnicodeDecodeError) -> str:
    """Names the file, where its text first fails to decode (byte, line, column, the bytes there) and an
    encoding to give."""
    found = _first_undecodable(path, encoding)
    what = f"cannot read {path!r} as CSV with encoding {encoding!r}"
    if found is None:
        return (
            f"{what} ({error.reason}, byte {error.start} of a read buffer); if the file is Latin-1 or Windows "
            f"cp1252, give --encoding latin-1 (data.csv_encoding: latin-1 in a job config)"
        )
    offset, before, after, compressed = found
    line = _line_number(path, offset)
    column = _column_at(path, encoding, delimiter, before) if line > 1 else None
    near = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in before[-30:] + after[:30])
    where = f"line {line}" + (", the header" if line == 1 else "") + (f", column {column!r}" if column else "")
    name, description = _suggest_encoding(before + after, encoding)
    of_text = " of the decompressed text" if compressed else ""
    return (
        f"{what}: not {encoding} at byte {offset}{of_text} ({where}, near '{near}'); if the file is "
        f"{description}, give --encoding {name} (data.csv_encoding: {name} in a job config)"
    )


@dataclasses.dataclass(frozen=True)
class DuplicateRows:
    """Used rows of one file that repeat an earlier used row (of that file or an earlier one) exactly.

    Attributes:
        path: the file.
        count: how many of its rows repeat an earlier row.
        rows: the first few of those rows (data row numbers, from 1).
        first_repeats: the file and row the first of them repeats.
    """

    path: str
    count: int
    rows: tuple[int, ...]
    first_repeats: tuple[str, int]

    def __str__(self) -> str:
        listed = ", ".join(str(r) for r in self.rows) + (", ..." if self.count > len(self.rows) else "")
        origin_path, origin_row = self.first_repeats
        origin = f"row {origin_row}" if origin_path == self.path else f"{origin_path} row {origin_row}"
        return (
            f"{self.path}: {self.count} row(s) repeat an earlier row exactly: "
            f"row{'s' if self.count > 1 else ''} {listed} (row {self.rows[0]} repeats {origin}); "
            "kept, drop them before reading if unintended"
        )


@dataclasses.dataclass
class Tables:
    """What `read_tables` returns.

    Attributes:
        frame: the typed valid rows of every file, in file order, with a
            `_source` column naming each row's file.
        rejected: the rejected rows with `_reject_reason`, `_source` and
            `_row` (the row's data row number in its file, from 1).
        accounting: rows read, used and rejected by reason, files read and
            without data rows, duplicated rows, over all files.
        files: the files read.
        row_numbers: each row of `frame`'s data row number in its file (from 1).
        duplicates: per file, the used rows that repeat an earlier row.
    """

    frame: pd.DataFrame
    rejected: pd.DataFrame
    accounting: RowAccounting
    files: list[str]
    row_numbers: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    duplicates: list[DuplicateRows] = dataclasses.field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per file without data rows and per file with duplicated rows, each naming the file."""
        out = [f"{path}: no data rows (only a header)" for path in self.accounting.files_without_rows]
        return out + [str(d) for d in self.duplicates]

    def rejected_examples(self, n: int = 3) -> dict[str, str]:
        """Per rejection reason, where its first `n` rows are: `"day1.csv rows 2, 7; day2.csv row 1"`."""
        out: dict[str, str] = {}
        if not len(self.rejected) or ROW_COLUMN not in self.rejected:
            return out
        from tfrec.data.validation import REASON_COLUMN

        for reason, group in self.rejected.groupby(REASON_COLUMN, sort=True):
            head = group.head(n)
            parts = []
            for path, rows in head.groupby(SOURCE_COLUMN, sort=False)[ROW_COLUMN]:
                numbers = [str(int(r)) for r in rows if pd.notna(r)]
                if numbers:
                    parts.append(f"{path} row{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}")
            more = ", ..." if len(group) > n else ""
            if parts:
                out[str(reason)] = "; ".join(parts) + more
        return out


def read_tables(
    paths,
    schema: FeatureSchema,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
    extra_columns: Sequence[str] = (),
    required_extra: Sequence[str] = (),
    require_rows: bool = True,
) -> Tables:
    """Reads and validates every file of `paths` against `schema`.

    Args:
        paths: files, globs or folders (see `expand_data_paths`).
        schema: the column mapping; each file must have every mapped column.
        format, csv_encoding, csv_delimiter: how to read the files.
        extra_columns: columns outside the schema to keep if present.
        required_extra: columns outside the schema that every file must have
            (for example a quantity column); missing ones are errors.
        require_rows: raise `NoDataRowsError` when no file holds a data row or
            every row is rejected (default; `tfrec validate` reports instead).

    Files with a header and no data rows, and used rows repeating an earlier
    row exactly, are kept, counted in the accounting and listed by
    `Tables.warnings()`.

    Raises:
        DataFileError: a file cannot be found or read (empty, wrong encoding,
            not parquet, ...); `NoDataRowsError`: no data rows at all, or none
            usable (with `require_rows`).
        SchemaValidationError: a file lacks a mapped column or holds a column
            whose type cannot fit its role; the message names file and column.
    """
    files = expand_data_paths(paths)
    columns = list(dict.fromkeys(schema.column_names() + list(extra_columns) + list(required_extra)))
    accounting = RowAccounting()
    valid, rejected, row_numbers = [], [], []
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
        accounting.files_read += 1
        if report.rows_read == 0:
            accounting.files_without_rows.append(path)
        valid.append(report.valid.assign(**{SOURCE_COLUMN: path}))
        row_numbers.append(report.valid_positions + 1)
        if len(report.rejected):
            rejected.append(report.rejected.assign(**{SOURCE_COLUMN: path, ROW_COLUMN: report.rejected_positions + 1}))
    frame = pd.concat(valid, ignore_index=True) if len(valid) > 1 else valid[0]
    rejected_frame = _uniform_columns(pd.concat(rejected, ignore_index=True)) if rejected else pd.DataFrame()
    numbers = np.concatenate(row_numbers).astype(np.int64)
    duplicates = _duplicates(frame, numbers)
    accounting.rows_duplicated = sum(d.count for d in duplicates)
    if require_rows and accounting.rows_read == 0:
        listed = ", ".join(files[:5]) + (f", ... ({len(files)} files)" if len(files) > 5 else "")
        each = "only a header" if len(files) == 1 else "each only a header"
        raise NoDataRowsError(f"no data rows in any file: {listed} ({each}); nothing to read")
    if require_rows and accounting.rows_used == 0:
        raise NoDataRowsError(
            f"no usable rows: all {accounting.rows_read} rows read were rejected "
            f"({accounting.summary().replace(chr(10), '; ')}); check the rows with `tfrec validate --rejected`"
        )
    return Tables(
        frame=frame,
        rejected=rejected_frame,
        accounting=accounting,
        files=files,
        row_numbers=numbers,
        duplicates=duplicates,
    )


#: `pandas.api.types.infer_dtype` kinds of object columns whose cells can be compared as they are.
_SCALARS = frozenset({"string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "datetime", "date"})


def _hashable(value):
    """A list-like cell (an id history) as a tuple, so rows can be compared."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value


def _duplicates(frame: pd.DataFrame, row_numbers: np.ndarray) -> list[DuplicateRows]:
    """Per file, the rows of `frame` equal in every column (its `_source` aside) to an earlier row."""
    if len(frame) < 2:
        return []
    rows = frame.drop(columns=[SOURCE_COLUMN])
    for column in rows.columns:
        if rows[column].dtype == object and pd.api.types.infer_dtype(rows[column], skipna=True) not in _SCALARS:
            rows[column] = rows[column].map(_hashable)
    if not rows.columns.size:
        return []
    group = rows.groupby(list(rows.columns), dropna=False, sort=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(rows))).groupby(group).transform("min").to_numpy()
    repeat = first != np.arange(len(rows))
    if not repeat.any():
        return []
    sources = frame[SOURCE_COLUMN].to_numpy()
    out = []
    for path in dict.fromkeys(sources[repeat]):
        at = np.flatnonzero(repeat & (sources == path))
        origin = int(first[at[0]])
        out.append(
            DuplicateRows(
                path=str(path),
                count=len(at),
                rows=tuple(int(r) for r in row_numbers[at[:_EXAMPLE_ROWS]]),
                first_repeats=(str(sources[origin]), int(row_numbers[origin])),
            )
        )
    return out


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

    The accounting stays exact: those rows count as rejected, not used. The
    moved rows keep their file (`_source`) and row number (`_row`).
    """
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return tables
    from tfrec.data.validation import REASON_COLUMN

    moved = tables.frame.loc[mask].assign(**{REASON_COLUMN: reason})
    if len(tables.row_numbers) == len(tables.frame):
        moved[ROW_COLUMN] = tables.row_numbers[mask]
    tables.accounting.rows_used -= int(mask.sum())
    tables.accounting.rejected[reason] += int(mask.sum())
    tables.accounting.check()
    rejected = (
        _uniform_columns(pd.concat([tables.rejected, moved], ignore_index=True))
        if len(tables.rejected)
        else moved.reset_index(drop=True)
    )
    return Tables(
        frame=tables.frame.loc[~mask].reset_index(drop=True),
        rejected=rejected,
        accounting=tables.accounting,
        files=tables.files,
        row_numbers=tables.row_numbers[~mask] if len(tables.row_numbers) == len(mask) else tables.row_numbers,
        duplicates=tables.duplicates,
    )
