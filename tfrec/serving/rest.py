"""TensorFlow Serving's REST API in front of a gRPC-style backend.

`RestApi` translates TF Serving's REST/JSON requests (`g3doc/api_rest.md`)
into the PredictionService/ModelService protos of a backend such as
`LocalModelServer` and its answers back into TF Serving's JSON, with TF
Serving's paths, request and response shapes, error messages and HTTP status
codes; `serve_rest` puts it on an HTTP port. Clients written for
`tensorflow_model_server --rest_api_port` work against both.

* `GET /v1/models/{name}[/versions/{v}|/labels/{l}]`: model version status.
* `GET .../metadata`: `{"model_spec": ..., "metadata": {"signature_def": ...}}`.
* `POST ...:predict`: `{"signature_name": ..., "instances": [...]}` (row
  format, answered with `{"predictions": ...}`) or `{"inputs": ...}`
  (columnar, answered with `{"outputs": ...}`); binary strings as
  `{"b64": "..."}` (outputs whose name ends in `_bytes` are written so);
  `NaN`, `Infinity` and `-Infinity` as bare tokens, as TF Serving writes them.
* `POST ...:classify` / `...:regress`: an error (tfrec signatures are Predict
  signatures).
* Errors: `{"error": "..."}` with the HTTP status TF Serving maps the gRPC
  code to (`ToHTTPStatusCode` in `http_server.cc`).

The JSON-to-tensor conversion needs each input's dtype; it comes from the
backend's GetModelMetadata answer for the requested model and version, so a
newly loaded version's signatures are used as soon as the backend serves it.

Example:

```python
server = LocalModelServer("runs/quickstart/models", model_name="tfrec", port=8500).start()
http_server = serve_rest(RestApi(server), "127.0.0.1", 8501, {"/healthz": lambda: (200, b"ok\\n", "text/plain")})
# curl -d '{"signature_name": "retrieve", "instances": [{"query": "red shoes", ...}]}' \\
#     http://localhost:8501/v1/models/tfrec:predict
...
http_server.shutdown()
```
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import http.server
import json
import logging
import math
import re
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from tfrec.serving.client import from_tensor_proto, to_tensor_proto
from tfrec.serving.server import RequestError

log = logging.getLogger("tfrec.serving.rest")

__all__ = ["HTTP_STATUS", "BodyTooLarge", "Limits", "RestApi", "serve_rest"]

# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc).
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

JSON = "application/json"
_ROW, _COLUMNAR = "row", "columnar"
_DEFAULT_SIGNATURE = "serving_default"
_PREDICT_METHOD = "tensorflow/serving/predict"

# TF Serving's path patterns (model_servers/http_rest_api_util.cc). RE2's \d is ASCII only, hence [0-9].
_REST_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.IGNORECASE
)

_INT_RANGES = {
    types_pb2.DT_INT32: (-(2**31), 2**31),
    types_pb2.DT_INT16: (-(2**31), 2**31),  # TF Serving reads these as int32 (IsInt) and narrows
    types_pb2.DT_INT8: (-(2**31), 2**31),
    types_pb2.DT_UINT8: (-(2**31), 2**31),
    types_pb2.DT_INT64: (-(2**63), 2**63),
    types_pb2.DT_UINT32: (0, 2**32),
    types_pb2.DT_UINT64: (0, 2**64),
}
_FLOATS = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE)
_WRITABLE = {*_INT_RANGES, *_FLOATS, types_pb2.DT_STRING, types_pb2.DT_BOOL}

# rapidjson's parse-error texts for Python's commonest ones (TF Serving answers "JSON Parse error: <rapidjson text>").
_PARSE_ERRORS = {
    "Expecting value": "Invalid value.",
    "Expecting property name enclosed in double quotes": "Missing a name for object member.",
    "Expecting ':' delimiter": "Missing a colon after a name of object member.",
    "Unterminated string starting at": "Missing a closing quotation mark in string.",
    "Invalid \\escape": "Invalid escape character in string.",
    "Invalid \\uXXXX escape": "Incorrect hex digit after \\u escape in string.",
}


class Backend(Protocol):
    """What `RestApi` needs: TF Serving's gRPC methods on protos, raising `RequestError`."""

    def predict(self, request: Any) -> Any: ...

    def metadata(self, request: Any) -> Any: ...

    def status(self, request: Any) -> Any: ...


def _error(code: grpc.StatusCode, message: str) -> RequestError:
    return RequestError(code, message)


def _invalid(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString: "float", "double", "half", else the dtype's own name."""
    try:
        name = tf.dtypes.as_dtype(dtype).name
    except TypeError:
        return f"unknown dtype {dtype}"
    return {"float32": "float", "float64": "double", "float16": "half"}.get(name, name)


def _json_type(value: Any) -> str:
    """rapidjson's type names, as TF Serving's messages use them."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _debug(value: Any) -> str:
    """A JSON value in an error message, cut at 256 characters as TF Serving does."""
    return json.dumps(value, separators=(", ", ": "))[:256]


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _status_string(e: RequestError) -> str:
    """absl::Status::ToString(): TF Serving nests inner errors so."""
    return f"{e.code.name}: {e}"


# ------------------------------------------------------------------ JSON -> tensors
# Hand-written: TF Serving's JSON tensor rules (util/json_tensor.cc: the shape read from the first element of
# each list, dtype checks per value, b64 objects, row and columnar layouts) are no proto JSON mapping, and
# no library implements them. The values end in numpy arrays and the client's `to_tensor_proto`.


def _parse_json(body: bytes) -> dict:
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _invalid(f"JSON Parse error: Invalid encoding in string. at offset: {e.start}") from None
    stripped = text.lstrip(" \t\n\r")
    if not stripped:
        raise _invalid("JSON Parse error: The document is empty.")
    try:
        # raw_decode stops after the first value, as rapidjson's kParseStopWhenDoneFlag does in TF Serving.
        doc, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as e:
        message = next((v for k, v in _PARSE_ERRORS.items() if e.msg.startswith(k)), e.msg)
        raise _invalid(f"JSON Parse error: {message} at offset: {e.pos + len(text) - len(stripped)}") from None
    except RecursionError:
        raise _invalid("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {_debug(doc)} Is not object")
    return doc


def _signature_name(doc: dict) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise _invalid(
            f"JSON Value: {_debug(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


def _dense_shape(value: Any) -> list[int]:
    """The shape of a nested list, read along the first elements (GetDenseTensorShape)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _shape_string(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _type_error(value: Any, dtype: int) -> RequestError:
    return _invalid(
        f"JSON Value: {_debug(value)} Type: {_json_type(value)} is not of expected type: {_dtype_name(dtype)}"
    )


def _b64_decode(value: Any) -> bytes:
    if not _is_b64(value):
        raise _invalid(f"JSON Value: {_debug(value)} not formatted correctly for base64 data")
    text = value["b64"]
    try:  # absl::Base64Unescape takes the standard alphabet, padded or not
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


def _scalar(value: Any, dtype: int) -> Any:
    """One JSON leaf as a Python value of `dtype` (AddValueToTensor)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype in _FLOATS:
        if not number:
            raise _type_error(value, dtype)
        try:
            return float(value)
        except OverflowError:  # an integer literal beyond the double range
            return math.copysign(math.inf, value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not (number and isinstance(value, int) and low <= value < high):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", "surrogatepass")
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    raise _error(
        grpc.StatusCode.UNIMPLEMENTED, f"Conversion of JSON Value: {_debug(value)} to type: {_dtype_name(dtype)}"
    )


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list) -> None:
    """Appends the leaves of `value` to `out`, checking it is dense with `shape` (FillTensorProto)."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise _invalid(
                f"JSON Value: {_debug(value)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype != types_pb2.DT_STRING:
                raise _type_error(value, dtype)
            out.append(_b64_decode(value))
        else:
            out.append(_scalar(value, dtype))
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise _invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request limits checked on JSON before any value is converted (None: no limit).

    `rows`: the batch axis (`max_request_rows`); `width`: each later axis
    (`max_input_width`); `body_bytes`: the request body (`max_request_bytes`).
    """

    rows: int | None = None
    width: int | None = None
    body_bytes: int | None = None


def _check_shape(name: str, shape: list[int], limits: Limits | None, batch_axis: bool) -> None:
    """Refuses a JSON value whose shape (read from its first elements) is over `limits`."""
    if limits is None:
        return
    if batch_axis and shape and limits.rows is not None and shape[0] > limits.rows:
        raise _invalid(
            f"input '{name}': request of {shape[0]} rows exceeds the limit of {limits.rows} (max_request_rows)"
        )
    for axis, n in enumerate(shape[1:] if batch_axis else shape, start=1):
        if limits.width is not None and n > limits.width:
            raise _invalid(f"input '{name}': axis {axis} of {n} exceeds the limit of {limits.width} (max_input_width)")


def _values(
    value: Any, dtype: int, name: str = "", limits: Limits | None = None, batch_axis: bool = True
) -> tuple[list, list[int]]:
    shape = _dense_shape(value)
    _check_shape(name, shape, limits, batch_axis)  # before converting: a huge list costs nothing
    out: list = []
    _fill(value, 0, shape, dtype, out)
    return out, shape


def _tensor(values: list, shape: list[int], dtype: int):
    """A TensorProto of `dtype` and `shape` holding `values` (checked by `_scalar`)."""
    tf_dtype = tf.dtypes.as_dtype(dtype)
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(values), dtype=object)
        array[:] = values
    elif dtype in _FLOATS:
        with np.errstate(over="ignore"):  # a double beyond the float range becomes +-inf, as in TF Serving
            array = np.array(values, dtype=np.float64).astype(tf_dtype.as_numpy_dtype)
    elif dtype == types_pb2.DT_UINT64:
        array = np.array(values, dtype=np.uint64)
    elif dtype in _INT_RANGES:  # int8/16 and uint8 are narrowed from int32, as TF Serving does
        array = np.array(values, dtype=np.int64).astype(tf_dtype.as_numpy_dtype)
    else:
        array = np.array(values, dtype=tf_dtype.as_numpy_dtype)
    return to_tensor_proto(array.reshape(shape), tf_dtype)


def _from_instances(instances: list, dtypes: Mapping[str, int], limits: Limits | None = None) -> dict:
    """Row format (FillTensorMapFromInstancesList): one tensor per input, batched along a new first axis."""
    names = sorted(dtypes)
    if limits is not None and limits.rows is not None and len(instances) > limits.rows:
        raise _invalid(
            f"request of {len(instances)} instances exceeds the limit of {limits.rows} rows (max_request_rows)"
        )
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    objects = _is_object(instances[0])
    values: dict[str, list] = {}
    sizes: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}

    def add(item: Any, name: str) -> None:  # AddInstanceItem: every element must give the same shape
        if name not in dtypes:
            raise _invalid(f"JSON object: does not have named input: {name}")
        vals, shape = _values(item, dtypes[name], name, limits, batch_axis=False)
        if name not in sizes:
            sizes[name], shapes[name] = len(vals), shape
        elif sizes[name] != len(vals):
            raise _invalid(f"Expecting tensor size: {sizes[name]} but got: {len(vals)}")
        elif shapes[name] != shape:
            raise _invalid(f"Expecting shape {_shape_string(shapes[name])} but got: {_shape_string(shape)}")
        values.setdefault(name, []).extend(vals)

    for count, element in enumerate(instances):
        if objects:
            if not _is_object(element):
                raise _invalid(f"Expecting object but got list at item {count} of input list")
            for key, item in element.items():
                try:
                    add(item, key)
                except RequestError as e:
                    raise _invalid(
                        f"Failed to process element: {count} key: {key} of 'instances' list. Error: {_status_string(e)}"
                    ) from None
            if set(element) != set(names):
                raise _invalid(
                    f"Failed to process element: {count} of 'instances' list. JSON object: {_debug(element)} "
                    f"keys must be equal to: {','.join(names)}"
                )
        else:
            if _is_object(element):
                raise _invalid(f"Expecting value/list but got object at item {count} of input list")
            try:
                add(element, names[0])
            except RequestError as e:
                raise _invalid(
                    f"Failed to process element: {count} of 'instances' list. Error: {_status_string(e)}"
                ) from None
    return {name: _tensor(values[name], [len(instances), *shapes[name]], dtypes[name]) for name in values}


def _from_inputs(inputs: Any, dtypes: Mapping[str, int], limits: Limits | None = None) -> dict:
    """Columnar format (FillTensorMapFromInputsMap): a value for the only input, or an object of inputs."""
    names = sorted(dtypes)
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(names) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
                "tensorinfo_map"
            )
        vals, shape = _values(inputs, dtypes[names[0]], names[0], limits)
        return {names[0]: _tensor(vals, shape, dtypes[names[0]])}
    tensors = {}
    for name in names:  # keys that are no input are ignored, as TF Serving does
        if name not in inputs:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        vals, shape = _values(inputs[name], dtypes[name], name, limits)
        tensors[name] = _tensor(vals, shape, dtypes[name])
    return tensors


def _tensors_from_json(doc: dict, dtypes: Mapping[str, int], limits: Limits | None = None) -> tuple[dict, str]:
    """(input TensorProtos, format) of a predict request body (FillPredictRequestFromJson)."""
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise _invalid(
            f"JSON Value: {_debug(doc)} Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
            "to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _invalid(f"JSON Value: {_debug(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise _invalid(f"JSON Value: {_debug(doc)} No values in 'instances' array")
        return _from_instances(instances, dtypes, limits), _ROW
    if has_inputs:
        return _from_inputs(doc["inputs"], dtypes, limits), _COLUMNAR
    raise _invalid("Missing 'inputs' or 'instances' key")


# ------------------------------------------------------------------ tensors -> JSON
# Hand-written: json.dumps writes a float32 as its float64 expansion (0.2 -> 0.20000000298023224); TF Serving
# writes the shortest of "%g" and "%.9g" (doubles: "%.17g") that reads back, with ".0" on whole numbers.


def _decimal(value: float, single: bool) -> str:
    """A float as TF Serving writes it (WriteDecimal): `0.1`, `9e+06`, `3.0`, `NaN`, `-Infinity`."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:g}"
    back = float(text)
    if (np.float32(back) != np.float32(value)) if single else (back != value):
        text = f"{value:.9g}" if single else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _writer(dtype: int, as_bytes: bool) -> Callable[[Any], str]:
    """A function writing one value of `dtype` as a JSON token."""
    if dtype == types_pb2.DT_FLOAT:
        return lambda v: _decimal(v, True)
    if dtype == types_pb2.DT_DOUBLE:
        return lambda v: _decimal(v, False)
    if dtype == types_pb2.DT_BOOL:
        return lambda v: "true" if v else "false"
    if dtype == types_pb2.DT_STRING:
        if as_bytes:
            return lambda v: '{"b64": "' + base64.b64encode(v).decode("ascii") + '"}'
        # TF Serving writes the bytes unchecked; surrogateescape carries bytes that are no UTF-8 through unchanged.
        return lambda v: json.dumps(v.decode("utf-8", "surrogateescape"), ensure_ascii=False)
    return str  # integers


def _write(value: Any, scalar: Callable[[Any], str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_write(v, scalar) for v in value) + "]"
    return scalar(value)


def _json_from_outputs(outputs: Mapping[str, Any], fmt: str) -> bytes:
    """A predict answer (MakeJsonFromTensors): one output's values alone, several as objects."""
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    arrays, writers = {}, {}
    for name in names:
        proto = outputs[name]
        if proto.dtype not in _WRITABLE:
            raise _invalid(f"Failed to write JSON value for tensor type: {_dtype_name(proto.dtype)}")
        arrays[name] = from_tensor_proto(proto)
        writers[name] = _writer(proto.dtype, proto.dtype == types_pb2.DT_STRING and name.endswith("_bytes"))
    named = len(names) > 1
    if fmt == _ROW:
        batch = -1
        for name in names:
            if arrays[name].ndim == 0:
                raise _invalid(f"Tensor name: {name} has no shape information ")
            rows = arrays[name].shape[0]
            if batch >= 0 and rows != batch:
                raise _invalid(f"Tensor name: {name} has inconsistent batch size: {rows} expecting: {batch}")
            batch = rows
        lists = {name: arrays[name].tolist() for name in names}
        items = []
        for i in range(batch):
            parts = [_write(lists[name][i], writers[name]) for name in names]
            if named:
                items.append("{" + ", ".join(f"{json.dumps(n)}: {p}" for n, p in zip(names, parts)) + "}")
            else:
                items.append(parts[0])
        rows_text = "\n        " + ",\n        ".join(items) + "\n    " if items else ""
        text = '{\n    "predictions": [' + rows_text + "]\n}"
    else:
        parts = [_write(arrays[name].tolist(), writers[name]) for name in names]
        if named:
            body = "{\n        " + ",\n        ".join(f"{json.dumps(n)}: {p}" for n, p in zip(names, parts)) + "\n    }"
        else:
            body = parts[0]
        text = '{\n    "outputs": ' + body + "\n}"
    return text.encode("utf-8", "surrogateescape")


def _error_json(message: str) -> bytes:
    return json.dumps({"error": message}, indent=4).encode("utf-8")


def _proto_json(message: Any, preserve_names: bool) -> dict:
    """A proto as TF Serving's JSON printer writes it (always_print_fields_with_no_presence)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=preserve_names, always_print_fields_with_no_presence=True
    )


@functools.lru_cache(maxsize=32)
def _signature_inputs(serialized: bytes) -> dict[str, tuple[str, dict[str, int]]]:
    """`{signature: (method_name, {input: dtype enum})}` of a serialized SignatureDefMap.

    Cached by content, so a newly loaded version (a different map) is read afresh.
    """
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    sig_map.ParseFromString(serialized)
    return {
        name: (sig.method_name, {k: info.dtype for k, info in sig.inputs.items()})
        for name, sig in sig_map.signature_def.items()
    }


class RestApi:
    """TF Serving's REST API (`/v1/models/...`) over `backend`'s predict/metadata/status protos.

    Args:
        backend: an object with `predict`, `metadata` and `status` taking and
            returning tensorflow-serving-api protos and raising
            `RequestError` (a `LocalModelServer`).
        limits: `Limits` checked on the JSON before tensors are built
            (default: the backend's `max_request_rows`, `max_input_width` and
            `max_request_bytes`, where it has them); `serve_rest` refuses
            bodies over `limits.body_bytes` with 400.

    Example:

    ```python
    api = RestApi(server)
    status, body, content_type = api.handle("POST", "/v1/models/tfrec:predict", b'{"inputs": {...}}')
    api.handle("GET", "/v1/models/tfrec/metadata", b"")
    ```
    """

    def __init__(self, backend: Backend, limits: Limits | None = None):
        self.backend = backend
        # By default the backend's own limits (a LocalModelServer's max_request_rows, ...), checked on the JSON.
        self.limits = limits or Limits(
            rows=getattr(backend, "max_request_rows", None),
            width=getattr(backend, "max_input_width", None),
            body_bytes=getattr(backend, "max_request_bytes", None),
        )

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        """Answers one request: (HTTP status, JSON body, content type). Never raises."""
        path = path.split("?", 1)[0].split("#", 1)[0]
        try:
            if not _REST_PATH.fullmatch(path):
                raise _error(grpc.StatusCode.NOT_FOUND, f"Not found: {path} (the REST API is under /v1/)")
            return 200, self._dispatch(method, path, body), JSON
        except RequestError as e:
            code, message = e.code, str(e)
        except RecursionError:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, "JSON Value: nested too deeply"
        except Exception as e:  # noqa: BLE001  (a bad request must not take the server down)
            log.exception("REST request %s %s failed", method, path)
            code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}"
        return HTTP_STATUS.get(code, 500), _error_json(message), JSON

    # ---------------------------------------------------------------- routing
    def _dispatch(self, method: str, path: str, body: bytes) -> bytes:
        """ProcessRequest of http_rest_api_handler.cc."""
        match = None
        if method == "POST":
            match = _PREDICTION_PATH.fullmatch(path)
        elif method == "GET":
            match = _STATUS_PATH.fullmatch(path)
        malformed = _invalid(f"Malformed request: {method} {path}")
        if match is None:
            raise malformed
        name, version, label, verb = match.groups()
        spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ""))
        if version is not None:
            if int(version) >= 2**63:
                raise _invalid(f"Failed to convert version: {version} to numeric.")
            spec.version.value = int(version)
        if label is not None:
            spec.version_label = urllib.parse.unquote(label)
        if method == "POST":
            # The pattern ignores case, the verbs do not (":PREDICT" is malformed), as in TF Serving.
            if verb == "predict":
                return self._predict(spec, body)
            if verb in ("classify", "regress"):
                return self._classify_or_regress(verb, spec, body)
            raise malformed
        if not spec.name:
            raise _invalid("Missing model name in request.")
        if verb == "metadata":
            return self._metadata(spec)
        return self._status(spec)

    # --------------------------------------------------------------- handlers
    def _status(self, spec) -> bytes:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.CopyFrom(spec)
        response = get_model_status_pb2.GetModelStatusResponse()
        response.CopyFrom(self.backend.status(request))
        for version_status in response.model_version_status:
            # TF Serving always sets the status (error_code OK for a healthy version); an unset one means OK.
            version_status.status.SetInParent()
        return json.dumps(_proto_json(response, preserve_names=False), indent=1).encode("utf-8")

    def _metadata_response(self, spec):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.CopyFrom(spec)
        request.model_spec.ClearField("signature_name")
        response = self.backend.metadata(request)
        if "signature_def" not in response.metadata:
            raise _error(
                grpc.StatusCode.INTERNAL,
                "Failed to find 'signature_def' key in the GetModelMetadataResponse metadata map.",
            )
        return response

    def _metadata(self, spec) -> bytes:
        response = self._metadata_response(spec)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        if not response.metadata["signature_def"].Unpack(sig_map):
            raise _error(grpc.StatusCode.INTERNAL, "Failed to unpack 'Any' object to 'SignatureDefMap'.")
        # As TF Serving's ToJsonString: model_spec and the unpacked SignatureDefMap, proto field names kept.
        out = {
            "model_spec": _proto_json(response.model_spec, preserve_names=True),
            "metadata": {"signature_def": _proto_json(sig_map, preserve_names=True)},
        }
        return json.dumps(out, indent=1).encode("utf-8")

    def _signatures(self, spec) -> dict[str, tuple[str, dict[str, int]]]:
        """The signatures of the version `spec` resolves to now (GetInfoMap)."""
        return _signature_inputs(self._metadata_response(spec).metadata["signature_def"].value)

    def _predict(self, spec, body: bytes) -> bytes:
        doc = _parse_json(body)
        spec.signature_name = _signature_name(doc)
        signature = spec.signature_name or _DEFAULT_SIGNATURE
        signatures = self._signatures(spec)
        if signature not in signatures:
            raise _invalid(f'Serving signature name: "{signature}" not found in signature def')
        dtypes = signatures[signature][1]
        if not dtypes:
            raise _invalid(f"Failed to get input map for signature: {spec.signature_name or 'DEFAULT'}")
        tensors, fmt = _tensors_from_json(doc, dtypes, self.limits)
        request = predict_pb2.PredictRequest()
        request.model_spec.CopyFrom(spec)
        for name, tensor in tensors.items():
            request.inputs[name].CopyFrom(tensor)
        response = self.backend.predict(request)
        return _json_from_outputs(response.outputs, fmt)

    def _classify_or_regress(self, verb: str, spec, body: bytes) -> bytes:
        doc = _parse_json(body)
        signature = _signature_name(doc) or _DEFAULT_SIGNATURE
        signatures = self._signatures(spec)  # NOT_FOUND for an unknown model or version, as TF Serving
        if signature not in signatures:
            raise _invalid(f"No signature was found with the name: {signature}")
        kind, wanted = ("classification", "tensorflow/serving/classify")
        if verb == "regress":
            kind, wanted = ("regression", "tensorflow/serving/regress")
        method_name = signatures[signature][0]
        if method_name == wanted:
            raise _error(grpc.StatusCode.UNIMPLEMENTED, f":{verb} is not served here; use :predict")
        raise _invalid(
            f"Expected {kind} signature method_name to be {wanted}. Was: {method_name}. "
            f"tfrec signatures are Predict signatures: use :predict"
        )


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    max_body_bytes: int | None = None  # longer request bodies are refused (`_read_body`)
    ssl_context: ssl.SSLContext | None = None  # TLS on each accepted connection, where set
    handshake_timeout = 10.0

    def process_request_thread(self, request, client_address):
        # The TLS handshake runs on the connection's own thread, so a client that never
        # completes it holds up no other connection (wrapping the listening socket would).
        if self.ssl_context is not None:
            try:
                request.settimeout(self.handshake_timeout)
                request = self.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ValueError):  # ssl.SSLError is an OSError: a plaintext or unverified client
                log.debug("TLS handshake with %s failed", client_address, exc_info=True)
                request.close()
                return
        super().process_request_thread(request, client_address)

    def handle_error(self, request, client_address):  # quiet: no tracebacks on stderr for dropped clients
        log.debug("REST connection from %s failed", client_address, exc_info=True)


class BodyTooLarge(ValueError):
    """A request body over the server's `max_request_bytes` (answered 400, the connection closed)."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"request body of {size} bytes or more exceeds the limit of {limit} (max_request_bytes)")


_DRAIN_BYTES = 64 << 20  # a refused body up to this size is read and dropped, so the client gets the answer


def _read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body: Content-Length bytes, or the chunks of a chunked transfer.

    At most `handler.server.max_body_bytes` (where set): a longer body raises
    `BodyTooLarge` before it is held in memory.
    """
    limit = getattr(handler.server, "max_body_bytes", None)
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if limit is not None and total > limit:
                handler.close_connection = True
                raise BodyTooLarge(total, limit)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    if length < 0:
        raise ValueError("negative Content-Length")
    if limit is not None and length > limit:
        handler.close_connection = True
        if length <= _DRAIN_BYTES:
            left = length
            while left > 0:
                chunk = handler.rfile.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
        raise BodyTooLarge(length, limit)
    return handler.rfile.read(length) if length else b""


def serve_rest(
    api: RestApi,
    host: str,
    port: int,
    extra_routes: dict[str, Callable[[], tuple[int, bytes, str]]] | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    authorize: Callable[[str, str | None], str | None] | None = None,
) -> http.server.ThreadingHTTPServer:
    """Serves `api` over HTTP on `host:port` from a daemon thread; returns the running server.

    `extra_routes` maps GET paths (such as `/healthz`, `/readyz`, `/metrics`)
    to functions returning (status, body, content type). Port 0 picks a free
    port (`server.server_address[1]`). No access log is written. Stop it with
    `server.shutdown(); server.server_close()`. `ssl_context` (a server-side
    context) serves HTTPS. `authorize(path, authorization_header)` returns
    None to serve a request, or the message of a 401 answer
    (`tfrec.serving.security.RestTokenCheck`).

    Example:

    ```python
    rest = serve_rest(RestApi(server), "127.0.0.1", 0, {"/healthz": lambda: (200, b"ok\\n", "text/plain")})
    port = rest.server_address[1]   # curl http://127.0.0.1:$port/v1/models/tfrec
    rest.shutdown()
    ```
    """
    routes = dict(extra_routes or {})

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving's server

        def _reply(
            self, status: int, body: bytes, content_type: str | None, headers: Mapping[str, str] | None = None
        ) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            path = self.path if self.path.startswith("/") else urllib.parse.urlsplit(self.path).path
            path = path.split("?", 1)[0].split("#", 1)[0]
            try:
                body = _read_body(self)
            except BodyTooLarge as e:
                self.close_connection = True
                self._reply(400, _error_json(str(e)), JSON)
                return
            except ValueError:
                self.close_connection = True
                self._reply(400, _error_json("Malformed request body"), JSON)
                return
            refused = authorize(path, self.headers.get("Authorization")) if authorize is not None else None
            if refused is not None:
                self._reply(401, _error_json(refused), JSON, {"WWW-Authenticate": 'Bearer realm="tfrec"'})
                return
            if self.command == "GET" and path in routes:
                try:
                    status, out, content_type = routes[path]()
                except Exception as e:  # noqa: BLE001
                    log.exception("route %s failed", path)
                    status, out, content_type = 500, f"{type(e).__name__}: {e}\n".encode(), "text/plain"
            else:
                status, out, content_type = api.handle(self.command, path, body)
            self._reply(status, out, content_type)

        def do_OPTIONS(self) -> None:  # a CORS preflight, answered as TF Serving does
            _read_body(self)
            path = urllib.parse.urlsplit(self.path).path
            if not _REST_PATH.fullmatch(path):
                self._reply(404, _error_json(f"Not found: {path} (the REST API is under /v1/)"), JSON)
            elif re.search(r"https?://", self.headers.get("Origin", "")):
                self._reply(200, b"", None)
            else:
                self._reply(400, _error_json("Origin header is missing in CORS preflight"), JSON)

        do_GET = do_POST = do_HEAD = _serve

        def __getattr__(self, name: str) -> Any:  # any other method: "Malformed request", as TF Serving answers
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
            pass

    server = _Server((host, port), Handler)
    server.ssl_context = ssl_context
    server.max_body_bytes = api.limits.body_bytes
    threading.Thread(target=server.serve_forever, name=f"rest:{server.server_address[1]}", daemon=True).start()
    return server
