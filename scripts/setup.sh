#!/usr/bin/env bash
# Creates .venv and installs Colonnade with its development tools, once per pyproject.toml change.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv --help >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.colonnade-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  echo "$want" > "$stamp"
fi
