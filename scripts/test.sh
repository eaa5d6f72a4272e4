#!/usr/bin/env bash
# Set everything up, then run every test: lint, the converter, the engine, the page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
echo "== ruff"
.venv/bin/ruff check .
echo "== pytest"
# Two workers (pytest-xdist), each taking whole files (a file's shared page or model stays in
# one worker), slowest files first (tests/conftest.py SLOWEST_FIRST; --no-loadscope-reorder
# keeps that order rather than xdist's, by number of tests) so that both finish together.
# --durations: the 25 slowest steps, so what the suite costs stays visible.
exec .venv/bin/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25 "$@"
