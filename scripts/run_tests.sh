#!/usr/bin/env bash
# Set up the environment and run the whole test suite (lint first). Extra arguments go to pytest.
# The browser tests (Testing/web) drive Debian's Chromium: installed here when missing and run as
# root, otherwise the line to install it is printed and they are skipped - except in CI (CI=1) or
# with ANATOMY_REQUIRE_BROWSER=1, where a missing browser fails them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh test

chromium="${ANATOMY_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "[tests] installing Debian's chromium for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null \
      || echo "[tests] apt-get could not install chromium: the browser tests will say so" >&2
  else
    echo "[tests] no Chromium at $chromium: the browser tests are skipped (CI fails them)." >&2
    echo "[tests] install it with:  sudo apt-get install -y chromium   (or set ANATOMY_CHROMIUM)" >&2
  fi
fi

echo "[tests] ruff"
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
echo "[tests] pytest"
exec .venv/bin/python -m pytest "$@"
