#!/usr/bin/env bash
# Set everything up, then run every test: lint, the converter, the engine, the page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
echo "== ruff"
.venv/bin/ruff check .
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
