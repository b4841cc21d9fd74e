"""A local, protocol-compatible stand-in for TensorFlow Serving.

For development, notebooks and tests on machines without the
`tensorflow_model_server` binary or Docker. It implements the same gRPC
services over the same model base directory: PredictionService (Predict,
GetModelMetadata; Classify and Regress answer that tfrec signatures are not
classification/regression signatures) and ModelService (GetModelStatus), with
TF Serving's status codes. Production uses TF Serving with the files in
`serving/`; the same client code works against both.

* It polls `<base_dir>/<model_name>/` for numeric version folders, loads a new
  version, switches to it without failing requests in flight (they finish on
  the version they started on) and unloads versions beyond `keep_versions`.
* Concurrent requests for the same version and signature are batched (as
  `--enable_batching`): up to `max_batch_size` rows, waiting at most
  `batch_timeout_ms` for more, and only while other requests are arriving: a
  lone request runs at once, on its own thread (no batching delay at 1 client).
* Bad requests (unknown model/version/signature, missing or extra input,
  wrong dtype or rank, too many rows or bytes, empty strings where text or ids
  are required, non-UTF-8 bytes) get INVALID_ARGUMENT (NOT_FOUND for unknown
  models and versions) naming the input; the server keeps serving.
* `/healthz`, `/readyz` and `/metrics` (Prometheus text) on an HTTP port;
  one JSON log line per request.

Example:

```python
server = LocalModelServer("runs/quickstart/models", model_name="tfrec", port=8500)
server.start()          # returns once the newest version is loaded
...
server.stop()
```
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.server
import json
import logging
import os
import threading
import time

import grpc
import numpy as np
import tensorflow as tf

from tfrec.export.ops import read_saved_model, version_numbers
from tfrec.serving.client import from_tensor_proto, to_tensor_proto

log = logging.getLogger("tfrec.serving")

_DTYPES = {tf.string: "string", tf.float32: "float", tf.int32: "int32", tf.int64: "int64"}


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
    loaded: object
    signature_defs: dict
    input_specs: dict  # signature -> {input: TensorSpec}
    required_text: dict  # signature -> inputs whose strings must be non-empty
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
        required = {schema.get(r) for r in ("query_text", "user_id", "item_id", "item_text")} - {None}
    required_text = {s: sorted(required & set(specs)) for s, specs in input_specs.items()}
    return Servable(version, path, loaded, signature_defs, input_specs, required_text)


class _Metrics:
    """Request/error counters and a latency histogram, in Prometheus text format."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, float("inf"))

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple, int] = {}
        self.errors: dict[tuple, int] = {}
        self.latency = [0] * len(self.BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0

    def observe(self, method, signature, code, seconds):
        with self.lock:
            key = (method, signature)
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


class LocalModelServer:
    """Serves `<base_dir>/<model_name>/<version>` over TF Serving's gRPC API.

    Args:
        base_dir: model base directory (the parent of `model_name/`).
        model_name: the served model's name.
        port: gRPC port (0 picks a free one; see `.port`).
        http_port: port of /healthz, /readyz, /metrics (0 = free; None = off).
        poll_seconds: how often the base directory is scanned.
        keep_versions: versions kept loaded (the newest ones).
        version_labels: e.g. `{"stable": 1, "canary": 2}`.
        max_batch_size, batch_timeout_ms: server-side batching.
        max_request_rows: refuse requests with more rows.
        max_request_bytes: refuse larger requests (INVALID_ARGUMENT).
        workers: gRPC worker threads.
    """

    def __init__(
        self,
        base_dir,
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
    ):
        self.base_dir = str(base_dir)
        self.model_name = model_name
        self.host = host
        self.port = port
        self.http_port = http_port
        self.poll_seconds = poll_seconds
        self.keep_versions = max(1, int(keep_versions))
        self.version_labels = dict(version_labels or {})
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_ms / 1000.0
        self.max_request_rows = max_request_rows
        self.max_request_bytes = max_request_bytes
        self.workers = workers
        self.servables: dict[int, Servable] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._grpc = None
        self._http = None
        self._poller = None
        self.metrics = _Metrics()
        self._arrivals = _Arrivals()

    # ------------------------------------------------------------ versions
    def _model_dir(self):
        return os.path.join(self.base_dir, self.model_name)

    def refresh(self):
        """Loads new versions and unloads old ones (the poller calls this)."""
        wanted = version_numbers(self._model_dir(), complete=True)[-self.keep_versions :]
        for version in wanted:
            if version not in self.servables:
                t = time.time()
                servable = _load_servable(os.path.join(self._model_dir(), str(version)), version)
                with self._lock:
                    self.servables[version] = servable
                log.info(
                    json.dumps(
                        {
                            "event": "version_loaded",
                            "model": self.model_name,
                            "version": version,
                            "seconds": round(time.time() - t, 3),
                        }
                    )
                )
        with self._lock:
            for version in [v for v in self.servables if v not in wanted]:
                servable = self.servables.pop(version)
                for batcher in servable.batchers.values():
                    batcher.close()  # requests already running keep their reference
                log.info(json.dumps({"event": "version_unloaded", "model": self.model_name, "version": version}))

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception as e:  # noqa: BLE001  (a bad version must not stop the server)
                log.error(json.dumps({"event": "load_failed", "error": str(e)}))

    def ready(self) -> bool:
        return bool(self.servables)

    def resolve(self, model_spec) -> Servable:
        if model_spec.name != self.model_name:
            raise RequestError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: model '{model_spec.name}' (serving '{self.model_name}')",
            )
        with self._lock:
            if not self.servables:
                raise RequestError(grpc.StatusCode.UNAVAILABLE, f"model '{self.model_name}' has no version loaded")
            if model_spec.HasField("version"):
                version = model_spec.version.value
            elif model_spec.version_label:
                if model_spec.version_label not in self.version_labels:
                    raise RequestError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"unknown version_label '{model_spec.version_label}'; labels are {sorted(self.version_labels)}",
                    )
                version = self.version_labels[model_spec.version_label]
            else:
                version = max(self.servables)
            if version not in self.servables:
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: model '{self.model_name}' version {version} "
                    f"(loaded: {sorted(self.servables)})",
                )
            return self.servables[version]

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
        for name, spec in specs.items():
            proto = request.inputs[name]
            if proto.dtype != spec.dtype.as_datatype_enum:
                raise _invalid(
                    f"input '{name}': expects dtype {_DTYPES.get(spec.dtype, spec.dtype.name)}, "
                    f"got {tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else 'none'}"
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

    def predict(self, request):
        from tensorflow_serving.apis import predict_pb2

        self._arrivals.enter()  # batchers wait for more rows only while requests are arriving
        try:
            servable = self.resolve(request.model_spec)
            signature = request.model_spec.signature_name or "serving_default"
            inputs, rows = self._parse_inputs(servable, signature, request)
            batcher = servable.batchers.get(signature)
            if batcher is None:
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
        response.model_spec.name = self.model_name
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
        response.model_spec.name = self.model_name
        response.model_spec.version.value = servable.version
        response.metadata["signature_def"].Pack(sig_map)
        return response

    def status(self, request):
        from tensorflow_serving.apis import get_model_status_pb2

        if request.model_spec.name != self.model_name:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"model '{request.model_spec.name}' is not served")
        response = get_model_status_pb2.GetModelStatusResponse()
        with self._lock:
            versions = sorted(self.servables)
        if request.model_spec.HasField("version"):
            if request.model_spec.version.value not in versions:
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND, f"version {request.model_spec.version.value} is not loaded"
                )
            versions = [request.model_spec.version.value]
        for version in versions:
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
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
        """Starts polling, the gRPC server and the HTTP probe server."""
        from tensorflow_serving.apis import (
            model_service_pb2_grpc,
            prediction_service_pb2_grpc,
        )

        self.refresh()
        server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=self.workers),
            options=[
                ("grpc.max_receive_message_length", self.max_request_bytes * 2),
                ("grpc.max_send_message_length", 64 << 20),
            ],
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
        self.port = server.add_insecure_port(f"{self.host}:{self.port}")
        server.start()
        self._grpc = server
        self._poller = threading.Thread(target=self._poll, daemon=True)
        self._poller.start()
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
                    "http_port": self.http_port,
                    "versions": sorted(self.servables),
                }
            )
        )
        return self

    def _start_http(self):
        outer = self

        class Probe(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/healthz":
                    body, code = "ok\n", 200
                elif self.path == "/readyz":
                    body, code = ("ready\n", 200) if outer.ready() else ("no model version loaded\n", 503)
                elif self.path == "/metrics":
                    body, code = outer.metrics.render(), 200
                else:
                    body, code = "not found\n", 404
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self._http = http.server.ThreadingHTTPServer((self.host, self.http_port or 0), Probe)
        self.http_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self, grace=1.0):
        self._stop.set()
        if self._grpc is not None:
            self._grpc.stop(grace).wait()
        if self._http is not None:
            self._http.shutdown()
        for servable in list(self.servables.values()):
            for batcher in servable.batchers.values():
                batcher.close()

    def wait(self):
        """Blocks until the process is interrupted."""
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            self.stop()
