#!/usr/bin/env bash
# The test suite (see README). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
exec .venv/bin/python -m pytest -q "$@"
