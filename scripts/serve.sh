#!/usr/bin/env bash
# Installs Colonnade into .venv and serves the embedded shop (SQLite, demo data) on port 8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/colonnade serve --demo-data "$@"
