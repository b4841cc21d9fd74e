"""Validation of tables against a `FeatureSchema`.

Two kinds of problems are told apart:

* Table-level problems (a mapped column is missing, or its dtype cannot hold
  the role, such as a datetime column mapped to a price) make the table
  unusable: `validate` raises `SchemaValidationError`, whose message names
  every such column, how many rows are affected and the problem.
* Row-level problems (null in a required field, negative price, empty text,
  a label out of range, a negative or infinite sample weight, a propensity
  outside (0, 1], a value that does not parse) reject the row. Rejected
  rows are kept, with their reason, in `ValidationReport.rejected`; nothing is
  dropped silently: `rows_read == rows_used + rows_rejected` always holds.
  With `on_bad_rows="raise"`, any row-level problem raises instead.

Example:

```python
report = validate(df, schema)
print(report.summary())        # rows read/used/rejected, by reason
train_df = report.valid        # cleaned, typed rows
report.rejected.to_parquet("rejected.parquet")   # nothing is lost
```
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Collection

import numpy as np
import pandas as pd

from tfrec.schema import ColumnSpec, FeatureSchema, Kind, SchemaError

REASON_COLUMN = "_reject_reason"


class SchemaValidationError(SchemaError):
    """A table does not fit its schema. `issues` lists each problem."""

    def __init__(self, issues: list[ValidationIssue], rows: int, source: str = ""):
        self.issues = list(issues)
        where = f" in {source}" if source else ""
        lines = [f"{len(issues)} schema problem(s){where} ({rows} rows):"]
        lines += [f"  - {issue}" for issue in issues]
        super().__init__("\n".join(lines))


@dataclasses.dataclass(frozen=True)
class ValidationIssue:
    """One problem with one column: which, what, and how many rows."""

    column: str
    problem: str
    rows: int
    detail: str = ""

    @property
    def reason(self) -> str:
        return f"{self.column}: {self.problem}"

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"column '{self.column}': {self.problem} in {self.rows} row(s){detail}"


@dataclasses.dataclass
class ValidationReport:
    """What `validate` found: typed valid rows, rejected rows and why."""

    rows_read: int
    valid: pd.DataFrame
    rejected: pd.DataFrame
    issues: list[ValidationIssue]
    #: 0-based positions in the checked table of the rows of `valid`, in order.
    valid_positions: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: 0-based positions in the checked table of the rows of `rejected`, in order.
    rejected_positions: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def rows_used(self) -> int:
        return len(self.valid)

    @property
    def rows_rejected(self) -> int:
        return len(self.rejected)

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected row counts keyed by the first problem found in each row."""
        if not len(self.rejected):
            return {}
        return dict(collections.Counter(self.rejected[REASON_COLUMN]))

    def summary(self) -> str:
        return format_row_counts(self.rows_read, self.rows_used, self.rejected_by_reason)


@dataclasses.dataclass
class RowAccounting:
    """Counts rows through a pipeline: read = used + rejected, by reason.

    Readers of files (`tfrec.data.readers.read_tables`) also count the files
    read, name the files without data rows (a header only) and count the used
    rows that repeat an earlier row exactly (`rows_duplicated`; they stay in
    the used rows).
    """

    rows_read: int = 0
    rows_used: int = 0
    rejected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    files_read: int = 0
    files_without_rows: list[str] = dataclasses.field(default_factory=list)
    rows_duplicated: int = 0

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    def add(self, report: ValidationReport) -> None:
        self.rows_read += report.rows_read
        self.rows_used += report.rows_used
        self.rejected.update(report.rejected_by_reason)
        self.check()

    def check(self) -> None:
        if self.rows_read != self.rows_used + self.rows_rejected:
            raise AssertionError(
                f"row accounting broken: read {self.rows_read} != used {self.rows_used} + rejected {self.rows_rejected}"
            )

    def summary(self) -> str:
        """Rows read, used and rejected by reason; then files without data rows and duplicated rows, if any."""
        lines = [format_row_counts(self.rows_read, self.rows_used, dict(self.rejected))]
        if self.files_without_rows:
            lines.append(
                f"  files read {self.files_read}, {len(self.files_without_rows)} without data rows: "
                + ", ".join(self.files_without_rows)
            )
        if self.rows_duplicated:
            lines.append(f"  duplicated {self.rows_duplicated} of the used rows repeat an earlier row exactly (kept)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The counts as plain values (for `metrics.json`)."""
        return {
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_rejected": self.rows_rejected,
            "rejected_by_reason": dict(self.rejected),
            "files_read": self.files_read,
            "files_without_rows": list(self.files_without_rows),
            "rows_duplicated": self.rows_duplicated,
        }


def format_row_counts(rows_read: int, rows_used: int, rejected_by_reason: dict) -> str:
    """Rows read, used and rejected, then one line per rejection reason."""
    lines = [f"rows read {rows_read}, used {rows_used}, rejected {sum(rejected_by_reason.values())}"]
    for reason, count in sorted(rejected_by_reason.items()):
        lines.append(f"  rejected {count:>8d}  {reason}")
    return "\n".join(lines)


def _is_text_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or series.dtype == object


def _sample(values, n=3) -> str:
    return ", ".join(repr(v) for v in list(values)[:n])


class _ColumnChecker:
    """Checks and converts one column; collects table and row problems."""

    def __init__(self, spec: ColumnSpec, schema: FeatureSchema, series: pd.Series):
        self.spec = spec
        self.schema = schema
        self.series = series
        self.table_issues: list[ValidationIssue] = []
        # (problem, boolean mask of bad rows, detail)
        self.row_problems: list[tuple[str, np.ndarray, str]] = []
        self.converted: pd.Series | None = None

    def table_issue(self, problem, rows, detail=""):
        self.table_issues.append(ValidationIssue(self.spec.name, problem, rows, detail))

    def row_problem(self, problem, mask, detail=""):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.row_problems.append((problem, mask, detail))

    def run(self):
        s = self.series
        null = s.isna().to_numpy()
        if not self.spec.nullable:
            self.row_problem("null in required field", null)
        getattr(self, f"_check_{self.spec.kind.value}")(s, null)
        return self

    # --------------------------------------------------------------- kinds
    def _check_text(self, s, null):
        if not _is_text_dtype(s):
            self.table_issue("wrong dtype", len(s), f"expected text, got {s.dtype}")
            return
        text = s.astype(object).where(~null, "")
        text = text.map(lambda v: v if isinstance(v, str) else str(v))
        empty = (text.str.strip() == "").to_numpy() & ~null
        self.row_problem("empty text", empty)
        self.converted = text.astype(str)

    def _to_id_strings(self, s, null):
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
            self.table_issue("wrong dtype", len(s), f"expected an id, got {s.dtype}")
            return None
        if pd.api.types.is_float_dtype(s):
            values = s.to_numpy(dtype=float, na_value=np.nan)
            fractional = ~null & (np.mod(values, 1) != 0)
            if fractional.any():
                self.row_problem(
                    "wrong dtype",
                    fractional,
                    f"ids must be integers or strings, e.g. {_sample(values[fractional])}",
                )
            out = np.full(len(s), "", dtype=object)
            whole = ~null & ~fractional
            out[whole] = values[whole].astype(np.int64).astype(str)
            out[fractional] = values[fractional].astype(str)
            out = pd.Series(out, index=s.index)
            return out
        if pd.api.types.is_integer_dtype(s):
            return s.astype(object).where(~null, "").astype(str)
        return s.astype(object).where(~null, "").map(str)

    def _check_id(self, s, null):
        out = self._to_id_strings(s, null)
        if out is None:
            return
        empty = (out.str.strip() == "").to_numpy() & ~null
        self.row_problem("empty id", empty)
        self.converted = out.astype(str)

    def _check_categorical(self, s, null):
        out = self._to_id_strings(s, null)
        if out is not None:
            self.converted = out.astype(str)  # null -> "" -> OOV bucket

    def _to_float(self, s, null):
        if pd.api.types.is_bool_dtype(s):
            return s.astype(float).to_numpy()
        if pd.api.types.is_numeric_dtype(s):
            return s.to_numpy(dtype=float, na_value=np.nan)
        if _is_text_dtype(s):
            parsed = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            bad = np.isnan(parsed) & ~null
            if self._unparsed(s, bad, f"expected numbers, got {s.dtype} such as", "not parseable as a number, e.g."):
                return None
            return parsed
        self.table_issue("wrong dtype", len(s), f"expected numbers, got {s.dtype}")
        return None

    def _check_numeric(self, s, null):
        values = self._to_float(s, null)
        if values is not None:
            self.row_problem("not finite", np.isinf(values))
            self.converted = pd.Series(values, index=s.index)
        return values

    def _check_nonnegative(self, s, null):
        values = self._check_numeric(s, null)
        if values is not None:
            negative = values < 0
            self.row_problem(
                "negative value",
                negative,
                f"min {np.nanmin(values[negative]) if negative.any() else ''}",
            )

    def _check_weight(self, s, null):
        # NaN is a null (a required field); inf is "not finite"; below 0 is "negative value".
        self._check_nonnegative(s, null)

    def _check_propensity(self, s, null):
        values = self._check_numeric(s, null)
        if values is not None:
            bad = np.isfinite(values) & ((values <= 0) | (values > 1))
            self.row_problem(
                "propensity out of range",
                bad,
                f"expected a probability in (0, 1], got e.g. {_sample(np.unique(values[bad]))}",
            )

    def _check_binary(self, s, null):
        self._check_label(s, null, lambda v: np.isin(v, (0.0, 1.0)), "0 or 1")

    def _check_bounded(self, s, null):
        low, high = self.schema.relevance_range
        self._check_label(s, null, lambda v: (v >= low) & (v <= high), f"[{low:g}, {high:g}]")

    def _check_label(self, s, null, allowed, expected):
        """A label column: numbers for which `allowed(values)` holds (nulls aside)."""
        values = self._to_float(s, null)
        if values is None:
            return
        bad = ~np.isnan(values) & ~allowed(values)
        self.row_problem(
            "label out of range",
            bad,
            f"expected {expected}, got e.g. {_sample(np.unique(values[bad]))}",
        )
        self.converted = pd.Series(values, index=s.index)

    def _check_time(self, s, null):
        if pd.api.types.is_datetime64_any_dtype(s):
            self.converted = s
            return
        if pd.api.types.is_numeric_dtype(s) or _is_text_dtype(s):
            parsed = (
                pd.to_datetime(s, errors="coerce", utc=False, format="mixed")
                if _is_text_dtype(s)
                else pd.to_datetime(s, unit="s", errors="coerce")
            )
            bad = parsed.isna().to_numpy() & ~null
            if not self._unparsed(s, bad, f"expected timestamps, got {s.dtype} such as", "not a timestamp, e.g."):
                self.converted = parsed
            return
        self.table_issue("wrong dtype", len(s), f"expected timestamps, got {s.dtype}")

    def _check_id_list(self, s, null):
        def to_list(v):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                return []
            if isinstance(v, (list, tuple, np.ndarray)):
                return [str(x) for x in v]
            return None

        lists = s.astype(object).map(to_list)
        bad = lists.isna().to_numpy()
        if not self._unparsed(s, bad, "expected lists of item ids, got e.g.", "expected a list of item ids, got e.g."):
            self.converted = lists.where(~bad, None)

    def _unparsed(self, s, bad, column_problem, row_problem) -> bool:
        """Reports the values of `s` that do not parse (`bad`); True if none does (the column is unusable).

        All rows bad is a table issue (the column cannot hold its role); some
        rows bad are row problems. Each message ends with examples.
        """
        if bad.all() and len(s):
            self.table_issue("wrong dtype", int(bad.sum()), f"{column_problem} {_sample(s[bad])}")
            return True
        self.row_problem("wrong dtype", bad, f"{row_problem} {_sample(s[bad])}")
        return False


def validate(
    df: pd.DataFrame,
    schema: FeatureSchema,
    *,
    on_bad_rows: str = "reject",
    source: str = "",
    require: Collection[str] | None = None,
) -> ValidationReport:
    """Checks `df` against `schema` and returns typed valid rows.

    Args:
        df: the table to check. It is not modified.
        schema: the column mapping.
        on_bad_rows: `"reject"` keeps bad rows aside in the report;
            `"raise"` raises `SchemaValidationError` on the first table.
        source: a file name or description used in error messages.
        require: if given, only these mapped columns must be present (for
            example the features without the labels at inference time).

    Returns:
        A `ValidationReport`. `valid` has ids and categoricals as strings
        (missing categoricals as `""`, the OOV value), numbers as float64,
        times as datetime64, history as lists of strings, and the columns not
        in the schema passed through unchanged.

    Raises:
        SchemaValidationError: a mapped column is missing or has a dtype that
            cannot hold its role, or `on_bad_rows="raise"` and a row is bad.
    """
    if on_bad_rows not in ("reject", "raise"):
        raise ValueError(f"on_bad_rows must be 'reject' or 'raise', got {on_bad_rows!r}")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate expects a pandas DataFrame, got {type(df).__name__}")
    n = len(df)
    specs = schema.columns()
    if require is not None:
        specs = [c for c in specs if c.name in set(require)]
    table_issues: list[ValidationIssue] = []
    checkers = []
    for spec in specs:
        if spec.name not in df.columns:
            table_issues.append(
                ValidationIssue(
                    spec.name,
                    "missing column",
                    n,
                    f"role '{spec.role.value}'; the table has {list(df.columns)[:20]}",
                )
            )
            continue
        checker = _ColumnChecker(spec, schema, df[spec.name]).run()
        table_issues += checker.table_issues
        checkers.append(checker)
    if table_issues:
        raise SchemaValidationError(table_issues, n, source)

    reason = np.full(n, None, dtype=object)
    bad = np.zeros(n, dtype=bool)  # rows with a reason: the first problem found names it
    row_issues = []
    for checker in checkers:
        for problem, mask, detail in checker.row_problems:
            issue = ValidationIssue(checker.spec.name, problem, int(mask.sum()), detail)
            row_issues.append(issue)
            reason[mask & ~bad] = issue.reason
            bad |= mask
    if row_issues and on_bad_rows == "raise":
        raise SchemaValidationError(row_issues, n, source)

    out = df.copy()
    for checker in checkers:
        if checker.converted is not None:
            out[checker.spec.name] = (
                checker.converted.to_numpy() if checker.spec.kind != Kind.TIME else checker.converted
            )
    valid = out.loc[~bad].reset_index(drop=True)
    rejected = df.loc[bad].copy()
    rejected[REASON_COLUMN] = reason[bad]
    return ValidationReport(
        rows_read=n,
        valid=valid,
        rejected=rejected.reset_index(drop=True),
        issues=row_issues,
        valid_positions=np.flatnonzero(~bad),
        rejected_positions=np.flatnonzero(bad),
    )
