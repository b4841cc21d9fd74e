"""TF Serving's configuration files, read with TF Serving's own protos.

`tfrec serve` takes the files the `tensorflow/serving` image takes, with the
same meaning:

* `--model_config_file`: a text-format `ModelServerConfig` holding a
  `model_config_list` (`name`, `base_path`, `model_platform`,
  `model_version_policy` of `latest {num_versions}`, `all {}` or
  `specific {versions}`, and `version_labels`). Parsed with the
  `model_server_config_pb2` that tensorflow-serving-api ships.
* `--batching_parameters_file`: a text-format `BatchingParameters`
  (`max_batch_size`, `batch_timeout_micros`, ...).
* `--monitoring_config_file`: a text-format `MonitoringConfig`
  (`prometheus_config { enable path }`).

tensorflow-serving-api ships no Python classes for the last two messages, so
they are built here from descriptors that copy TF Serving's `.proto` files
(`servables/tensorflow/session_bundle_config.proto`,
`config/monitoring_config.proto`) field for field; the text is then parsed by
protobuf's own `text_format`, so a field TF Serving does not know is an error
here too.

Example:

```python
models = models_from_flags(model_name="tfrec", model_base_path="/models/tfrec")
models[0].version_policy    # VersionPolicy(kind='latest', num_versions=1, versions=())
```
"""

from __future__ import annotations

import dataclasses
import os

# protobuf is imported where a file is parsed, not here: `tfrec`'s command line
# builds the `serve` flags from this module for every command.

PROMETHEUS_DEFAULT_PATH = "/monitoring/prometheus/metrics"  # TF Serving's PrometheusExporter::kPrometheusPath


class ServingConfigError(ValueError):
    """A configuration file or flag TF Serving would refuse, with the file and field named."""


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """Which versions under a base path are served (TF Serving's `ServableVersionPolicy`)."""

    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of `available` (sorted ascending)."""
        available = sorted(available)
        if self.kind == "all":
            return available
        if self.kind == "specific":
            return [v for v in available if v in self.versions]
        return available[-self.num_versions :] if self.num_versions > 0 else []


@dataclasses.dataclass(frozen=True)
class ServedModelConfig:
    """One entry of a `model_config_list`: a model name and where its versions live."""

    name: str
    base_path: str
    version_policy: VersionPolicy = VersionPolicy()
    version_labels: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """The `BatchingParameters` fields the local server applies.

    `max_batch_size` rows at most per merged batch; a batch waits at most
    `batch_timeout_micros` for more rows. Other fields are read (and checked)
    but the local server has one batching thread per signature.
    """

    max_batch_size: int = 32  # TF Serving's defaults
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 100
    num_batch_threads: int = 0
    pad_variable_length_inputs: bool = False


def _absolute(path: str) -> bool:
    return os.path.isabs(path) or "://" in path


def _read(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ServingConfigError(f"{what} {path!r} cannot be read: {e.strerror or e}") from None


def _parse(text: str, message, path: str, what: str):
    from google.protobuf import text_format

    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ServingConfigError(f"{what} {path!r}: {e}") from None
    return message


def parse_model_config(text: str, path: str = "<model config>") -> list[ServedModelConfig]:
    """The models of a text-format `ModelServerConfig` (TF Serving's `--model_config_file`)."""
    from tensorflow_serving.config import model_server_config_pb2

    config = _parse(text, model_server_config_pb2.ModelServerConfig(), path, "model config file")
    if config.WhichOneof("config") != "model_config_list":
        raise ServingConfigError(f"model config file {path!r}: expects a model_config_list")
    models, seen = [], set()
    for entry in config.model_config_list.config:
        where = f"model config file {path!r}, model {entry.name!r}"
        if not entry.name:
            raise ServingConfigError(f"model config file {path!r}: a config has no name")
        if entry.name in seen:
            raise ServingConfigError(f"{where}: the name appears twice")
        seen.add(entry.name)
        if entry.model_platform and entry.model_platform != "tensorflow":
            raise ServingConfigError(f"{where}: model_platform {entry.model_platform!r}; tfrec serves 'tensorflow'")
        if not _absolute(entry.base_path):
            # TF Serving's ServerCore refuses relative base paths the same way.
            raise ServingConfigError(f"{where}: expected an absolute path or URI; got base_path()={entry.base_path!r}")
        models.append(
            ServedModelConfig(
                entry.name,
                entry.base_path,
                _version_policy(entry.model_version_policy, where),
                {label: int(version) for label, version in entry.version_labels.items()},
            )
        )
    return models


def _version_policy(policy, where: str) -> VersionPolicy:
    kind = policy.WhichOneof("policy_choice") or "latest"
    if kind == "latest":
        n = policy.latest.num_versions if policy.HasField("latest") else 1
        if n < 1:
            raise ServingConfigError(f"{where}: model_version_policy latest num_versions must be >= 1, got {n}")
        return VersionPolicy("latest", int(n))
    if kind == "specific":
        versions = tuple(sorted(int(v) for v in policy.specific.versions))
        if not versions:
            raise ServingConfigError(f"{where}: model_version_policy specific lists no versions")
        return VersionPolicy("specific", 0, versions)
    return VersionPolicy("all", 0)


def read_model_config_file(path: str) -> list[ServedModelConfig]:
    """`parse_model_config` of the file at `path`."""
    return parse_model_config(_read(path, "model config file"), path)


def models_from_flags(
    model_name: str | None = None,
    model_base_path: str | None = None,
    model_config_file: str | None = None,
) -> list[ServedModelConfig]:
    """The served models TF Serving's flags describe (`--model_config_file` wins, as in TF Serving)."""
    if model_config_file:
        return read_model_config_file(model_config_file)
    if not model_base_path:
        raise ServingConfigError("give --model_base_path (with --model_name) or --model_config_file")
    if not _absolute(model_base_path):
        # TF Serving refuses relative paths; resolving them here keeps the
        # meaning on one machine (docker users pass the path inside the container).
        model_base_path = os.path.abspath(model_base_path)
    return [ServedModelConfig(model_name or "default", model_base_path)]


def _message_class(file_name: str, package_messages: dict[str, list[tuple[str, int, int, str | None, int]]]):
    """Message classes from (field name, number, type, type name, label) tuples."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(_wrappers_file())
    proto = descriptor_pb2.FileDescriptorProto(
        name=file_name, package="tensorflow.serving", syntax="proto3", dependency=["google/protobuf/wrappers.proto"]
    )
    for message_name, fields in package_messages.items():
        message = proto.message_type.add(name=message_name)
        for name, number, ftype, type_name, label in fields:
            field = message.field.add(name=name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
    pool.AddSerializedFile(proto.SerializeToString())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in package_messages
    }


def _wrappers_file() -> bytes:
    from google.protobuf import descriptor_pb2, wrappers_pb2

    file = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(file)
    return file.SerializeToString()


_CLASSES: dict = {}


def _classes():
    if not _CLASSES:
        from google.protobuf.descriptor_pb2 import FieldDescriptorProto as _F

        _OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
        msg = _F.TYPE_MESSAGE
        _CLASSES.update(
            _message_class(
                "tfrec/tf_serving_batching_and_monitoring.proto",
                {
                    # Copied from TF Serving's session_bundle_config.proto (BatchingParameters).
                    "BatchingParameters": [
                        ("max_batch_size", 1, msg, ".google.protobuf.Int64Value", _OPTIONAL),
                        ("batch_timeout_micros", 2, msg, ".google.protobuf.Int64Value", _OPTIONAL),
                        ("max_enqueued_batches", 3, msg, ".google.protobuf.Int64Value", _OPTIONAL),
                        ("num_batch_threads", 4, msg, ".google.protobuf.Int64Value", _OPTIONAL),
                        ("thread_pool_name", 5, msg, ".google.protobuf.StringValue", _OPTIONAL),
                        ("allowed_batch_sizes", 6, _F.TYPE_INT64, None, _REPEATED),
                        ("pad_variable_length_inputs", 7, _F.TYPE_BOOL, None, _OPTIONAL),
                        ("enable_large_batch_splitting", 8, msg, ".google.protobuf.BoolValue", _OPTIONAL),
                        ("max_execution_batch_size", 9, msg, ".google.protobuf.Int64Value", _OPTIONAL),
                    ],
                    # Copied from TF Serving's monitoring_config.proto.
                    "PrometheusConfig": [
                        ("enable", 1, _F.TYPE_BOOL, None, _OPTIONAL),
                        ("path", 2, _F.TYPE_STRING, None, _OPTIONAL),
                    ],
                    "MonitoringConfig": [
                        ("prometheus_config", 1, msg, ".tensorflow.serving.PrometheusConfig", _OPTIONAL),
                    ],
                },
            )
        )
    return _CLASSES


def parse_batching_parameters(text: str, path: str = "<batching parameters>") -> BatchingOptions:
    """A text-format `BatchingParameters` (TF Serving's `--batching_parameters_file`)."""
    params = _parse(text, _classes()["BatchingParameters"](), path, "batching parameters file")
    defaults = BatchingOptions()

    def value(name, default):
        return getattr(params, name).value if params.HasField(name) else default

    options = BatchingOptions(
        max_batch_size=int(value("max_batch_size", defaults.max_batch_size)),
        batch_timeout_micros=int(value("batch_timeout_micros", defaults.batch_timeout_micros)),
        max_enqueued_batches=int(value("max_enqueued_batches", defaults.max_enqueued_batches)),
        num_batch_threads=int(value("num_batch_threads", defaults.num_batch_threads)),
        pad_variable_length_inputs=bool(params.pad_variable_length_inputs),
    )
    for name in ("max_batch_size", "max_enqueued_batches"):
        if getattr(options, name) < 1:
            raise ServingConfigError(f"batching parameters file {path!r}: {name} must be >= 1")
    if options.batch_timeout_micros < 0:
        raise ServingConfigError(f"batching parameters file {path!r}: batch_timeout_micros must be >= 0")
    return options


def read_batching_parameters(path: str) -> BatchingOptions:
    """`parse_batching_parameters` of the file at `path`."""
    return parse_batching_parameters(_read(path, "batching parameters file"), path)


def parse_monitoring_config(text: str, path: str = "<monitoring config>") -> str | None:
    """The Prometheus path a text-format `MonitoringConfig` enables (None: disabled)."""
    config = _parse(text, _classes()["MonitoringConfig"](), path, "monitoring config file")
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    route = prometheus.path or PROMETHEUS_DEFAULT_PATH
    if not route.startswith("/"):
        raise ServingConfigError(f"monitoring config file {path!r}: prometheus_config path must start with '/'")
    return route


def read_monitoring_config(path: str) -> str | None:
    """`parse_monitoring_config` of the file at `path`."""
    return parse_monitoring_config(_read(path, "monitoring config file"), path)
