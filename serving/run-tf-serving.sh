#!/usr/bin/env bash
# Serves tfrec exports with the stock TensorFlow Serving image (2.20 or newer:
# the BERT tokeniser's TF Text ops are bundled since 2.10).
# Usage: serving/run-tf-serving.sh [MODELS_DIR] [CONFIG]
#   MODELS_DIR  the export base directory (default: runs/quickstart/models)
#   CONFIG      models.latest.config (default) or models.config (stable/canary labels)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
models="$(cd "${1:-runs/quickstart/models}" && pwd)"
config="${2:-models.latest.config}"
exec docker run --rm -p 8500:8500 -p 8501:8501 \
  -v "$models:/models:ro" -v "$here:/config:ro" \
  tensorflow/serving:2.20.0 \
  --port=8500 --rest_api_port=8501 \
  --model_config_file="/config/$config" --model_config_file_poll_wait_seconds=60 \
  --file_system_poll_wait_seconds=5 \
  --enable_batching=true --batching_parameters_file=/config/batching_parameters.txt \
  --enable_model_warmup=true \
  --monitoring_config_file=/config/monitoring.config
