#!/usr/bin/env bash
# Set up the environment (extra "web": trame-slicer) and serve the web app: LIMIS, DAP Atlas and
# CC-Metrics on one page in the browser. Options: --port 8765 --host 127.0.0.1 --data DIR --output DIR
# (python -m anatomy_web --help). Binds to this machine only unless --host says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup_env.sh web
root="$(pwd)"
export PYTHONPATH="$root/WebApp:$root/AnatomyCommon:$root/DAPAtlasModule:$root/LIMIS:$root/CCMetricsModule${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m anatomy_web "$@"
