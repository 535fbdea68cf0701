#!/usr/bin/env bash
# Set up the environment and run the main job on the bundled sample data (the synthetic phantom).
# Results go to out/main_job/ (the job's own folder): a run writes a fresh sibling folder and swaps
# it in only when every step succeeded, so a failed run leaves the previous results in place.
set -euo pipefail
cd "$(dirname "$0")/.."
# Options are checked first (plain python3, nothing imported), so a typo is reported before the
# environment is installed on a fresh clone.
python="${PYTHON:-python3}"
"$python" scripts/main_job.py --check-options "$@" >/dev/null || exit $?
for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
    exec "$python" scripts/main_job.py "$@"
  fi
done
./scripts/setup_env.sh all
exec .venv/bin/python scripts/main_job.py --out out/main_job "$@"
