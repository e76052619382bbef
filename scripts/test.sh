#!/usr/bin/env bash
# Installs Colonnade into .venv, checks style, types and module boundaries, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests (operations page, storefront) drive Debian's chromium; install it where we
# may (only the tests need it, so serving the shop never waits for it), with a Japanese font so
# the ja-JP storefront's screenshots show its text.
if { [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi ipagothic; } \
  && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
    fonts-ipafont-gothic >/dev/null \
    || echo "chromium could not be installed; the browser tests will say so"
fi
# The cluster test puts nginx in front of the shop's replicas; the same where we may.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] && command -v apt-get >/dev/null \
  && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
    || echo "nginx could not be installed; the cluster test will say so"
fi
echo "== ruff";          .venv/bin/ruff check src tests bench
echo "== ruff format";   .venv/bin/ruff format --check src tests bench
echo "== mypy";          .venv/bin/mypy
echo "== import-linter"; .venv/bin/lint-imports
# Tests run in a few processes side by side (each test has its own databases, key prefixes,
# streams and ports); COLONNADE_TEST_PROCESSES=0 runs them in this one.
echo "== pytest";        .venv/bin/pytest -n "${COLONNADE_TEST_PROCESSES:-3}" "$@"
