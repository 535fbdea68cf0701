#!/usr/bin/env bash
# Set up the environment and run the whole test suite (lint first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh test
echo "[tests] ruff"
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
echo "[tests] pytest"
exec .venv/bin/python -m pytest "$@"
