"""A local, protocol-compatible stand-in for TensorFlow Serving.

For development, notebooks, tests and machines without the
`tensorflow_model_server` binary or Docker. It serves the same model base
paths over the same APIs: gRPC PredictionService (Predict, GetModelMetadata;
Classify and Regress answer that tfrec signatures are Predict signatures) and
ModelService (GetModelStatus) with TF Serving's status codes, and TF Serving's
REST API (`tfrec.serving.rest`). `tfrec serve` takes TF Serving's flags and
configuration files (`tfrec.serving.config`); production runs the
`tensorflow/serving` image with the same flags and the files in `serving/`.

* Several models (a `model_config_list`), each with its version policy
  (`latest`, `all`, `specific`) and `version_labels`. Base paths are polled
  for numeric version folders; a new version is loaded (and warmed up with its
  `assets.extra/tf_serving_warmup_requests` where asked), then served; versions
  the policy drops are unloaded, while requests in flight finish on the
  version they started on. The model config file can be re-read while serving.
* Each version loads on its own. One that fails (a truncated `saved_model.pb`,
  missing variables, a failing warm-up) blocks no other: it is logged once per
  attempt, shown by GetModelStatus (gRPC and REST) as state END with its
  error code and message, as TF Serving shows a failed load, and retried
  `max_num_load_retries` times (`--max_num_load_retries`, default 5), at the
  first poll `load_retry_interval_s` after each attempt
  (`--load_retry_interval_micros`, default 60 s), and at once, with a fresh
  count, when its files change. The version policy chooses among the versions
  that are loaded or may be tried, so a failed version gives its place to the
  next good one: with versions 1, 2, 3 (corrupt) and 4 under `latest` 2, 2
  and 4 are served and 1 is unloaded (TF Serving would count 3 and serve 4
  alone). Availability first: new versions load before old ones unload, and
  when nothing the policy wants can be loaded, loaded versions still on disk
  keep serving.
* Concurrent requests for the same version and signature are batched (as
  `--enable_batching`): up to `max_batch_size` rows, waiting at most
  `batch_timeout_ms` for more, and only while other requests are arriving: a
  lone request runs at once, on its own thread (no batching delay at 1 client).
* Bad requests (unknown model/version/label/signature, missing or extra input,
  wrong dtype or rank, too many rows or bytes, empty strings where text or ids
  are required, non-UTF-8 bytes, +-Infinity in a float input of a tfrec
  export) get INVALID_ARGUMENT (NOT_FOUND for unknown models and versions)
  naming the input; the server keeps serving. NaN is accepted: it marks a
  missing numeric value, which tfrec models impute (`NumericFeatures`).
  SavedModels without a tfrec manifest get non-finite values passed through,
  as TF Serving does.
* A tensor's claimed shape is checked before any array is built: at most
  `max_request_rows` rows (1024), `max_input_width` values along each later
  axis (4096: e.g. a user history), `max_request_bytes` of values in all
  (16 MiB), and exactly as many values as the shape holds (TensorFlow would
  repeat the last value to fill it). A 500-byte request cannot claim
  gigabytes.
* `/healthz`, `/readyz` and Prometheus metrics on the REST port; one JSON log
  line per request. Metric labels come from fixed sets (methods, status
  codes, the signatures of the versions served), so requests cannot add series.

Example:

```python
server = LocalModelServer("runs/quickstart/models", model_name="tfrec", port=8500, http_port=8501)
server.start()          # returns once the newest version is loaded
...
server.stop()
```
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
import threading
import time
from typing import Any

import grpc
import numpy as np
import tensorflow as tf

from tfrec.export.ops import read_saved_model, version_numbers
from tfrec.serving.client import from_tensor_proto, to_tensor_proto
from tfrec.serving.config import (
    PROMETHEUS_DEFAULT_PATH,
    ServedModelConfig,
    ServingConfigError,
    VersionPolicy,
    parse_model_config,
    read_model_config_file,
)

log = logging.getLogger("tfrec.serving")

_DTYPES = {tf.string: "string", tf.float32: "float", tf.int32: "int32", tf.int64: "int64"}
# The TensorProto field holding each dtype's values where they are not in tensor_content.
_VALUE_FIELDS = {
    tf.float16.as_datatype_enum: "half_val",
    tf.bfloat16.as_datatype_enum: "half_val",
    tf.float32.as_datatype_enum: "float_val",
    tf.float64.as_datatype_enum: "double_val",
    tf.int8.as_datatype_enum: "int_val",
    tf.int16.as_datatype_enum: "int_val",
    tf.int32.as_datatype_enum: "int_val",
    tf.uint8.as_datatype_enum: "int_val",
    tf.uint16.as_datatype_enum: "int_val",
    tf.int64.as_datatype_enum: "int64_val",
    tf.uint32.as_datatype_enum: "uint32_val",
    tf.uint64.as_datatype_enum: "uint64_val",
    tf.bool.as_datatype_enum: "bool_val",
    tf.string.as_datatype_enum: "string_val",
}


class RequestError(Exception):
    """A request the server refuses, with its gRPC status code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _invalid(message):
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


@dataclasses.dataclass
class Servable:
    """One loaded version: the SavedModel, its signature defs and input specs."""

    version: int
    path: str
    loaded: Any  # the loaded SavedModel
    signature_defs: dict
    input_specs: dict  # signature -> {input: TensorSpec}
    required_text: dict  # signature -> inputs whose strings must be non-empty
    finite_only: bool = False  # a tfrec export: +-Infinity in a float input is refused
    batchers: dict = dataclasses.field(default_factory=dict)


def _load_servable(path, version) -> Servable:
    import tensorflow_text  # noqa: F401  (registers the TF Text ops)

    loaded = tf.saved_model.load(path)
    sm = read_saved_model(path)
    signature_defs = {k: v for k, v in sm.meta_graphs[0].signature_def.items() if not k.startswith("__")}
    input_specs = {}
    for name in signature_defs:
        fn = loaded.signatures[name]
        input_specs[name] = dict(fn.structured_input_signature[1])
    required = set()
    manifest = os.path.join(path, "assets.extra", "tfrec_manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            schema = json.load(f).get("schema", {})
        roles = ["query_text", "item_id", "item_text"]
        if not schema.get("user_history"):  # with recent items, a user may come without an id (cold start)
            roles.append("user_id")
        required = {schema.get(r) for r in roles} - {None}
    required_text = {s: sorted(required & set(specs)) for s, specs in input_specs.items()}
    # tfrec's numeric features turn +Infinity into NaN scores; other SavedModels get values as TF Serving passes them.
    finite_only = os.path.exists(manifest)
    return Servable(version, path, loaded, signature_defs, input_specs, required_text, finite_only)


class _Metrics:
    """Request/error counters and a latency histogram, in Prometheus text format.

    Label values come from fixed sets, so clients cannot grow the number of
    series: `method` from `METHODS` (else "other"), `signature` from the
    signatures of the versions served so far (`allow_signatures`; else
    "unknown"), `code` from `grpc.StatusCode` names.
    """

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))
    METHODS = frozenset(
        {
            "Predict",
            "GetModelMetadata",
            "GetModelStatus",
            "Classify",
            "Regress",
            "HandleReloadConfigRequest",
            "REST",
            "REST:Predict",
            "REST:GetModelMetadata",
            "REST:GetModelStatus",
        }
    )

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple, int] = {}
        self.errors: dict[tuple, int] = {}
        self.latency = [0] * len(self.BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.signatures: set[str] = {""}  # "": calls without a signature (metadata, status)

    def allow_signatures(self, names) -> None:
        """Counts requests to these signatures under their own name (the server calls it at each load)."""
        with self.lock:
            self.signatures.update(names)

    def observe(self, method, signature, code, seconds):
        method = method if method in self.METHODS else "other"
        code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
        with self.lock:
            key = (method, signature if signature in self.signatures else "unknown")
            self.requests[key] = self.requests.get(key, 0) + 1
            if code != grpc.StatusCode.OK:
                ekey = (method, code.name)
                self.errors[ekey] = self.errors.get(ekey, 0) + 1
            for i, bound in enumerate(self.BUCKETS):
                if seconds <= bound:
                    self.latency[i] += 1
            self.latency_sum += seconds
            self.latency_count += 1

    def render(self) -> str:
        with self.lock:
            lines = ["# TYPE tfrec_requests_total counter"]
            lines += [
                f'tfrec_requests_total{{method="{m}",signature="{s}"}} {n}' for (m, s), n in self.requests.items()
            ]
            lines.append("# TYPE tfrec_errors_total counter")
            lines += [f'tfrec_errors_total{{method="{m}",code="{c}"}} {n}' for (m, c), n in self.errors.items()]
            lines.append("# TYPE tfrec_request_seconds histogram")
            for bound, n in zip(self.BUCKETS, self.latency):
                le = "+Inf" if bound == float("inf") else f"{bound}"
                lines.append(f'tfrec_request_seconds_bucket{{le="{le}"}} {n}')
            lines.append(f"tfrec_request_seconds_sum {self.latency_sum}")
            lines.append(f"tfrec_request_seconds_count {self.latency_count}")
            return "\n".join(lines) + "\n"


class _Arrivals:
    """How many requests are being parsed (not yet handed to a batcher)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0

    def enter(self):
        with self.lock:
            self.count += 1

    def leave(self):
        with self.lock:
            self.count -= 1


class _Batcher:
    """Merges concurrent requests of one signature into batches.

    A request that finds the batcher idle (nothing queued or running) and no
    other request arriving runs at once on its caller's thread; otherwise it
    is queued and the batching thread waits up to `timeout_s` for more rows,
    but only while other requests are still arriving.
    """

    def __init__(self, fn, max_batch_size, timeout_s, arrivals=None):
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.arrivals = arrivals or _Arrivals()
        self.lock = threading.Lock()
        self.pending: list[tuple[dict, int, concurrent.futures.Future]] = []
        self.cond = threading.Condition(self.lock)
        self.closed = False
        self.busy = 0  # batches running (queued batches and inline requests)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def submit(self, inputs: dict, rows: int) -> dict:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.cond:
            inline = self.closed or (not self.pending and not self.busy and self.arrivals.count == 0)
            if inline:
                self.busy += 1
            else:
                self.pending.append((inputs, rows, future))
                self.cond.notify()
        if inline:
            # Alone (or the version was unloaded after this request picked it):
            # run here, unbatched, without a thread hand-off or a wait.
            try:
                self._run([(inputs, rows, future)])
            finally:
                with self.cond:
                    self.busy -= 1
                    self.cond.notify()
        return future.result()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify()

    def _take(self):
        with self.cond:
            while not self.pending and not self.closed:
                self.cond.wait()
            if self.closed and not self.pending:
                return None
            deadline = time.monotonic() + self.timeout_s
            while (
                sum(r for _, r, _ in self.pending) < self.max_batch_size and not self.closed and self.arrivals.count > 0
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            batch, rows = [], 0
            while self.pending and (not batch or rows + self.pending[0][1] <= self.max_batch_size):
                item = self.pending.pop(0)
                batch.append(item)
                rows += item[1]
            self.busy += 1
            return batch

    def _loop(self):
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._run(batch)
            finally:
                with self.cond:
                    self.busy -= 1

    def _run(self, batch):
        try:
            merged = _merge([b[0] for b in batch])
            outputs = {k: v.numpy() for k, v in self.fn(**{k: tf.constant(v) for k, v in merged.items()}).items()}
            start = 0
            for inputs, rows, future in batch:
                part = {k: v[start : start + rows] for k, v in outputs.items()}
                if "k" in inputs:  # retrieve: as wide as this request alone would get
                    width = int(max(inputs["k"].max(), 1)) if len(inputs["k"]) else 1
                    part = {k: (v[:, :width] if v.ndim == 2 else v) for k, v in part.items()}
                future.set_result(part)
                start += rows
        except Exception as e:  # noqa: BLE001  (the error goes back to every caller)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(e)


def _merge(requests: list[dict]) -> dict:
    """Concatenates inputs along the batch axis, padding a varying 2nd axis."""
    if len(requests) == 1:
        return requests[0]
    out = {}
    for key in requests[0]:
        parts = [r[key] for r in requests]
        if parts[0].ndim == 2:
            width = max(p.shape[1] for p in parts)
            fill = b"" if parts[0].dtype == object else 0
            parts = [
                np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=fill) if p.shape[1] < width else p
                for p in parts
            ]
        out[key] = np.concatenate(parts, axis=0)
    return out


@dataclasses.dataclass
class LoadFailure:
    """A version that failed to load: why, when, how often, and when it is tried again.

    `code` is TF Serving's error code of the failure (`tensorflow.error.Code`,
    the gRPC numbers: DATA_LOSS for an unreadable `saved_model.pb`, else the
    TensorFlow error's code, else UNKNOWN). `next_retry` is a
    `time.monotonic()` time, None once `max_num_load_retries` are spent;
    `files` fingerprints the version folder at the last attempt (a change
    retries at once, with a fresh count).
    """

    version: int
    error: str
    code: int
    attempts: int
    failed_at: float  # time.time() of the last attempt
    next_retry: float | None
    files: tuple


def _files_fingerprint(path: str) -> tuple:
    """What changes when a version folder's files are replaced or rewritten (stat of its key files)."""
    out: list[tuple[int, int, int, int] | None] = []
    for name in ("", "saved_model.pb", os.path.join("variables", "variables.index")):
        try:
            st = os.stat(os.path.join(path, name))
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def _load_error_code(error: Exception) -> int:
    """The `tensorflow.error.Code` TF Serving reports for a failed load."""
    from google.protobuf.message import DecodeError

    if isinstance(error, tf.errors.OpError):
        return int(error.error_code)
    if isinstance(error, FileNotFoundError):
        return grpc.StatusCode.NOT_FOUND.value[0]
    if isinstance(error, DecodeError) or (isinstance(error, OSError) and "parse" in str(error).lower()):
        return grpc.StatusCode.DATA_LOSS.value[0]  # TF's ReadBinaryProto: "Can't parse ... as binary proto"
    return grpc.StatusCode.UNKNOWN.value[0]


class _ServedModel:
    """One served model: its configuration, loaded versions and versions that failed to load."""

    def __init__(self, config: ServedModelConfig):
        self.config = config
        self.servables: dict[int, Servable] = {}
        self.failures: dict[int, LoadFailure] = {}
        self.base_path_missing = False  # logged once per change
        self.unavailable_labels: dict[str, int] = {}  # labels whose version is not loaded (logged once per change)

    @property
    def name(self) -> str:
        return self.config.name


class LocalModelServer:
    """Serves TF Serving model base paths over TF Serving's gRPC and REST APIs.

    Args:
        base_dir: model base directory (the parent of `model_name/`), for one
            model; or give `models` (e.g. from `tfrec.serving.config`).
        model_name: the served model's name (with `base_dir`).
        port: gRPC port (0 picks a free one; see `.port`).
        http_port: REST API port, also `/healthz`, `/readyz` and the
            Prometheus path (0 = a free one; None = no HTTP server). TF
            Serving's `--rest_api_port`.
        poll_seconds: how often base paths are scanned for versions (0: once,
            at start, as TF Serving's `--file_system_poll_wait_seconds=0`).
        keep_versions: with `base_dir`: the newest versions kept loaded.
        version_labels: with `base_dir`: e.g. `{"stable": 1, "canary": 2}`.
        models: `ServedModelConfig`s (name, absolute base path, version policy, labels).
        model_config_file: a TF Serving `--model_config_file` (read here
            unless `models` is given), re-read every `config_poll_seconds`
            (0: never) while serving, through `config_transform` (a function
            of the list of `ServedModelConfig`) where given.
        enable_batching: merge concurrent requests (`--enable_batching`).
        max_batch_size, batch_timeout_ms: server-side batching.
        monitoring_path: HTTP path of Prometheus metrics (None: off).
        enable_model_warmup: replay each version's warm-up records at load.
        max_request_rows: refuse requests with more rows (INVALID_ARGUMENT).
        max_request_bytes: refuse larger requests, and requests whose
            tensors claim (`tensor_shape`) more bytes of values.
        max_input_width: refuse inputs with a longer second (or later) axis,
            e.g. a `user_history` wider than this (default 4096).
        max_num_load_retries: retries of a version that failed to load (TF
            Serving's `--max_num_load_retries`, default 5), each
            `load_retry_interval_s` after the last (`--load_retry_interval_micros`,
            default 60 s), at the next poll; a change of the version's files
            retries at once with a fresh count.
        workers: gRPC worker threads.
        ssl_config: a `tfrec.serving.security.SSLConfig` (TF Serving's
            `--ssl_config_file`): TLS on the gRPC and REST ports, mutual TLS
            with `client_verify`. None: plaintext.
        auth_token: a bearer token (str or `security.BearerToken`) every gRPC
            call and REST request must carry (`/healthz`, `/readyz` excepted);
            None: no token.
    """

    def __init__(
        self,
        base_dir=None,
        model_name="tfrec",
        port=8500,
        http_port=None,
        poll_seconds=1.0,
        keep_versions=2,
        version_labels=None,
        max_batch_size=64,
        batch_timeout_ms=2.0,
        max_request_rows=1024,
        max_request_bytes=16 << 20,
        workers=16,
        host="127.0.0.1",
        *,
        models: list[ServedModelConfig] | None = None,
        model_config_file: str | None = None,
        config_poll_seconds: float = 0.0,
        enable_batching: bool = True,
        monitoring_path: str | None = PROMETHEUS_DEFAULT_PATH,
        enable_model_warmup: bool = False,
        config_transform=None,
        ssl_config=None,
        auth_token=None,
        max_input_width: int = 4096,
        max_num_load_retries: int = 5,
        load_retry_interval_s: float = 60.0,
    ):
        for field, value, low in (
            ("max_request_rows", max_request_rows, 1),
            ("max_request_bytes", max_request_bytes, 1),
            ("max_input_width", max_input_width, 1),
            ("max_num_load_retries", max_num_load_retries, 0),
            ("load_retry_interval_s", load_retry_interval_s, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise ServingConfigError(f"LocalModelServer: {field} must be a number >= {low}, got {value!r}")
        if models is None and model_config_file:
            models = read_model_config_file(model_config_file)
        elif models is None:
            if base_dir is None:
                raise ServingConfigError("LocalModelServer: give base_dir, models or model_config_file")
            models = [
                ServedModelConfig(
                    model_name,
                    os.path.abspath(os.path.join(str(base_dir), model_name)),
                    VersionPolicy("latest", max(1, int(keep_versions))),
                    {k: int(v) for k, v in (version_labels or {}).items()},
                )
            ]
        if not models:
            raise ServingConfigError("LocalModelServer: no model to serve")
        self.models = {m.name: _ServedModel(m) for m in models}
        self.model_config_file = model_config_file
        self.config_poll_seconds = config_poll_seconds
        self.config_transform = config_transform
        self.host = host
        self.port = port
        self.http_port = http_port
        self.poll_seconds = poll_seconds
        self.enable_batching = enable_batching
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_ms / 1000.0
        self.max_request_rows = max_request_rows
        self.max_request_bytes = max_request_bytes
        self.max_input_width = int(max_input_width)
        self.max_num_load_retries = int(max_num_load_retries)
        self.load_retry_interval_s = float(load_retry_interval_s)
        self.monitoring_path = monitoring_path
        self.enable_model_warmup = enable_model_warmup
        self.workers = workers
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()  # one scan of the base paths at a time (poller, config reload)
        self._stop = threading.Event()
        self._grpc = None
        self._http = None
        self._threads: list[threading.Thread] = []
        self.metrics = _Metrics()
        self._arrivals = _Arrivals()
        from tfrec.serving.security import BearerToken

        self.ssl_config = ssl_config
        self.auth_token = BearerToken(auth_token) if isinstance(auth_token, str) else auth_token
        # A call refused for its token is counted as an UNAUTHENTICATED error of its method ("REST" for HTTP).
        self._refused = lambda method: self.metrics.observe(method, "", grpc.StatusCode.UNAUTHENTICATED, 0.0)

    @property
    def model_name(self) -> str:
        """The served model's name (the first, where several are served)."""
        return next(iter(self.models))

    @property
    def servables(self) -> dict[int, Servable]:
        """The loaded versions of `model_name`."""
        return self.models[self.model_name].servables

    # ------------------------------------------------------------ versions
    def refresh(self):
        """Loads the versions each model's policy wants and unloads the rest (the poller calls this).

        Each version loads on its own: one that fails is recorded (`load_failures`),
        shown in GetModelStatus, left out of the policy's choice (so the next
        good versions are served) and retried as `max_num_load_retries` says.
        """
        with self._refresh_lock:
            for model in list(self.models.values()):
                try:
                    self._refresh_model(model)
                except Exception as e:  # noqa: BLE001  (one bad model must not stop the others)
                    log.error(json.dumps({"event": "refresh_failed", "model": model.name, "error": str(e)}))

    def _refresh_model(self, model: _ServedModel):
        base = model.config.base_path
        available = version_numbers(base, complete=True)
        missing = not available and not os.path.isdir(base)
        if missing and not model.base_path_missing:
            log.warning(json.dumps({"event": "base_path_missing", "model": model.name, "base_path": base}))
        model.base_path_missing = missing
        on_disk = set(available)
        for version in [v for v in model.failures if v not in on_disk]:
            del model.failures[version]  # gone from disk: forgotten (a new folder of that number starts afresh)
        attempted: set[int] = set()
        wanted: list[int] = []
        while True:
            # The policy chooses among versions that are loaded or may be tried now (not failed, or due
            # for a retry): a failed version leaves the choice, so the next good one is chosen instead.
            candidates = [
                v for v in available if v in model.servables or (v not in attempted and self._may_load(model, v))
            ]
            wanted = model.config.version_policy.select(candidates)
            pending = [v for v in reversed(wanted) if v not in model.servables]  # newest first
            if not pending:
                break
            for version in pending:
                attempted.add(version)
                self._load_version(model, version)
        with self._lock:
            dropped = [v for v in model.servables if v not in wanted]
            if not wanted:
                # Availability first: with nothing the policy wants loadable, versions still on disk keep serving.
                dropped = [v for v in dropped if v not in on_disk]
            for version in dropped:
                self._release_locked(model.servables.pop(version))
                log.info(json.dumps({"event": "version_unloaded", "model": model.name, "version": version}))
        unavailable = {
            label: version for label, version in model.config.version_labels.items() if version not in model.servables
        }
        for label, version in unavailable.items():
            if model.unavailable_labels.get(label) != version:  # logged once per change, not at every poll
                log.warning(
                    json.dumps({"event": "label_unavailable", "model": model.name, "label": label, "version": version})
                )
        model.unavailable_labels = unavailable

    def _may_load(self, model: _ServedModel, version: int) -> bool:
        """Whether `version` may be tried now: never failed, its files changed since, or its retry is due."""
        failure = model.failures.get(version)
        if failure is None:
            return True
        if _files_fingerprint(os.path.join(model.config.base_path, str(version))) != failure.files:
            return True
        return failure.next_retry is not None and time.monotonic() >= failure.next_retry

    def _load_version(self, model: _ServedModel, version: int) -> None:
        """Loads (and warms up) one version; a failure is recorded, logged once, and scheduled for a retry."""
        t = time.time()
        path = os.path.join(model.config.base_path, str(version))
        files = _files_fingerprint(path)
        try:
            servable = self._loaded(path)  # another model serving the same folder shares it
            warmed = 0
            if servable is None:
                servable = _load_servable(path, version)
                warmed = self._warm_up(servable) if self.enable_model_warmup else 0
        except Exception as e:  # noqa: BLE001  (a bad version must not stop the others)
            previous = model.failures.get(version)
            attempts = previous.attempts + 1 if previous is not None and previous.files == files else 1
            retry = attempts <= self.max_num_load_retries
            failure = LoadFailure(
                version=version,
                error=f"{type(e).__name__}: {e}",
                code=_load_error_code(e),
                attempts=attempts,
                failed_at=time.time(),
                next_retry=time.monotonic() + self.load_retry_interval_s if retry else None,
                files=files,
            )
            with self._lock:
                model.failures[version] = failure
            log.error(
                json.dumps(
                    {
                        "event": "version_load_failed",
                        "model": model.name,
                        "version": version,
                        "attempt": attempts,
                        "error": failure.error,
                        "retry_in_s": self.load_retry_interval_s if retry else None,
                        **({} if retry else {"note": "retries spent; retried when the version's files change"}),
                    }
                )
            )
            return
        self.metrics.allow_signatures(servable.input_specs)
        with self._lock:
            model.servables[version] = servable
            model.failures.pop(version, None)
        log.info(
            json.dumps(
                {
                    "event": "version_loaded",
                    "model": model.name,
                    "version": version,
                    "seconds": round(time.time() - t, 3),
                    "warmup_records": warmed,
                }
            )
        )

    def load_failures(self, model_name: str | None = None) -> dict[int, LoadFailure]:
        """The versions of `model_name` (default: the first model) that failed to load, by version."""
        with self._lock:
            return dict(self.models[model_name or self.model_name].failures)

    def _release_locked(self, servable: Servable):
        """Closes the batchers of an unloaded version no model serves any more (hold `_lock`)."""
        if any(servable is other for m in self.models.values() for other in m.servables.values()):
            return
        for batcher in servable.batchers.values():
            batcher.close()  # requests already running keep their reference

    def _loaded(self, path: str) -> Servable | None:
        with self._lock:
            for model in self.models.values():
                for servable in model.servables.values():
                    if servable.path == path:
                        return servable
        return None

    def _warm_up(self, servable: Servable) -> int:
        """Runs the version's `assets.extra/tf_serving_warmup_requests` (as `--enable_model_warmup`)."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = os.path.join(servable.path, "assets.extra", "tf_serving_warmup_requests")
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(path):
            entry = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            request = entry.predict_log.request
            signature = request.model_spec.signature_name or "serving_default"
            if signature in servable.input_specs:
                inputs = {k: tf.constant(from_tensor_proto(v)) for k, v in request.inputs.items()}
                servable.loaded.signatures[signature](**inputs)
                count += 1
        return count

    def reload_config(self, models: list[ServedModelConfig]):
        """Serves `models` from now on: new ones load, removed ones unload, kept ones keep their versions."""
        with self._lock:
            old = self.models
            fresh = {}
            for config in models:
                kept = old.get(config.name)
                served = _ServedModel(config)
                if kept is not None and kept.config.base_path == config.base_path:
                    served.servables = kept.servables
                    served.failures = kept.failures
                fresh[config.name] = served
            dropped = [
                m for name, m in old.items() if fresh.get(name) is None or fresh[name].servables is not m.servables
            ]
            self.models = fresh
            for model in dropped:
                for servable in model.servables.values():
                    self._release_locked(servable)
        log.info(json.dumps({"event": "config_reloaded", "models": sorted(fresh)}))
        self.refresh()

    def _poll_versions(self):
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def _poll_config(self):
        assert self.model_config_file is not None
        failed = None  # the text of the last edit that failed (logged once)
        while not self._stop.wait(self.config_poll_seconds):
            text = None
            try:
                with open(self.model_config_file, encoding="utf-8") as f:
                    text = f.read()
                models = parse_model_config(text, self.model_config_file)
                models = self.config_transform(models) if self.config_transform else models
                if models != [m.config for m in self.models.values()]:
                    self.reload_config(models)
                failed = None
            except Exception as e:  # noqa: BLE001  (a bad edit keeps the running config, as TF Serving does)
                if text is None or text != failed:
                    log.error(json.dumps({"event": "config_reload_failed", "error": str(e)}))
                failed = text

    def ready(self) -> bool:
        """Whether every served model has a version loaded."""
        return all(m.servables for m in self.models.values())

    def _model(self, name: str) -> _ServedModel:
        model = self.models.get(name)
        if model is None:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Latest({name}) (serving {sorted(self.models)})",
            )
        return model

    def resolve(self, model_spec) -> Servable:
        """The loaded version a request's `ModelSpec` names (its version, its label, or the newest)."""
        with self._lock:
            model = self._model(model_spec.name)
            if not model.servables:
                raise RequestError(grpc.StatusCode.UNAVAILABLE, f"model '{model.name}' has no version loaded")
            if model_spec.HasField("version"):
                version = model_spec.version.value
            elif model_spec.version_label:
                labels = model.config.version_labels
                if model_spec.version_label not in labels:
                    raise RequestError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"Unrecognized servable version label: {model_spec.version_label} "
                        f"(labels of '{model.name}': {sorted(labels)})",
                    )
                version = labels[model_spec.version_label]
            else:
                version = max(model.servables)
            if version not in model.servables:
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({model.name}, {version}) "
                    f"(loaded: {sorted(model.servables)})",
                )
            return model.servables[version]

    # -------------------------------------------------------------- predict
    def _parse_inputs(self, servable, signature, request) -> tuple[dict, int]:
        if signature not in servable.input_specs:
            raise _invalid(
                f"Serving signature name: '{signature}' not found in signature def; "
                f"signatures are {sorted(servable.input_specs)}"
            )
        specs = servable.input_specs[signature]
        missing = sorted(set(specs) - set(request.inputs))
        extra = sorted(set(request.inputs) - set(specs))
        if missing:
            raise _invalid(f"input '{missing[0]}' is missing (signature '{signature}' needs {sorted(specs)})")
        if extra:
            raise _invalid(f"input '{extra[0]}' is not an input of signature '{signature}' (it takes {sorted(specs)})")
        if request.ByteSize() > self.max_request_bytes:
            raise _invalid(f"request of {request.ByteSize()} bytes exceeds the limit of {self.max_request_bytes}")
        inputs = {}
        claimed = 0  # bytes of values the inputs' shapes claim, all inputs together
        for name, spec in specs.items():
            proto = request.inputs[name]
            if proto.dtype != spec.dtype.as_datatype_enum:
                raise _invalid(
                    f"input '{name}': expects dtype {_DTYPES.get(spec.dtype, spec.dtype.name)}, "
                    f"got {tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else 'none'}"
                )
            claimed += self._check_claimed_shape(name, proto, spec)  # before any array is built
            if claimed > self.max_request_bytes:
                raise _invalid(
                    f"input '{name}': the tensors' shapes claim {claimed} bytes of values, over the limit of "
                    f"{self.max_request_bytes} (max_request_bytes)"
                )
            try:
                value = from_tensor_proto(proto)
            except Exception as e:
                raise _invalid(f"input '{name}': malformed tensor ({e})") from e
            if value.ndim != len(spec.shape):
                raise _invalid(
                    f"input '{name}': expects rank {len(spec.shape)} (shape {spec.shape}), "
                    f"got shape {list(value.shape)}"
                )
            for axis, dim in enumerate(spec.shape):
                if dim is not None and value.shape[axis] != dim:
                    raise _invalid(f"input '{name}': axis {axis} must be {dim}, got {value.shape[axis]}")
            if spec.dtype == tf.string:
                flat = value.reshape(-1)
                for item in flat:
                    try:
                        item.decode("utf-8")
                    except UnicodeDecodeError:
                        raise _invalid(f"input '{name}': value {item[:20]!r} is not valid UTF-8") from None
                if name in servable.required_text[signature] and any(not v.strip() for v in flat):
                    raise _invalid(f"input '{name}': empty string; text and ids must be non-empty")
            elif servable.finite_only and spec.dtype.is_floating and np.isinf(value).any():
                index = tuple(int(i) for i in np.argwhere(np.isinf(value))[0])
                raise _invalid(
                    f"input '{name}': {value[index]} at index {list(index)} is not a finite number "
                    "(Infinity is refused; NaN marks a missing value)"
                )
            inputs[name] = value
        sizes = [v.shape[0] for v in inputs.values()]
        rows = max(set(sizes), key=sizes.count)  # the batch size most inputs agree on
        for name, value in inputs.items():
            if value.shape[0] != rows:
                raise _invalid(f"input '{name}': batch size {value.shape[0]} differs from {rows} of the other inputs")
        if not rows:
            raise _invalid("the request has no rows")
        if rows > self.max_request_rows:
            raise _invalid(f"request of {rows} rows exceeds the limit of {self.max_request_rows}")
        return inputs, rows

    def _check_claimed_shape(self, name, proto, spec) -> int:
        """Checks a TensorProto's claimed shape against the limits and its values; returns the values' bytes.

        Runs before the array is built, so a small request that claims a huge
        shape costs nothing: the rank must be the signature's, the first axis
        at most `max_request_rows`, later axes at most `max_input_width`, and
        the number of values given must be the shape's (TensorFlow would
        repeat the last value to fill a larger shape; refused here).
        """
        if proto.tensor_shape.unknown_rank:
            raise _invalid(f"input '{name}': tensor_shape has unknown rank (shape {spec.shape} expected)")
        shape = [d.size for d in proto.tensor_shape.dim]
        if len(shape) != len(spec.shape):
            raise _invalid(f"input '{name}': expects rank {len(spec.shape)} (shape {spec.shape}), got shape {shape}")
        if any(n < 0 for n in shape):
            raise _invalid(f"input '{name}': tensor_shape {shape} has a negative dimension")
        if shape and shape[0] > self.max_request_rows:
            raise _invalid(
                f"input '{name}': request of {shape[0]} rows exceeds the limit of {self.max_request_rows} "
                "(max_request_rows)"
            )
        for axis, n in enumerate(shape[1:], start=1):
            if n > self.max_input_width:
                raise _invalid(
                    f"input '{name}': axis {axis} of {n} exceeds the limit of {self.max_input_width} (max_input_width)"
                )
        count = int(np.prod(shape, dtype=object)) if shape else 1
        dtype = tf.dtypes.as_dtype(proto.dtype)
        itemsize = 1 if dtype == tf.string else dtype.size
        if count * itemsize > self.max_request_bytes:
            raise _invalid(
                f"input '{name}': tensor_shape {shape} claims {count} values, over the limit of "
                f"{self.max_request_bytes} bytes (max_request_bytes)"
            )
        if proto.tensor_content:
            given, rest = divmod(len(proto.tensor_content), itemsize)
            if rest:
                raise _invalid(
                    f"input '{name}': tensor_content of {len(proto.tensor_content)} bytes is no whole number of "
                    f"{dtype.name} values"
                )
        elif proto.dtype in _VALUE_FIELDS:
            given = len(getattr(proto, _VALUE_FIELDS[proto.dtype]))
        else:
            return count * itemsize  # another encoding: from_tensor_proto checks it
        if given != count:
            raise _invalid(f"input '{name}': tensor_shape {shape} holds {count} values, but the tensor has {given}")
        return count * itemsize

    def predict(self, request):
        from tensorflow_serving.apis import predict_pb2

        self._arrivals.enter()  # batchers wait for more rows only while requests are arriving
        try:
            servable = self.resolve(request.model_spec)
            signature = request.model_spec.signature_name or "serving_default"
            inputs, rows = self._parse_inputs(servable, signature, request)
            batcher = servable.batchers.get(signature)
            if batcher is None and not self.enable_batching:
                batcher = _Unbatched(servable.loaded.signatures[signature])
            elif batcher is None:
                with self._lock:
                    batcher = servable.batchers.get(signature)
                    if batcher is None:
                        batcher = servable.batchers[signature] = _Batcher(
                            servable.loaded.signatures[signature],
                            self.max_batch_size,
                            self.batch_timeout_s,
                            self._arrivals,
                        )
        finally:
            self._arrivals.leave()
        outputs = batcher.submit(inputs, rows)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(to_tensor_proto(value))
        return response

    def metadata(self, request):
        from tensorflow_serving.apis import get_model_metadata_pb2

        servable = self.resolve(request.model_spec)
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise _invalid(f"metadata_field must be ['signature_def'], got {fields}")
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        for name, sig in servable.signature_defs.items():
            sig_map.signature_def[name].CopyFrom(sig)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(sig_map)
        return response

    def status(self, request):
        """GetModelStatus: loaded versions AVAILABLE, versions that failed to load END with their error."""
        from tensorflow_serving.apis import get_model_status_pb2

        response = get_model_status_pb2.GetModelStatusResponse()
        with self._lock:
            model = self._model(request.model_spec.name)
            failed = {v: f for v, f in model.failures.items() if v not in model.servables}
            known = {v: None for v in model.servables} | failed
            labels = dict(model.config.version_labels)
        versions = sorted(known)
        if request.model_spec.version_label:
            label = request.model_spec.version_label
            if label not in labels:
                raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"Unrecognized servable version label: {label}")
            if labels[label] not in known:
                raise RequestError(grpc.StatusCode.NOT_FOUND, f"version {labels[label]} (label {label}) is not loaded")
            versions = [labels[label]]
        elif request.model_spec.HasField("version"):
            if request.model_spec.version.value not in known:
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND, f"version {request.model_spec.version.value} is not loaded"
                )
            versions = [request.model_spec.version.value]
        for version in versions:
            status = response.model_version_status.add()
            status.version = version
            failure = failed.get(version)
            if failure is None:
                status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
                status.status.error_code = 0  # OK, as TF Serving fills it in
                status.status.error_message = ""
            else:  # as TF Serving reports a version whose load failed: END, with the load's error
                status.state = get_model_status_pb2.ModelVersionStatus.END
                status.status.error_code = failure.code
                status.status.error_message = failure.error
        return response

    # ------------------------------------------------------------------ gRPC
    def _handler(self, method, fn, signature_of=lambda r: ""):
        def handle(request, context):
            t = time.time()
            code, message = grpc.StatusCode.OK, ""
            try:
                return fn(request)
            except RequestError as e:
                code, message = e.code, str(e)
            except Exception as e:  # noqa: BLE001  (answer with INTERNAL, keep serving)
                code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
            finally:
                seconds = time.time() - t
                signature = signature_of(request)
                self.metrics.observe(method, signature, code, seconds)
                if log.isEnabledFor(logging.INFO):
                    log.info(
                        json.dumps(
                            {
                                "method": method,
                                "model": request.model_spec.name,
                                "signature": signature,
                                "code": code.name,
                                "ms": round(seconds * 1000, 3),
                                **({"error": message} if message else {}),
                            }
                        )
                    )
            context.abort(code, message)

        return handle

    def start(self, wait_for_model_seconds=60.0):
        """Loads the models, starts the gRPC server, the REST server and the pollers."""
        from tensorflow_serving.apis import (
            model_service_pb2_grpc,
            prediction_service_pb2_grpc,
        )

        from tfrec.serving.security import TokenAuthInterceptor

        self.refresh()
        interceptors = [] if self.auth_token is None else [TokenAuthInterceptor(self.auth_token, self._refused)]
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=self.workers),
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes * 2),
                ("grpc.max_send_message_length", 64 << 20),
            ],
            interceptors=interceptors,
        )
        outer = self

        class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
            Predict = staticmethod(
                outer._handler("Predict", outer.predict, lambda r: r.model_spec.signature_name or "serving_default")
            )
            GetModelMetadata = staticmethod(outer._handler("GetModelMetadata", outer.metadata))

            def Classify(self, request, context):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "tfrec signatures are not classification signatures; use Predict"
                )

            def Regress(self, request, context):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "tfrec signatures are not regression signatures; use Predict"
                )

        class Models(model_service_pb2_grpc.ModelServiceServicer):
            GetModelStatus = staticmethod(outer._handler("GetModelStatus", outer.status))

        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(Models(), server)
        address = f"{self.host}:{self.port}"
        if self.ssl_config is not None:
            self.port = server.add_secure_port(address, self.ssl_config.server_credentials())
        else:
            self.port = server.add_insecure_port(address)
        server.start()
        self._grpc = server
        if self.poll_seconds > 0:
            self._threads.append(threading.Thread(target=self._poll_versions, daemon=True))
        if self.model_config_file and self.config_poll_seconds > 0:
            self._threads.append(threading.Thread(target=self._poll_config, daemon=True))
        for thread in self._threads:
            thread.start()
        if self.http_port is not None:
            self._start_http()
        deadline = time.time() + wait_for_model_seconds
        while not self.ready() and time.time() < deadline:
            time.sleep(0.1)
        log.info(
            json.dumps(
                {
                    "event": "serving",
                    "grpc_port": self.port,
                    "rest_api_port": self.http_port,
                    "tls": self.ssl_config is not None,
                    "mutual_tls": bool(self.ssl_config is not None and self.ssl_config.client_verify),
                    "auth_token": self.auth_token is not None,
                    "models": {name: sorted(m.servables) for name, m in self.models.items()},
                }
            )
        )
        return self

    def _start_http(self):
        """TF Serving's REST API on `http_port`, plus `/healthz`, `/readyz` and the Prometheus path."""
        from tfrec.serving.rest import RestApi, serve_rest
        from tfrec.serving.security import RestTokenCheck

        text = "text/plain; version=0.0.4"
        routes = {
            "/healthz": lambda: (200, b"ok\n", text),
            "/readyz": lambda: (200, b"ready\n", text) if self.ready() else (503, b"no model version loaded\n", text),
        }
        if self.monitoring_path:
            routes[self.monitoring_path] = lambda: (200, self.metrics.render().encode(), text)
        check = RestTokenCheck(self.auth_token, on_refused=self._refused) if self.auth_token is not None else None
        self._http = serve_rest(
            RestApi(_ObservedBackend(self)),
            self.host,
            self.http_port or 0,
            extra_routes=routes,
            ssl_context=self.ssl_config.ssl_context() if self.ssl_config is not None else None,
            authorize=check,
        )
        self.http_port = self._http.server_address[1]

    def stop(self, grace=1.0):
        """Stops both servers and the pollers; requests in flight get `grace` seconds."""
        self._stop.set()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for model in list(self.models.values()):
            for servable in list(model.servables.values()):
                for batcher in servable.batchers.values():
                    batcher.close()

    def wait(self):
        """Blocks until the process is interrupted."""
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            self.stop()


class _Unbatched:
    """Runs each request on its own (TF Serving without `--enable_batching`)."""

    def __init__(self, fn):
        self.fn = fn

    def submit(self, inputs: dict, rows: int) -> dict:
        return {k: v.numpy() for k, v in self.fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


class _ObservedBackend:
    """The server's Predict, GetModelMetadata and GetModelStatus, counted in its metrics (for REST)."""

    def __init__(self, server: LocalModelServer):
        self.server = server

    @property
    def max_request_rows(self) -> int:
        """The server's limits, which the REST API applies to JSON before building tensors."""
        return self.server.max_request_rows

    @property
    def max_input_width(self) -> int:
        return self.server.max_input_width

    @property
    def max_request_bytes(self) -> int:
        return self.server.max_request_bytes

    def _observed(self, method, fn, request, signature=""):
        t = time.time()
        code = grpc.StatusCode.OK
        try:
            return fn(request)
        except RequestError as e:
            code = e.code
            raise
        except Exception:
            code = grpc.StatusCode.INTERNAL
            raise
        finally:
            self.server.metrics.observe(method, signature, code, time.time() - t)

    def predict(self, request):
        signature = request.model_spec.signature_name or "serving_default"
        return self._observed("REST:Predict", self.server.predict, request, signature)

    def metadata(self, request):
        return self._observed("REST:GetModelMetadata", self.server.metadata, request)

    def status(self, request):
        return self._observed("REST:GetModelStatus", self.server.status, request)
