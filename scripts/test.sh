#!/usr/bin/env bash
# Set everything up, then run every test: lint, the converter, the engine, the page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
echo "== ruff"
.venv/bin/ruff check .
echo "== pytest"
# --durations: the 25 slowest steps, so that what the suite costs stays visible.
exec .venv/bin/python -m pytest --durations=25 "$@"
