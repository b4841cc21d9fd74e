"""`tfrec serve`'s command line: TensorFlow Serving's own flags, with their meaning.

The flags below are `tensorflow_model_server`'s (same names, defaults and
meaning), so one command line serves with either:

```
tfrec serve --port=8500 --rest_api_port=8501 --model_name=tfrec --model_base_path=/abs/models/tfrec
docker run ... tensorflow/serving:2.20.0 --port=8500 --rest_api_port=8501 --model_name=tfrec ...
```

TF Serving flags with no effect here (thread pools, TPU and TFLite options,
profilers) are accepted and named in a warning, so a command line written for
TF Serving still runs. tfrec-only flags: `--host` (TF Serving listens on all
interfaces; `tfrec serve` on 127.0.0.1 unless told), `--base_path_map` (serve
model config files that name container paths such as `/models/tfrec` from a
host folder), `--max_request_rows`, `--max_input_width`, `--max_request_bytes`
(request limits, checked on each tensor's claimed shape before it is built).
`--max_num_load_retries` and `--load_retry_interval_micros` work as in TF
Serving (a version that failed to load is retried), and a version whose files
change is retried at once.

Example:

```python
parser = argparse.ArgumentParser()
add_serve_arguments(parser)
args = parser.parse_args(["--model_name=tfrec", "--model_base_path=/tmp/models/tfrec"])
server = server_from_args(args)      # a LocalModelServer; .start() serves
```
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from tfrec.serving.config import (
    ServedModelConfig,
    ServingConfigError,
    models_from_flags,
    read_batching_parameters,
    read_monitoring_config,
)

# TF Serving flags accepted without effect on the local server.
IGNORED_FLAGS = (
    "grpc_socket_path",
    "rest_api_num_threads",
    "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support",
    "allow_version_labels_for_unavailable_models",
    "num_load_threads",
    "num_unload_threads",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "use_alts_credentials",
    "platform_config_file",
    "saved_model_tags",
    "grpc_channel_arguments",
    "num_request_iterations_for_warmup",
    "prefer_tflite_model",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "remove_unused_fields_from_bundle_metagraph",
)


def _bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expects true or false, got {value!r}")


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """TF Serving's flags (and tfrec's few extras) on `p`."""
    p.add_argument("--port", type=int, default=8500, help="gRPC port (default: 8500)")
    p.add_argument(
        "--rest_api_port", type=int, default=0, help="REST API port; 0 = no REST API, as TF Serving (default: 0)"
    )
    p.add_argument("--model_name", default="default", help="model name (ignored with --model_config_file)")
    p.add_argument(
        "--model_base_path",
        default=None,
        help="folder of numeric version folders (ignored with --model_config_file; otherwise required)",
    )
    p.add_argument("--model_config_file", default=None, help="text-proto ModelServerConfig (model_config_list)")
    p.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="seconds between re-reads of --model_config_file; 0 = read once (default: 0)",
    )
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=int,
        default=1,
        help="seconds between scans for new versions; 0 = scan once (default: 1)",
    )
    p.add_argument(
        "--enable_batching", type=_bool, nargs="?", const=True, default=False, help="merge concurrent requests"
    )
    p.add_argument("--batching_parameters_file", default=None, help="text-proto BatchingParameters")
    p.add_argument(
        "--monitoring_config_file", default=None, help="text-proto MonitoringConfig (Prometheus on the REST port)"
    )
    p.add_argument(
        "--ssl_config_file",
        default=None,
        help="text-proto SSLConfig (PEM server_key, server_cert, custom_ca; client_verify = mutual TLS): "
        "TLS on gRPC, and here on the REST port too",
    )
    p.add_argument(
        "--enable_model_warmup",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="replay assets.extra/tf_serving_warmup_requests at load (default: true)",
    )
    p.add_argument("--grpc_max_threads", type=int, default=16, help="gRPC worker threads (default: 16)")
    p.add_argument(
        "--max_num_load_retries",
        type=int,
        default=5,
        help="retries of a version that failed to load; a change of its files retries at once (default: 5)",
    )
    p.add_argument(
        "--load_retry_interval_micros",
        type=int,
        default=60_000_000,
        help="microseconds between load retries (default: 60000000 = 60 s)",
    )
    p.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0, help="0 = TensorFlow's choice")
    p.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0, help="0 = TensorFlow's choice")
    for name in IGNORED_FLAGS:
        p.add_argument(f"--{name}", default=None, help=argparse.SUPPRESS)
    group = p.add_argument_group("tfrec only")
    group.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    group.add_argument(
        "--base_path_map",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="serve base paths under FROM from TO, e.g. /models=$PWD/runs/quickstart/models (repeatable)",
    )
    group.add_argument("--max_request_rows", type=int, default=1024, help="most rows per request (default: 1024)")
    group.add_argument(
        "--max_input_width",
        type=int,
        default=4096,
        help="most values along an input's second and later axes, e.g. user history items (default: 4096)",
    )
    group.add_argument(
        "--max_request_bytes",
        type=int,
        default=16 << 20,
        help="largest request, REST body and claimed tensor values, in bytes (default: 16 MiB)",
    )
    group.add_argument(
        "--auth_token_file",
        default=None,
        metavar="PATH",
        help="file holding a bearer token that gRPC calls ('authorization: Bearer <token>' metadata) and REST "
        "requests (Authorization header) must carry; /healthz and /readyz stay open (default: no token)",
    )


def map_base_paths(models: list[ServedModelConfig], mappings: list[str]) -> list[ServedModelConfig]:
    """`models` with base paths under each `FROM=TO` mapping's FROM moved under TO."""
    pairs = []
    for mapping in mappings:
        source, sep, target = mapping.partition("=")
        if not sep or not source or not target:
            raise ServingConfigError(f"--base_path_map expects FROM=TO, got {mapping!r}")
        pairs.append((source.rstrip("/"), os.path.abspath(target)))
    out = []
    for model in models:
        path = model.base_path
        for source, target in pairs:
            if path == source or path.startswith(source + "/"):
                path = target + path[len(source) :]
                break
        out.append(dataclasses.replace(model, base_path=path))
    return out


def ignored_flags(args: argparse.Namespace) -> list[str]:
    """The TF Serving flags given that the local server does not apply."""
    return [name for name in IGNORED_FLAGS if getattr(args, name, None) is not None]


def server_from_args(args: argparse.Namespace):
    """A `LocalModelServer` configured by TF Serving's flags in `args`."""
    import tensorflow as tf

    from tfrec.serving.server import LocalModelServer

    models = models_from_flags(args.model_name, args.model_base_path, args.model_config_file)
    models = map_base_paths(models, args.base_path_map)
    batching = read_batching_parameters(args.batching_parameters_file) if args.batching_parameters_file else None
    if batching is not None and not args.enable_batching:
        raise ServingConfigError("--batching_parameters_file needs --enable_batching=true (as in TF Serving)")
    monitoring_path = read_monitoring_config(args.monitoring_config_file) if args.monitoring_config_file else None
    if args.rest_api_port and args.rest_api_port == args.port:
        raise ServingConfigError("--rest_api_port must differ from --port")
    for flag, low in (
        ("max_request_rows", 1),
        ("max_input_width", 1),
        ("max_request_bytes", 1),
        ("max_num_load_retries", 0),
        ("load_retry_interval_micros", 0),
    ):
        if getattr(args, flag) < low:
            raise ServingConfigError(f"--{flag} must be at least {low}, got {getattr(args, flag)}")
    from tfrec.serving.security import read_ssl_config, read_token_file

    ssl_config_file, auth_token_file = getattr(args, "ssl_config_file", None), getattr(args, "auth_token_file", None)
    ssl_config = read_ssl_config(ssl_config_file) if ssl_config_file else None
    auth_token = read_token_file(auth_token_file) if auth_token_file else None
    if args.tensorflow_intra_op_parallelism:
        tf.config.threading.set_intra_op_parallelism_threads(args.tensorflow_intra_op_parallelism)
    if args.tensorflow_inter_op_parallelism:
        tf.config.threading.set_inter_op_parallelism_threads(args.tensorflow_inter_op_parallelism)
    return LocalModelServer(
        models=models,
        port=args.port,
        http_port=args.rest_api_port or None,
        host=args.host,
        poll_seconds=args.file_system_poll_wait_seconds,
        enable_batching=bool(args.enable_batching),
        max_batch_size=batching.max_batch_size if batching else 32,
        batch_timeout_ms=(batching.batch_timeout_micros / 1000.0) if batching else 0.0,
        monitoring_path=monitoring_path,
        enable_model_warmup=bool(args.enable_model_warmup),
        max_request_rows=args.max_request_rows,
        max_request_bytes=args.max_request_bytes,
        max_input_width=args.max_input_width,
        max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_s=args.load_retry_interval_micros / 1e6,
        workers=args.grpc_max_threads,
        model_config_file=args.model_config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        # Each re-read of the config file goes through the same path mapping.
        config_transform=lambda ms: map_base_paths(ms, args.base_path_map),
        ssl_config=ssl_config,
        auth_token=auth_token,
    )
