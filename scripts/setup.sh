#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for Dreamframe: `scripts/setup.sh serve|test`.
#   serve: a venv with the (empty) serve requirements, and the npm runtime packages.
#   test:  also TensorFlow and friends for the converter, pytest, Playwright, ruff, and
#          Debian's chromium (installed with apt when missing and we are root).
# Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"

python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "error: Python 3.11+ is needed ($("$python" --version 2>&1))" >&2; exit 1; }
node -e "process.exit(Number(process.versions.node.split('.')[0]) < 20 ? 1 : 0)" \
  || { echo "error: Node 20+ is needed" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$python" -m venv .venv
fi
requirements="requirements/serve.txt"
[ "$purpose" = "test" ] && requirements="requirements/test.txt"
# npm ci runs alongside pip (each mostly waits on downloads and disk); its status is
# checked below.
npm_pid=""
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund --loglevel=error &
  npm_pid=$!
fi

# The browsers the tests drive, from Debian: Chromium (the whole suite), Firefox ESR and
# WebKitGTK with its WebDriver and a virtual display (tests/test_engines.py). Installed
# alongside pip and npm (apt mostly waits on downloads and dpkg), checked below.
apt_pid=""
missing=""
if [ "$purpose" = "test" ]; then
  [ -x /usr/bin/chromium ] || missing="$missing chromium"
  [ -x /usr/bin/firefox-esr ] || missing="$missing firefox-esr"
  [ -x /usr/bin/WebKitWebDriver ] || missing="$missing webkit2gtk-driver"
  [ -x /usr/bin/Xvfb ] || missing="$missing xvfb"
  if [ -n "$missing" ]; then
    if [ "$(id -u)" != "0" ]; then
      echo "error: missing Debian packages:$missing; install them (as root)" >&2
      exit 1
    fi
    echo "== apt-get install$missing"
    # shellcheck disable=SC2086  # one word per package
    { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; } &
    apt_pid=$!
  fi
fi

stamp=".venv/.installed-$purpose"
if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] || [ requirements/constraints.txt -nt "$stamp" ]; then
  echo "== pip install -r $requirements"
  # pip byte-compiles every module on one core (~55 s here for TensorFlow and friends);
  # compileall on every core does the same in ~28 s. Compiled ahead, not left to imports:
  # where PYTHONDONTWRITEBYTECODE is set (as here) every process would compile TensorFlow
  # again. Like pip, it does not fail on the odd file that does not compile.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile \
    -r "$requirements" -c requirements/constraints.txt
  .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null 2>&1 || true
  touch "$stamp"
fi
# The project itself, editable: dreamengine, native, converter, bench and scripts import one
# another by name (pyproject.toml lists them), from this checkout.
if [ ! -f .venv/.installed-project ] || [ pyproject.toml -nt .venv/.installed-project ]; then
  echo "== pip install -e ."
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  touch .venv/.installed-project
fi

if [ -n "$npm_pid" ]; then
  wait "$npm_pid" || { echo "error: npm ci failed" >&2; exit 1; }
fi
if [ -n "$apt_pid" ]; then
  wait "$apt_pid" || { echo "error: apt-get install$missing failed" >&2; exit 1; }
fi
