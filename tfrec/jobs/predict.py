"""`tfrec predict`: score CSV/parquet files with a trained model, in bounded memory.

`predict(model_path, files, output)` scores every row of `files` with one
signature of a model and appends the results to a parquet file:

* `model_path` is a run directory a `tfrec` job wrote (`model.keras`,
  `config.yaml`; the in-process Keras model scores, through the same
  functions the export serves, `tfrec.export.saved_model.build_signatures`),
  or a SavedModel that `tfrec export` wrote: a version folder
  `<base>/<name>/<version>/` (its `assets.extra/tfrec_manifest.json` holds
  the schema) or the model folder `<base>/<name>/` (its newest version).
* `signature` is one the model has (`signature_names`): `serving_default`
  (= `score` with items, `user_value` without), `score`, `encode_query`,
  `encode_item`, `user_value`, `retrieve` (the top `k` item ids and scores
  as list columns). Only the columns the signature reads are required and
  validated. A logged `position` is not read: like the served `score`,
  P(click) is scored as at position 1.
* Files are read in chunks of `chunk_rows` rows (`ParquetFile.iter_batches`,
  `read_csv(chunksize=...)`, only the needed columns), each chunk validated
  with the rules training uses (`tfrec.data.validation.validate`), its valid
  rows scored in batches of `batch_size` and appended with a
  `pyarrow.parquet.ParquetWriter`; nothing holds all rows. A column of which
  no value in a chunk parses (say every price is text) rejects that chunk's
  rows, and is a schema error, as in training, only when no value of the
  whole file parses, so the output does not depend on the chunk size.
* The output has the key columns (the schema's query text, user id and item
  id where the files have them, as text), `row` (0-based row number across
  the input files, in order), `file` and the prediction columns (`ctr`,
  `score`, `relevance`, `user_value`, `value_probability`; embeddings
  `query_embedding` / `item_embedding` as fixed-size lists; `retrieve`:
  `item_ids` and `scores`). Rejected rows go, with `row`, `file`, `reason`
  and their raw values as text, to `<output>.rejected.parquet` (or
  `rejected`), always written (empty when none). Both files are written
  under temporary names and renamed into place at the end, so an error leaves
  no half-written output.

**Transactions runs.** A run of `data.shape: transactions` scores customers,
not lines: its model reads per-customer features (`frequency`,
`recency_days`, `monetary`, ...) that the job computes from all of a
customer's transaction lines before the cutoff
(`tfrec.data.shapes.customer_features`). `predict` reads the lines the way
`tfrec.data.tables.load_data` does (the same schema, the amount column or
`quantity x price`, the same rejections), keeps only running per-customer
aggregates (`StreamingCustomerFeatures`: net spend, first and last purchase,
purchase days, category counts, last numeric values, distinct items), so
memory grows with customers (times their purchase days and distinct items),
not with lines or their width, and computes the features at the
run's `data.cutoff` (or `as_of`) exactly as the job computes its test rows;
then scores each customer (`user_value`, `value_probability`). The output has
one row per customer with a purchase before the cutoff: the id, the
features and the predictions. A user-value export is read the same way
where it knows its run's config (`tfrec export RUN_DIR` copies it into the
manifest as `training_config`, or the export sits in
`RUN_DIR/models/<name>/<version>`); otherwise it scores rows of
per-customer features.

Example:

```python
summary = predict("runs/search_logs", ["new_logs/*.csv"], "scores.parquet", chunk_rows=100_000)
print(summary.text())            # rows read = scored + rejected, by reason; seconds, rows/s
pd.read_parquet("scores.parquet")  # search_query, sku, row, file, ctr, score
predict("runs/search_logs/models/tfrec", ["q.parquet"], "top.parquet", signature="retrieve", k=20)
predict("runs/transactions", ["tx/*.csv"], "value.parquet", as_of="2023-12-31")  # one row per customer
```
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tfrec.data.readers import DataFileError, expand_data_paths, file_format
from tfrec.data.shapes import HISTORY_COLUMN, _naive, _time_boundary
from tfrec.data.validation import REASON_COLUMN, SchemaValidationError, ValidationIssue, validate
from tfrec.schema import FeatureSchema, Kind, SchemaError

ROW_COLUMN = "row"
FILE_COLUMN = "file"
REASON_OUTPUT = "reason"
SIGNATURES = ("serving_default", "score", "encode_query", "encode_item", "user_value", "retrieve")
#: Inputs of `retrieve` that are not table columns.
RETRIEVE_EXTRA = ("k", "exclude_item_ids")
# Kinds whose text values are parsed (numbers, times, id lists): a chunk in which none parses is rejected row by row.
_PARSED_KINDS = (
    Kind.NUMERIC,
    Kind.NONNEGATIVE,
    Kind.BINARY,
    Kind.BOUNDED,
    Kind.TIME,
    Kind.ID_LIST,
    Kind.WEIGHT,
    Kind.PROPENSITY,
)
_ROW = "__tfrec_row"  # the row number, carried through validation (an unmapped column passes unchanged)


class PredictError(ValueError):
    """A usage error of `predict` (a signature the model lacks, a missing run file, ...); the message says what."""


@dataclasses.dataclass
class PredictSummary:
    """What `predict` did: rows read = scored (used) + rejected, by reason, and how fast.

    For a transactions run `rows_*` count transaction lines (`rows_used`: valid
    lines, of which `lines_before_as_of` entered the features) and
    `customers` the rows written.
    """

    output: str
    rejected_path: str
    signature: str
    model: str
    files: list[str]
    rows_read: int = 0
    rows_used: int = 0
    rejected: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    rows_written: int = 0
    seconds: float = 0.0
    as_of: str | None = None
    customers: int | None = None
    lines_before_as_of: int | None = None

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def check(self) -> None:
        if self.rows_read != self.rows_used + self.rows_rejected:
            raise AssertionError(
                f"row accounting broken: read {self.rows_read} != used {self.rows_used} + rejected {self.rows_rejected}"
            )

    def text(self) -> str:
        """The printed summary: counts, rejections by reason, time and throughput, the files written."""
        used = "used" if self.customers is not None else "scored"
        lines = [f"rows read {self.rows_read:,}, {used} {self.rows_used:,}, rejected {self.rows_rejected:,}"]
        lines += [f"  rejected {n:>10,}  {reason}" for reason, n in sorted(self.rejected.items())]
        if self.customers is not None:
            lines.append(
                f"customers scored {self.customers:,} (features at {self.as_of} from "
                f"{self.lines_before_as_of or 0:,} lines before it)"
            )
        lines.append(f"{self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s; signature {self.signature}")
        lines.append(f"wrote {self.rows_written:,} rows to {self.output}; rejected rows to {self.rejected_path}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(rejected=dict(self.rejected), rows_rejected=self.rows_rejected)
        out["rows_per_second"] = self.rows_per_second
        return out


# ----------------------------------------------------------------- the model
@dataclasses.dataclass
class Scorer:
    """One signature of a model: the columns it reads and a function from numpy features to numpy outputs.

    Attributes:
        signature: the signature name asked for (`serving_default` kept as is).
        schema: the model's schema (validation rules of the inputs).
        inputs: the table columns the signature reads.
        specs: `{input: tf.TensorSpec}`, `k` and `exclude_item_ids` included for `retrieve`.
        fn: `features -> outputs`, both dicts of numpy arrays.
        k: rows `retrieve` asks for.
    """

    signature: str
    schema: FeatureSchema
    inputs: list[str]
    specs: dict
    fn: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    k: int = 10

    def __call__(self, features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = dict(features)
        n = len(next(iter(features.values())))
        if "k" in self.specs:
            features["k"] = np.full(n, self.k, np.int32)
            features["exclude_item_ids"] = np.full((n, 1), "", dtype=object)
        return self.fn(features)

    def dry_run(self) -> dict[str, np.ndarray]:
        """Outputs for one row of blank inputs (their names, dtypes and widths)."""
        import tensorflow as tf

        blank: dict[str, np.ndarray] = {}
        for name in self.inputs:
            spec = self.specs[name]
            shape = [1] + [1 if d is None else d for d in spec.shape[1:]]
            blank[name] = np.full(shape, "", dtype=object) if spec.dtype == tf.string else np.zeros(shape, np.float32)
        return self(blank)


def _numpy_outputs(out) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in out.items()}


@dataclasses.dataclass
class LoadedModel:
    """A run directory's Keras model or a SavedModel, with the run config where there is one."""

    path: str
    kind: str  # "run" or "export"
    schema: FeatureSchema
    signatures: list[str]
    run_config: Any = None  # the run's JobConfig (a run directory, or an export inside one)
    keras_model: Any = None
    saved_model: Any = None
    manifest: dict | None = None

    @property
    def user_value_only(self) -> bool:
        return "score" not in self.signatures

    def check_signature(self, signature: str) -> None:
        if signature not in self.signatures:
            raise PredictError(
                f"the model at {self.path!r} has no signature {signature!r}; it has {', '.join(self.signatures)}"
            )

    def scorer(self, signature: str, k: int = 10) -> Scorer:
        """The `Scorer` of `signature` (checked against the model's signatures)."""
        self.check_signature(signature)
        if k < 1:
            raise PredictError(f"k must be >= 1, got {k}")
        if self.kind == "export":
            return self._export_scorer(signature, k)
        return self._keras_scorer(signature, k)

    def _export_scorer(self, signature: str, k: int) -> Scorer:
        fn = self.saved_model.signatures[signature]
        specs = dict(fn.structured_input_signature[1])
        inputs = [name for name in specs if name not in RETRIEVE_EXTRA]
        unknown = [c for c in inputs if c not in self.schema.column_names()]
        if unknown:
            raise PredictError(f"signature {signature!r} of {self.path!r} reads {unknown}, which its schema lacks")
        import tensorflow as tf

        def call(features):
            return _numpy_outputs(fn(**{name: tf.constant(features[name]) for name in specs}))

        return Scorer(signature, self.schema, inputs, specs, call, k)

    def _keras_scorer(self, signature: str, k: int) -> Scorer:
        import tensorflow as tf

        from tfrec.export.retrieval_index import BruteForceIndex
        from tfrec.export.saved_model import ServingCatalog, build_signatures, has_items

        model = self.keras_model
        name = signature
        if name == "serving_default":
            name = "score" if has_items(model) else "user_value"
        if has_items(model):
            if name == "retrieve":
                from tfrec.models.inference import encode_items

                path = os.path.join(self.path, "catalog.parquet")
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"run directory {self.path!r} has no catalog.parquet (retrieve needs it)")
                catalog = pd.read_parquet(path)
                ids = catalog[self.schema.item_id].astype(str).to_numpy()
                embeddings = encode_items(model, catalog).astype(np.float32)
            else:  # the other signatures never read the catalog
                ids, embeddings = np.array(["-"], dtype=object), np.zeros((1, model.item_tower.output_dim), np.float32)
            holder = ServingCatalog(ids, name="tfrec_predict_catalog")
            endpoints = build_signatures(model, ids, embeddings, max(k, 1), holder, index=BruteForceIndex(embeddings))
        else:
            endpoints = build_signatures(model, None, None, max(k, 1), None)
        body, spec = endpoints[name]
        fn = tf.function(body, input_signature=[spec], autograph=False)  # plain tensor code, as exported
        specs = dict(spec)

        def call(features):
            return _numpy_outputs(fn({c: tf.constant(features[c]) for c in specs}))

        inputs = [c for c in specs if c not in RETRIEVE_EXTRA]
        return Scorer(signature, self.schema, inputs, specs, call, k)


def _is_export(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def _read_run_config(run_dir: str):
    from tfrec.jobs.config import JobConfig
    from tfrec.jobs.evaluate import read_run_config

    return JobConfig.from_dict(read_run_config(run_dir))


def load_model(path: str) -> LoadedModel:
    """The model at `path`: a run directory, a SavedModel version folder or a model folder (its newest version).

    Raises:
        FileNotFoundError: `path` does not exist, or a run directory lacks `model.keras` / `config.yaml`.
        PredictError: `path` is neither, or an export lacks its manifest.
    """
    from tfrec.export.ops import version_numbers

    if not os.path.exists(path):
        raise FileNotFoundError(f"model not found: {path!r} (give a run directory or a SavedModel export)")
    if not _is_export(path):
        versions = version_numbers(path, complete=True)
        if versions:
            path = os.path.join(path, str(versions[-1]))
    if _is_export(path):
        return _load_export(path)
    if os.path.isfile(os.path.join(path, "model.keras")) or os.path.isfile(os.path.join(path, "config.yaml")):
        from tfrec.jobs.pipeline import load_run_model

        config = _read_run_config(path)  # raises naming config.yaml when it is missing
        model = load_run_model(path)  # raises naming model.keras when it is missing
        from tfrec.export.saved_model import signature_names

        return LoadedModel(path, "run", model.schema, signature_names(model), run_config=config, keras_model=model)
    raise PredictError(
        f"{path!r} is neither a run directory (model.keras, config.yaml) nor a SavedModel export "
        "(saved_model.pb, or numbered version folders holding one)"
    )


def _load_export(path: str) -> LoadedModel:
    from tfrec.export.saved_model import MANIFEST_FILE

    manifest_path = os.path.join(path, "assets.extra", MANIFEST_FILE)
    if not os.path.isfile(manifest_path):
        raise PredictError(f"SavedModel {path!r} has no assets.extra/{MANIFEST_FILE} (not written by tfrec export?)")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the TF Text ops the graph uses)

    loaded = tf.saved_model.load(path)
    schema = FeatureSchema.from_dict(manifest["schema"])
    run_config = None
    run_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(path))))  # RUN_DIR/models/<name>/<v>
    config = None
    if "score" not in loaded.signatures and manifest.get("training_config"):
        from tfrec.jobs.config import JobConfig

        config = JobConfig.from_dict(manifest["training_config"])  # `tfrec export RUN_DIR` copies the run's config
    elif "score" not in loaded.signatures and os.path.isfile(os.path.join(run_dir, "config.yaml")):
        config = _read_run_config(run_dir)
    if config is not None and config.data.source == "files" and config.data.shape == "transactions":
        run_config = config
    names = [s for s in SIGNATURES if s in loaded.signatures]
    names += sorted(s for s in loaded.signatures if s not in SIGNATURES)
    return LoadedModel(path, "export", schema, names, run_config=run_config, saved_model=loaded, manifest=manifest)


# ------------------------------------------------------------- reading files
def _read_error(path: str, kind: str, encoding: str, e: Exception) -> DataFileError:
    if isinstance(e, UnicodeDecodeError):
        return DataFileError(
            f"cannot read {path!r} as CSV with encoding {encoding!r} ({e.reason} at byte {e.start}); "
            "pass --encoding (e.g. 'latin-1', 'cp1252')"
        )
    return DataFileError(f"cannot read {path!r} as {kind}: {e}")


def file_columns(path: str, *, format: str = "auto", csv_encoding: str = "utf-8", csv_delimiter: str = ",") -> list:
    """The column names of a CSV (its header) or parquet file (its schema), without reading rows.

    Raises:
        DataFileError: the file cannot be read; the message names it.
    """
    kind = file_format(path, format)
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, encoding=csv_encoding, sep=csv_delimiter, nrows=0).columns)
    except Exception as e:  # pyarrow / pandas parser errors
        raise _read_error(path, kind, csv_encoding, e) from e


def iter_chunks(
    path: str,
    columns: Sequence[str],
    chunk_rows: int,
    *,
    format: str = "auto",
    csv_encoding: str = "utf-8",
    csv_delimiter: str = ",",
) -> Iterator[pd.DataFrame]:
    """The rows of one file, `chunk_rows` at a time, only `columns` (those it has).

    As `tfrec.data.readers.read_file`: CSV columns are read as text (ids keep
    their zeros; validation converts), parquet keeps its types.

    Raises:
        DataFileError: the file cannot be read (at any chunk); the message names it.
    """
    kind = file_format(path, format)
    try:
        if kind == "parquet":
            pf = pq.ParquetFile(path)
            wanted = [c for c in columns if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=wanted):
                yield batch.to_pandas()
        else:
            header = pd.read_csv(path, encoding=csv_encoding, sep=csv_delimiter, nrows=0)
            wanted = [c for c in columns if c in header.columns]
            with pd.read_csv(
                path,
                encoding=csv_encoding,
                sep=csv_delimiter,
                usecols=wanted,
                dtype=str,
                keep_default_na=True,
                chunksize=chunk_rows,
            ) as reader:
                yield from reader
    except Exception as e:  # pyarrow / pandas parser errors, a wrong encoding
        raise _read_error(path, kind, csv_encoding, e) from e


class MissingColumnsError(SchemaValidationError):
    """A file lacks columns the model reads; the message names the file, each column and its role."""

    def __init__(self, path: str, missing: list[str], have: list[str], schema: FeatureSchema, hint: str = ""):
        roles = {spec.name: spec.role.value for spec in schema.columns()}
        self.issues = [ValidationIssue(c, "missing column", 0, f"role '{roles.get(c, 'extra')}'") for c in missing]
        lines = [f"{path}: {len(missing)} column(s) the model reads are missing (the file has {have[:20]}):"]
        lines += [f"  - column '{c}': missing column (role '{roles.get(c, 'extra')}')" for c in missing]
        if schema.user_history in missing:
            lines.append(
                f"  '{schema.user_history}' is each row's list of the user's earlier item ids (an interactions run "
                "derives it with tfrec.data.shapes.add_history; its test.parquet has it)"
            )
        if hint:
            lines.append(f"  {hint}")
        SchemaError.__init__(self, "\n".join(lines))


class _ChunkValidator:
    """`validate` of one file's chunks; a parsed column no value of a chunk parses rejects that chunk's rows.

    Whole-file semantics are kept: such a column is a schema error (as in
    `tfrec validate` and training) only when no value of the file parses
    (`finish_file`).
    """

    def __init__(self, schema: FeatureSchema, require: Sequence[str]):
        self.schema = schema
        self.require = list(require)
        self.specs = {spec.name: spec for spec in schema.columns() if spec.name in set(require)}
        self.order = {name: i for i, name in enumerate(self.specs)}
        self.unparsed_rows: collections.Counter = collections.Counter()
        self.file_rows = 0

    def start_file(self) -> None:
        self.unparsed_rows.clear()
        self.file_rows = 0

    def __call__(self, chunk: pd.DataFrame, path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(valid typed rows, rejected raw rows with `_reject_reason`)."""
        self.file_rows += len(chunk)
        try:
            report = validate(chunk, self.schema, source=path, require=self.require)
            return report.valid, report.rejected
        except SchemaValidationError as e:
            unparsed = self._unparsed(e.issues, chunk)
            if unparsed is None:
                raise
        for column in unparsed:
            self.unparsed_rows[column] += len(chunk)
        first = min(unparsed, key=self.order.__getitem__)
        rest = [c for c in self.require if c not in unparsed]
        report = validate(chunk, self.schema, source=path, require=rest)
        column_of = {issue.reason: issue.column for issue in report.issues}
        reasons = pd.Series(f"{first}: wrong dtype", index=chunk.index, dtype=object)
        if len(report.rejected):
            earlier = report.rejected[report.rejected[REASON_COLUMN].map(column_of).map(self.order) < self.order[first]]
            position = pd.Index(chunk[_ROW]).get_indexer(earlier[_ROW])
            reasons.iloc[position] = earlier[REASON_COLUMN].to_numpy()
        return chunk.iloc[:0], chunk.assign(**{REASON_COLUMN: reasons.to_numpy()})

    def _unparsed(self, issues: list[ValidationIssue], chunk: pd.DataFrame) -> list[str] | None:
        """The columns of `issues` if every one is a parsed column of text of which no value parsed; else None."""
        out = []
        for issue in issues:
            spec = self.specs.get(issue.column)
            if (
                issue.problem != "wrong dtype"
                or spec is None
                or spec.kind not in _PARSED_KINDS
                or not (pd.api.types.is_string_dtype(chunk[issue.column]) or chunk[issue.column].dtype == object)
            ):
                return None
            out.append(issue.column)
        return out or None

    def finish_file(self, path: str) -> None:
        """Raises if a column parsed in no chunk of the file: the file's column cannot hold its role."""
        bad = [c for c, n in self.unparsed_rows.items() if self.file_rows and n == self.file_rows]
        if bad:
            raise SchemaValidationError(
                [
                    ValidationIssue(c, "wrong dtype", self.file_rows, f"no value parses as {self.specs[c].kind.value}")
                    for c in bad
                ],
                self.file_rows,
                source=path,
            )


# ------------------------------------------------------------- writing files
def _text_value(v) -> str | None:
    if isinstance(v, (list, tuple, np.ndarray)):
        return str([x.item() if isinstance(x, np.generic) else x for x in v])
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return str(v)


def _text_array(values: pd.Series) -> pa.Array:
    """A column as pyarrow strings (nulls kept)."""
    if pd.api.types.is_string_dtype(values):
        try:
            return pa.array(values.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array([_text_value(v) for v in values.to_numpy(dtype=object)], type=pa.string())


def _output_array(values: np.ndarray) -> pa.Array:
    """A prediction column: numbers, or a fixed-size list column for `[rows, d]` outputs (decoded text for ids)."""
    flat = values.reshape(-1)
    if flat.dtype == object or flat.dtype.kind == "S":
        flat = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in flat], dtype=object)
        array = pa.array(flat, type=pa.string())
    else:
        array = pa.array(flat)
    if values.ndim == 1:
        return array
    return pa.FixedSizeListArray.from_arrays(array, int(np.prod(values.shape[1:])))


class _ParquetSink:
    """A parquet file written under a temporary name (`commit` renames it into place, `abort` removes it)."""

    def __init__(self, path: str, schema: pa.Schema):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        self.path = path
        self.schema = schema
        self.tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
        self.writer = pq.ParquetWriter(self.tmp, schema)
        self.rows = 0

    def write(self, columns: dict[str, pa.Array]) -> None:
        table = pa.Table.from_arrays([columns[f.name] for f in self.schema], schema=self.schema)
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def commit(self) -> None:
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.writer.close()
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


def _rejected_schema(columns: Sequence[str]) -> pa.Schema:
    return pa.schema(
        [pa.field(ROW_COLUMN, pa.int64()), pa.field(FILE_COLUMN, pa.string()), pa.field(REASON_OUTPUT, pa.string())]
        + [pa.field(c, pa.string()) for c in columns]
    )


def _rejected_columns(rejected: pd.DataFrame, columns: Sequence[str], path: str) -> dict[str, pa.Array]:
    n = len(rejected)
    out = {
        ROW_COLUMN: pa.array(rejected[_ROW].to_numpy(dtype=np.int64)),
        FILE_COLUMN: pa.array([path] * n, type=pa.string()),
        REASON_OUTPUT: pa.array(rejected[REASON_COLUMN].to_numpy(dtype=object), type=pa.string()),
    }
    for c in columns:
        out[c] = _text_array(rejected[c]) if c in rejected.columns else pa.nulls(n, pa.string())
    return out


def _progress(message: str) -> None:
    print(f"[tfrec {time.strftime('%H:%M:%S')}] predict: {message}", file=sys.stderr, flush=True)


def _validated_chunks(files, columns, chunk_rows, read, validator, summary, rejected_sink):
    """(path, chunk number, chunk, valid rows, rejected rows) of each chunk of `files`; rejections recorded."""
    for path in files:
        validator.start_file()
        for number, chunk in enumerate(iter_chunks(path, columns, chunk_rows, **read)):
            chunk = chunk.assign(**{_ROW: np.arange(summary.rows_read, summary.rows_read + len(chunk))})
            summary.rows_read += len(chunk)
            valid, bad = validator(chunk, path)
            if len(bad):
                summary.rejected.update(bad[REASON_COLUMN].tolist())
                rejected_sink.write(_rejected_columns(bad, columns, path))
            yield path, number, chunk, valid, bad
        validator.finish_file(path)


def _score(scorer: Scorer, features: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    n = len(next(iter(features.values()))) if features else 0
    parts = [scorer({k: v[i : i + batch_size] for k, v in features.items()}) for i in range(0, n, batch_size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


# ----------------------------------------------------------------- predict
def predict(
    model_path: str,
    data: str | Sequence[str],
    output: str,
    *,
    signature: str = "serving_default",
    k: int = 10,
    batch_size: int = 1024,
    chunk_rows: int = 65_536,
    rejected: str | None = None,
    csv_encoding: str | None = None,
    csv_delimiter: str | None = None,
    format: str = "auto",
    as_of: str | None = None,
    progress: bool = True,
) -> PredictSummary:
    """Scores the rows of `data` with `model_path`'s `signature`; writes `output` and the rejected rows.

    Args:
        model_path: a run directory or a SavedModel export (version or model folder).
        data: CSV/parquet files, globs or folders (`tfrec.data.readers.expand_data_paths`).
        output: the parquet file of the predictions.
        signature: `serving_default`, `score`, `encode_query`, `encode_item`, `user_value` or `retrieve`.
        k: `retrieve`: items per row (an export caps it at its `max_k`).
        batch_size: rows per model call.
        chunk_rows: rows read, validated and written at a time (the memory bound).
        rejected: parquet file of the rejected rows (default `<output without .parquet>.rejected.parquet`).
        csv_encoding, csv_delimiter: how to read CSV files (default: the run's `data.csv_encoding` /
            `data.csv_delimiter`, else utf-8 and `,`).
        format: `auto` (by file ending), `csv` or `parquet`.
        as_of: transactions runs: the last day the features see (default: the run's `data.cutoff`).
        progress: print a progress line per chunk on stderr.

    Returns:
        A `PredictSummary` (`rows_read == rows_used + rows_rejected`).

    Raises:
        FileNotFoundError, PredictError: the model or a run file is missing, the signature does not exist.
        DataFileError: a data file is missing or unreadable.
        SchemaValidationError: a file lacks a column the signature reads (the message names file and column).
    """
    t0 = time.time()
    if batch_size < 1 or chunk_rows < 1:
        raise PredictError(f"batch_size and chunk_rows must be >= 1, got {batch_size} and {chunk_rows}")
    files = expand_data_paths(data)
    loaded = load_model(model_path)
    loaded.check_signature(signature)
    data_config = getattr(loaded.run_config, "data", None)
    encoding = csv_encoding or getattr(data_config, "csv_encoding", None) or "utf-8"
    delimiter = csv_delimiter or getattr(data_config, "csv_delimiter", None) or ","
    read = {"format": format, "csv_encoding": encoding, "csv_delimiter": delimiter}
    if rejected is None:
        rejected = (output[: -len(".parquet")] if output.endswith(".parquet") else output) + ".rejected.parquet"
    if os.path.abspath(rejected) == os.path.abspath(output):
        raise PredictError(f"the output and the rejected rows would both go to {output!r}")
    summary = PredictSummary(output, rejected, signature, loaded.path, files)
    scorer = loaded.scorer(signature, k=k)
    transactions = loaded.run_config is not None and (
        loaded.run_config.data.source == "files" and loaded.run_config.data.shape == "transactions"
    )
    if transactions:
        _predict_transactions(loaded, scorer, files, summary, read, chunk_rows, batch_size, as_of, progress)
    else:
        if as_of is not None:
            raise PredictError("as_of (--as-of) applies to transactions runs only")
        _predict_rows(loaded, scorer, files, summary, read, chunk_rows, batch_size, progress, t0)
    summary.seconds = time.time() - t0
    summary.check()
    return summary


def _predict_rows(loaded, scorer, files, summary, read, chunk_rows, batch_size, progress, t0) -> None:
    """Row by row: validate, score and write each chunk of each file."""
    schema = loaded.schema
    keys = [c for c in (schema.query_text, schema.user_id, schema.item_id) if c]
    headers = {path: file_columns(path, **read) for path in files}
    hint = ""
    if loaded.user_value_only:
        hint = (
            "a user-value model reads per-customer features: give its run directory to compute them from transactions"
        )
    for path, have in headers.items():
        missing = [c for c in scorer.inputs if c not in have]
        if missing:
            raise MissingColumnsError(path, missing, have, schema, hint)
    keys = [c for c in keys if any(c in have for have in headers.values())]
    raw_columns = list(dict.fromkeys(scorer.inputs + keys))
    blank = scorer.dry_run()
    clash = {ROW_COLUMN, FILE_COLUMN, REASON_OUTPUT} & set(raw_columns) | set(blank) & set(keys)
    if clash:
        raise PredictError(f"input columns {sorted(clash)} clash with the output's columns; rename them")
    out_schema = pa.schema(
        [pa.field(c, pa.string()) for c in keys]
        + [pa.field(ROW_COLUMN, pa.int64()), pa.field(FILE_COLUMN, pa.string())]
        + [pa.field(name, _output_array(v).type) for name, v in blank.items()]
    )
    sub = schema.restrict(scorer.inputs)
    validator = _ChunkValidator(sub, scorer.inputs)
    sink = _ParquetSink(summary.output, out_schema)
    rejected_sink = _ParquetSink(summary.rejected_path, _rejected_schema(raw_columns))
    from tfrec.data.pipeline import to_tensors

    try:
        chunks = _validated_chunks(files, raw_columns, chunk_rows, read, validator, summary, rejected_sink)
        for path, number, chunk, valid, bad in chunks:
            if len(valid):
                features, _ = to_tensors(valid, sub, labels=False)
                predictions = _score(scorer, features, batch_size)
                columns = {
                    c: _text_array(valid[c]) if c in valid.columns else pa.nulls(len(valid), pa.string()) for c in keys
                }
                columns[ROW_COLUMN] = pa.array(valid[_ROW].to_numpy(dtype=np.int64))
                columns[FILE_COLUMN] = pa.array([path] * len(valid), type=pa.string())
                columns.update({name: _output_array(v) for name, v in predictions.items()})
                sink.write(columns)
                summary.rows_used += len(valid)
            if progress:
                _progress(
                    f"{os.path.basename(path)} chunk {number + 1}: {len(chunk):,} rows ({len(valid):,} scored, "
                    f"{len(bad):,} rejected); total {summary.rows_read:,} rows, "
                    f"{summary.rows_read / max(time.time() - t0, 1e-9):,.0f} rows/s"
                )
    except BaseException:
        sink.abort()
        rejected_sink.abort()
        raise
    sink.commit()
    rejected_sink.commit()
    summary.rows_written = sink.rows


# ------------------------------------------------------------- transactions
class StreamingCustomerFeatures:
    """`tfrec.data.shapes.customer_features(lines, schema, amount, end, start)` over lines given in chunks.

    `start` is the first time of all lines (as `prepare_transactions` sets
    it), `end` the as-of boundary. It keeps only per-customer aggregates
    (net spend, first and last purchase, distinct purchase days, counts per
    categorical value, the last numeric values and each distinct item's
    latest purchase), compacted as they grow, never the lines.

    Example:

    ```python
    agg = StreamingCustomerFeatures(schema, "amount", pd.Timestamp("2023-10-01"))
    for chunk in chunks:              # validated lines, in file order
        agg.add(chunk)
    agg.result()                      # == customer_features(all_lines, schema, "amount", end, all_lines.when.min())
    ```
    """

    def __init__(self, schema: FeatureSchema, amount: str, end: pd.Timestamp, compact_every: int = 16):
        self.schema = schema
        self.amount = amount
        self.boundary = end
        self.end: pd.Timestamp | None = None
        self.start: pd.Timestamp | None = None
        self.compact_every = compact_every
        self.lines_before = 0
        self.lines_after = 0
        self._rows_seen = 0
        self._parts: dict[str, list] = collections.defaultdict(list)

    def add(self, lines: pd.DataFrame) -> None:
        """Adds validated lines (typed: ids as text, times, numeric amounts), in the order of the files."""
        user, t, amount = self.schema.user_id, self.schema.event_time, self.amount
        rows = np.arange(self._rows_seen, self._rows_seen + len(lines))
        self._rows_seen += len(lines)
        if not len(lines):
            return
        times = lines[t]
        first_time = times.min()
        self.start = first_time if self.start is None else min(self.start, first_time)
        end = _naive(times, self.boundary)
        if self.end is None:
            self.end = end
        before = (times < end).to_numpy()
        self.lines_before += int(before.sum())
        self.lines_after += int((~before).sum())
        window = lines.loc[before]
        if not len(window):
            return
        parts = self._parts
        parts["net"].append(window.groupby(user, sort=False)[amount].sum())
        buy = (window[amount] > 0).to_numpy()
        buys = window.loc[buy]
        if len(buys):
            g = buys.groupby(user, sort=False)
            parts["days"].append(pd.DataFrame({user: buys[user], "_day": buys[t].dt.floor("D")}).drop_duplicates())
            parts["first"].append(g[t].min())
            parts["last"].append(g[t].max())
            for col in self.schema.user_categorical:
                parts[f"cat:{col}"].append(buys.groupby([user, col], sort=False).size())
            for col in self.schema.user_numeric:
                parts[f"num:{col}"].append(g[col].last())
            if self.schema.item_id:
                item = self.schema.item_id
                latest = pd.DataFrame({user: buys[user], item: buys[item], "_t": buys[t], "_row": rows[before][buy]})
                parts["items"].append(self._latest(latest))
        if len(parts["net"]) >= self.compact_every:
            self._compact()

    def _latest(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Each (customer, item)'s latest purchase: the greatest (time, row)."""
        item = self.schema.item_id
        pairs = pairs.sort_values(["_t", "_row"], kind="stable")
        return pairs.drop_duplicates([self.schema.user_id, item], keep="last")

    def _compact(self) -> None:
        parts = self._parts
        for name, values in list(parts.items()):
            if len(values) < 2:
                continue
            joined = pd.concat(values)
            if name == "net":
                merged = joined.groupby(level=0).sum()
            elif name == "first":
                merged = joined.groupby(level=0).min()
            elif name == "last":
                merged = joined.groupby(level=0).max()
            elif name == "days":
                merged = joined.drop_duplicates()
            elif name == "items":
                merged = self._latest(joined)
            elif name.startswith("cat:"):
                merged = joined.groupby(level=[0, 1]).sum()
            else:  # num: the last non-null value in line order (later chunks come later)
                merged = joined.groupby(level=0).last()
            parts[name] = [merged]

    def result(self) -> pd.DataFrame:
        """The features of every customer with a purchase before the as-of boundary, sorted by id."""
        self._compact()
        schema, user = self.schema, self.schema.user_id
        parts = self._parts
        if not parts.get("first"):
            return pd.DataFrame()
        first = parts["first"][0].sort_index()
        index = first.index
        assert self.end is not None and self.start is not None
        end = self.end
        out = pd.DataFrame(index=index)
        days = parts["days"][0]
        out["frequency"] = days.groupby(user).size().reindex(index).astype(np.float64)
        end_day = end.floor("D") if end == end.normalize() else end
        net = parts["net"][0].reindex(index).fillna(0.0)
        out["monetary"] = net.clip(lower=0.0).to_numpy()
        out["recency_days"] = ((end_day - parts["last"][0].reindex(index)) / pd.Timedelta(days=1)).to_numpy()
        out["tenure_days"] = ((end_day - first) / pd.Timedelta(days=1)).to_numpy()
        out["mean_day_spend"] = out["monetary"] / out["frequency"]
        out["observed_days"] = (end - self.start) / pd.Timedelta(days=1)
        for col in schema.user_categorical:
            counts = parts[f"cat:{col}"][0].rename("n").reset_index()
            counts = counts.sort_values([user, "n", col], ascending=[True, False, True], kind="stable")
            out[col] = counts.drop_duplicates(user).set_index(user)[col].reindex(index).fillna("")
        for col in schema.user_numeric:
            out[col] = parts[f"num:{col}"][0].reindex(index)
        if schema.item_id:
            items = parts["items"][0].sort_values(["_t", "_row"], kind="stable")
            out["n_items"] = items.groupby(user).size().reindex(index).astype(np.float64)
            length = schema.history_length
            out[HISTORY_COLUMN] = items.groupby(user)[schema.item_id].agg(lambda s: list(s)[-length:]).reindex(index)
        out.index.name = user
        return out.reset_index()


def transaction_reading(schema: FeatureSchema, quantity_column: str | None) -> tuple[str, FeatureSchema]:
    """(amount column, schema the lines are validated with), as `tfrec.data.tables.load_data` reads transactions."""
    from tfrec.data.shapes import ShapeError

    if schema.value_label:  # a signed amount (returns negative): a plain number, not a non-negative label
        amount = schema.value_label
        return amount, dataclasses.replace(schema, value_label=None, user_numeric=list(schema.user_numeric) + [amount])
    if schema.item_price and quantity_column:
        return "_amount", schema
    raise ShapeError(
        "data.shape 'transactions' needs an amount: map value_label to the amount column, or map "
        "item_price and set data.quantity_column (amount = quantity x price)"
    )


def _predict_transactions(loaded, scorer, files, summary, read, chunk_rows, batch_size, as_of, progress) -> None:
    """Per customer: aggregate the lines of every file, compute the features at the as-of date, score them."""
    from tfrec.data.tables import resolve_schema

    data = loaded.run_config.data
    schema = resolve_schema(data.schema)
    qc = data.quantity_column
    amount, read_schema = transaction_reading(schema, qc)
    cutoff = as_of if as_of is not None else data.cutoff
    if cutoff is None:
        raise PredictError("the run's config has no data.cutoff; give the as-of date (--as-of)")
    try:
        valid_date = not pd.isna(pd.Timestamp(cutoff))
    except (TypeError, ValueError):
        valid_date = False
    if not valid_date:
        raise PredictError(f"as-of date {cutoff!r} is not a date or time (e.g. 2023-12-31)")
    boundary = _time_boundary(cutoff, "cutoff")
    summary.as_of = str(cutoff)
    required = list(dict.fromkeys(read_schema.column_names() + ([qc] if qc else [])))
    for path in files:
        have = file_columns(path, **read)
        missing = [c for c in required if c not in have]
        if missing:
            raise MissingColumnsError(path, missing, have, read_schema)
    validator = _ChunkValidator(read_schema, read_schema.column_names())
    agg = StreamingCustomerFeatures(schema, amount, boundary)
    rejected_sink = _ParquetSink(summary.rejected_path, _rejected_schema(required))

    def reject(frame: pd.DataFrame, mask: np.ndarray, reason: str, path: str) -> pd.DataFrame:
        if mask.any():
            moved = frame.loc[mask].assign(**{REASON_COLUMN: reason})
            summary.rejected[reason] += len(moved)
            rejected_sink.write(_rejected_columns(moved, required, path))
        return frame.loc[~mask]

    try:
        chunks = _validated_chunks(files, required, chunk_rows, read, validator, summary, rejected_sink)
        for path, number, chunk, valid, _ in chunks:
            if len(valid):
                if qc:
                    quantity = pd.to_numeric(valid[qc], errors="coerce").to_numpy(np.float64, na_value=np.nan)
                    valid = reject(valid, ~np.isfinite(quantity), f"{qc}: not a number", path)
                    valid = valid.assign(**{qc: pd.to_numeric(valid[qc]).astype(np.float64)})
                if amount == "_amount":
                    valid = valid.assign(_amount=valid[qc] * valid[schema.item_price])
                valid = reject(valid, valid[amount].isna().to_numpy(), f"{amount}: null in required field", path)
                agg.add(valid)
                summary.rows_used += len(valid)
            if progress:
                _progress(
                    f"{os.path.basename(path)} chunk {number + 1}: {len(chunk):,} lines; total "
                    f"{summary.rows_read:,} read, {summary.rows_rejected:,} rejected"
                )
        features = agg.result()
        sink = _customer_sink(summary.output, features, schema.user_id, loaded.schema, scorer, batch_size)
    except BaseException:
        rejected_sink.abort()
        raise
    rejected_sink.commit()
    summary.rows_written = sink.rows
    summary.customers = len(features)
    summary.lines_before_as_of = agg.lines_before


def _customer_sink(path, features, user, model_schema, scorer, batch_size) -> _ParquetSink:
    """Writes one row per customer: the id, the model's inputs (the history aside) and the predictions."""
    from tfrec.models.inference import features_of

    inputs = [c for c in scorer.inputs if c != model_schema.user_history]
    if len(features):
        predictions = _score(scorer, features_of(features, model_schema, scorer.inputs), batch_size)
    else:
        predictions = {name: v[:0] for name, v in scorer.dry_run().items()}
    n = len(features)
    columns: dict[str, pa.Array] = {user: _text_array(features[user]) if n else pa.array([], pa.string())}
    for c in inputs:
        kind = pa.string() if c in model_schema.user_categorical else pa.float64()
        columns[c] = pa.array(features[c].to_numpy(), type=kind) if n else pa.array([], kind)
    columns.update({name: _output_array(v) for name, v in predictions.items()})
    sink = _ParquetSink(path, pa.schema([pa.field(name, array.type) for name, array in columns.items()]))
    try:
        sink.write(columns)
    except BaseException:
        sink.abort()
        raise
    sink.commit()
    return sink
