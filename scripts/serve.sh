#!/usr/bin/env bash
# Set up, build the static site into dist/, and serve it on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh serve
.venv/bin/python scripts/build_site.py dist
echo "== serving dist/ on http://127.0.0.1:${PORT:-8000} (Ctrl-C to stop)"
exec .venv/bin/python -m http.server "${PORT:-8000}" --bind 127.0.0.1 --directory dist
