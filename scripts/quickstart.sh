#!/usr/bin/env bash
# The main job end to end on the embedded default data (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
exec .venv/bin/tfrec quickstart "$@"
