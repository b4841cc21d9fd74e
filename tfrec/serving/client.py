"""A TensorFlow Serving gRPC client for tfrec models.

Built on tensorflow-serving-api's PredictionService and ModelService stubs, so
it talks to the real `tensorflow_model_server` and to `tfrec serve` alike.

Example:

```python
client = ServingClient("localhost:8500", model_name="tfrec", timeout=2.0)
client.signatures()                                # from GetModelMetadata
client.status()                                    # from GetModelStatus
client.retrieve(users_df, k=10)                    # DataFrame: row, rank, item_id, score
client.score(pairs_df)                             # DataFrame: ctr, score, user_value, ...
client.predict("encode_query", {"query": ["red shoes"], ...})

# A server started with --ssl_config_file (client_verify: true) and --auth_token_file:
secure = ServingClient("localhost:8500", root_certificates="ca.pem", certificate_chain="client.pem",
                       private_key="client.key", auth_token_file="token.txt")
```
"""

from __future__ import annotations

import logging
import random
import time

import grpc
import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data.pipeline import pad_history
from tfrec.serving.security import client_channel_credentials, is_loopback, resolve_token

log = logging.getLogger("tfrec.serving")


class ServingError(Exception):
    """A failed call: the gRPC status code and the server's message."""

    def __init__(self, code, message):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.details = message


class ServingClient:
    """Predict, metadata and status calls with deadlines and retries.

    Args:
        target: `host:port` of the gRPC server.
        model_name: the served model's name.
        version: pin a version number (None = the newest).
        version_label: pin a label such as `"stable"` or `"canary"`.
        timeout: per-call deadline in seconds.
        retries: extra attempts on UNAVAILABLE (and only then), with
            exponential backoff from `backoff` seconds and jitter.
        root_certificates: the CA of the server's certificate, PEM bytes or
            a path; TLS is on with it, with `certificate_chain`, or with `tls`.
        certificate_chain, private_key: the client's certificate and key
            (PEM bytes or paths), for a server with `client_verify` (mutual TLS).
        tls: TLS with the system's root certificates (no `root_certificates`).
        server_name: the name to check the server's certificate against,
            where it differs from the target's host (e.g. `localhost` for
            `127.0.0.1:8500`); sets `grpc.ssl_target_name_override`.
        auth_token, auth_token_file: a bearer token, or a file holding it,
            sent as `authorization: Bearer <token>` metadata; without both,
            `$TFREC_SERVING_TOKEN`, then the file `$TFREC_SERVING_TOKEN_FILE`.
        max_message_bytes: gRPC send/receive size limit.
        channel_options: extra gRPC channel options.
    """

    def __init__(
        self,
        target,
        model_name="tfrec",
        version=None,
        version_label=None,
        timeout=5.0,
        retries=3,
        backoff=0.1,
        root_certificates=None,
        max_message_bytes=64 << 20,
        channel_options=(),
        *,
        certificate_chain=None,
        private_key=None,
        tls=False,
        server_name=None,
        auth_token=None,
        auth_token_file=None,
    ):
        from tensorflow_serving.apis import (
            model_service_pb2_grpc,
            prediction_service_pb2_grpc,
        )

        if version is not None and version_label is not None:
            raise ValueError("give version or version_label, not both")
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            *channel_options,
        ]
        secure = tls or root_certificates is not None or certificate_chain is not None or private_key is not None
        if server_name is not None:
            options.append(("grpc.ssl_target_name_override", server_name))
        if secure:
            creds = client_channel_credentials(root_certificates, certificate_chain, private_key)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        token = resolve_token(auth_token, auth_token_file)
        self._metadata = (("authorization", token.header()),) if token is not None else None
        if token is not None and not secure and not is_loopback(target):
            log.warning("ServingClient: the bearer token for %s travels in plaintext; use TLS off this machine", target)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.model_name = model_name
        self.version = version
        self.version_label = version_label
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._signatures = None

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------- plumbing
    def _spec(self, spec, signature=None):
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = int(self.version)
        elif self.version_label is not None:
            spec.version_label = self.version_label
        if signature:
            spec.signature_name = signature

    def _call(self, method, request):
        attempt = 0
        while True:
            try:
                return method(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                code = e.code()
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(self.backoff * (2**attempt) * (1 + random.random()))
                    attempt += 1
                    continue
                raise ServingError(code, e.details()) from None

    # ----------------------------------------------------------------- calls
    def predict(self, signature, inputs: dict, return_version=False):
        """Runs a signature on `{input: array-like}`; returns `{output: ndarray}`."""
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(_tensor_proto(value))
        response = self._call(self.prediction.Predict, request)
        outputs = {name: from_tensor_proto(proto) for name, proto in response.outputs.items()}
        return (outputs, response.model_spec.version.value) if return_version else outputs

    def signatures(self) -> dict:
        """`{signature: {"inputs": {name: (dtype, shape)}, "outputs": {...}}}` from GetModelMetadata."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self.prediction.GetModelMetadata, request)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sig_map)

        def describe(infos):
            return {
                name: (tf.dtypes.as_dtype(info.dtype).name, [d.size for d in info.tensor_shape.dim])
                for name, info in infos.items()
            }

        self._signatures = {
            name: {"inputs": describe(sig.inputs), "outputs": describe(sig.outputs)}
            for name, sig in sig_map.signature_def.items()
        }
        return self._signatures

    def status(self) -> list[dict]:
        """`[{"version": v, "state": "AVAILABLE", ...}]` from GetModelStatus."""
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self.models.GetModelStatus, request)
        return [
            {
                "version": s.version,
                "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state),
                "error_code": s.status.error_code,
            }
            for s in response.model_version_status
        ]

    # ------------------------------------------------------------- helpers
    def inputs_from_frame(self, signature, frame: pd.DataFrame, extra=None) -> dict:
        """Signature inputs built from the DataFrame columns named like them.

        `extra` supplies inputs that are not columns (e.g. `k`). List columns
        become `[rows, n]` string matrices left-padded with "".
        """
        sigs = self._signatures or self.signatures()
        if signature not in sigs:
            raise ValueError(f"signature '{signature}' is not served; signatures are {sorted(sigs)}")
        out = {}
        for name, (dtype, shape) in sigs[signature]["inputs"].items():
            if extra and name in extra:
                out[name] = extra[name]
                continue
            if name not in frame.columns:
                raise ValueError(
                    f"column '{name}' is missing: signature '{signature}' needs {sorted(sigs[signature]['inputs'])}"
                )
            column = frame[name]
            if len(shape) == 2:  # a list column (user history)
                out[name] = pad_history(column)
            elif dtype == "string":
                out[name] = column.astype(str).to_numpy(dtype=object)
            else:
                out[name] = column.to_numpy(dtype=np.dtype(dtype))
        return out

    def score(self, frame: pd.DataFrame, signature="score") -> pd.DataFrame:
        """Scores query/user-item rows; one output column per signature output."""
        outputs = self.predict(signature, self.inputs_from_frame(signature, frame))
        return pd.DataFrame({k: list(v) if v.ndim > 1 else v for k, v in outputs.items()}, index=frame.index)

    def user_value(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.score(frame, signature="user_value")

    def encode_query(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict("encode_query", self.inputs_from_frame("encode_query", frame))["query_embedding"]

    def retrieve_inputs(self, frame: pd.DataFrame, k=10, exclude=None) -> dict:
        """Inputs of the `retrieve` signature: the frame's user columns, `k`, exclusions."""
        n = len(frame)
        exclude = exclude if exclude is not None else [[] for _ in range(n)]
        if len(exclude) != n:
            raise ValueError(f"exclude has {len(exclude)} lists for {n} rows")
        width = max(1, max((len(e) for e in exclude), default=1))
        excl = np.array([[str(x) for x in e] + [""] * (width - len(e)) for e in exclude], dtype=object)
        extra = {"k": np.full(n, int(k), np.int32), "exclude_item_ids": excl}
        return self.inputs_from_frame("retrieve", frame, extra)

    def retrieve(self, frame: pd.DataFrame, k=10, exclude=None) -> pd.DataFrame:
        """Top-k items per row of `frame`; `exclude`: a list of item-id lists per row.

        Returns a long DataFrame: `row` (the frame's index), `rank` (1-based),
        `item_id`, `score`.
        """
        out = self.predict("retrieve", self.retrieve_inputs(frame, k, exclude))
        ids, scores = out["item_ids"], out["scores"]
        rows = []
        for i, row in enumerate(frame.index):
            for rank in range(ids.shape[1]):
                item = ids[i, rank].decode()
                if item:
                    rows.append((row, rank + 1, item, float(scores[i, rank])))
        return pd.DataFrame(rows, columns=["row", "rank", "item_id", "score"])


def _tensor_proto(value):
    array = np.asarray(value)
    if array.dtype.kind in ("U", "O", "S"):
        return to_tensor_proto(array, tf.string)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return to_tensor_proto(array)


_NUMPY_OF = {tf.float32: np.float32, tf.float64: np.float64, tf.int32: np.int32, tf.int64: np.int64, tf.bool: np.bool_}
_DTYPE_OF = {np.dtype(v): k for k, v in _NUMPY_OF.items()}


def to_tensor_proto(array, dtype=None):
    """A `TensorProto` of a numpy array, as `tf.make_tensor_proto` builds it, faster.

    Strings (str, bytes or object arrays) go to `string_val` as UTF-8 bytes,
    float/int/bool arrays to `tensor_content`; other dtypes fall back to
    `tf.make_tensor_proto`. Example: `to_tensor_proto(np.array(["red shoes"]))`.
    """
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

    array = np.asarray(array)
    if dtype is None:
        dtype = tf.string if array.dtype.kind in ("U", "O", "S") else _DTYPE_OF.get(array.dtype)
    if dtype is None or (dtype != tf.string and array.dtype != _NUMPY_OF.get(dtype)):
        return tf.make_tensor_proto(array, dtype=dtype)
    proto = tensor_pb2.TensorProto(
        dtype=dtype.as_datatype_enum,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(n)) for n in array.shape]
        ),
    )
    if dtype == tf.string:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
    return proto


def from_tensor_proto(proto):
    """The numpy array of a `TensorProto` (`tf.make_ndarray`, with fast paths).

    Example: `from_tensor_proto(to_tensor_proto(np.ones(3, np.float32)))`.
    """
    shape = [d.size for d in proto.tensor_shape.dim]
    if proto.dtype == tf.string.as_datatype_enum and len(proto.string_val) == int(np.prod(shape)):
        out = np.empty(len(proto.string_val), dtype=object)
        out[:] = list(proto.string_val)
        return out.reshape(shape)
    dtype = tf.dtypes.as_dtype(proto.dtype) if proto.dtype else None
    if dtype in _NUMPY_OF and proto.tensor_content:
        out = np.frombuffer(proto.tensor_content, dtype=_NUMPY_OF[dtype])
        if out.size == int(np.prod(shape)):
            return out.reshape(shape).copy()
    return tf.make_ndarray(proto)
