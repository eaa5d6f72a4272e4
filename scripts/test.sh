#!/usr/bin/env bash
# Set everything up, then run every test: lint, the converter, the engine, the page.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
echo "== ruff"
.venv/bin/ruff check .
echo "== pytest"
# Two workers (pytest-xdist), each taking whole files (a file's shared page or model stays in
# one worker): much of a browser test is waiting on the page, so two halve little of the CPU
# but a third of the time. --durations: the 25 slowest steps, so what the suite costs stays
# visible.
exec .venv/bin/python -m pytest -n 2 --dist loadfile --durations=25 "$@"
