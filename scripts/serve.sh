#!/usr/bin/env bash
# Set up, build the static site into dist/, and serve it on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh serve
.venv/bin/python scripts/build_site.py dist
exec .venv/bin/python scripts/serving.py dist "${PORT:-8000}"
