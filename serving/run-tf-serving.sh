#!/usr/bin/env bash
# Serves tfrec exports with the stock TensorFlow Serving image (2.20 or newer:
# the BERT tokeniser's TF Text ops are bundled since 2.10).
# Usage: serving/run-tf-serving.sh [MODELS_DIR] [CONFIG]
#   MODELS_DIR  the export base directory (default: runs/quickstart/models)
#   CONFIG      models.latest.config (default) or models.config (stable/canary labels)
# Environment:
#   TFREC_SERVING_BIND        host address the ports are published on (default: 127.0.0.1,
#                             this machine only); TFREC_SERVING_BIND=0.0.0.0 opens them to the network
#   TFREC_SERVING_SSL_CONFIG  a text-proto SSLConfig (PEM key, certificate, client CA): TLS on
#                             gRPC (TF Serving's REST port stays plaintext); mounted read-only
# The model directory must be trusted: a SavedModel is a program (it can read and write files).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="$(cd "${1:-runs/quickstart/models}" && pwd)"
config="${2:-models.latest.config}"
bind="${TFREC_SERVING_BIND:-127.0.0.1}"
tls_volume=() tls_flag=()
if [[ -n "${TFREC_SERVING_SSL_CONFIG:-}" ]]; then
  if [[ ! -f "$TFREC_SERVING_SSL_CONFIG" ]]; then
    echo "run-tf-serving.sh: TFREC_SERVING_SSL_CONFIG=$TFREC_SERVING_SSL_CONFIG is not a file" >&2
    exit 2
  fi
  ssl_config="$(cd "$(dirname "$TFREC_SERVING_SSL_CONFIG")" && pwd)/$(basename "$TFREC_SERVING_SSL_CONFIG")"
  tls_volume=(-v "$ssl_config:/secrets/ssl.config:ro")
  tls_flag=(--ssl_config_file=/secrets/ssl.config)
fi
# ${a[@]+"${a[@]}"}: an empty array under `set -u` on bash 3.2 (macOS) too.
exec docker run --rm -p "$bind:8500:8500" -p "$bind:8501:8501" \
  -v "$models:/models:ro" -v "$here:/config:ro" ${tls_volume[@]+"${tls_volume[@]}"} \
  tensorflow/serving:2.20.0 \
  --port=8500 --rest_api_port=8501 \
  --model_config_file="/config/$config" --model_config_file_poll_wait_seconds=60 \
  --file_system_poll_wait_seconds=5 \
  --enable_batching=true --batching_parameters_file=/config/batching_parameters.txt \
  --enable_model_warmup=true \
  --monitoring_config_file=/config/monitoring.config \
  ${tls_flag[@]+"${tls_flag[@]}"}
