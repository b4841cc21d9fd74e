#!/usr/bin/env bash
# The test suite (see README). Extra arguments go to pytest (e.g. -k schema, -n 0 for one process).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
# Test files run in parallel worker processes (pytest-xdist), one file per
# worker at a time (its module fixtures are shared by its tests): most tests
# wait on graph tracing, subprocesses and servers, not on both cores. At most
# 4 workers (each holds a TensorFlow runtime, about 1.5 GB).
workers="${TFREC_TEST_WORKERS:-$(.venv/bin/python -c 'import os; print(min(4, max(2, len(os.sched_getaffinity(0)))))')}"
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
