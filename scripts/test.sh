#!/usr/bin/env bash
# Installs Colonnade into .venv, checks style, types and module boundaries, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff";          .venv/bin/ruff check src tests bench
echo "== ruff format";   .venv/bin/ruff format --check src tests bench
echo "== mypy";          .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
echo "== pytest";        .venv/bin/pytest "$@"
