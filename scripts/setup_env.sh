#!/usr/bin/env bash
# Create .venv (if needed) and install the toolkit with the given extras, e.g. "test" or "all".
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-all}"
python="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
stamp=".venv/.toolkit-${extras}-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing the toolkit with extras [$extras] (torch is large: the first run takes a few minutes)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet --editable ".[$extras]"
  touch "$stamp"
fi
# nnU-Net v1 (2023) is the oracle of the DAP v1 -> v2 model conversion tests; --no-deps because its
# requirements (the dead `sklearn` meta-package, old numpy pins) do not install today.
if [[ "$extras" == *test* ]] && ! .venv/bin/python -c "import nnunet" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --no-deps "nnunet==1.7.1"
fi
