#!/usr/bin/env bash
# Run every test: the pytest suite (real Postfix, pebble, certbot, the simulator, the quiz bank, the site
# in headless Chromium), then nbval over every notebook on both backends.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p artifacts
status=0

python -m pytest tests -p no:cacheprovider || status=1

# nbval: every notebook on the real Postfix and on the simulator, each backend with a fresh temporary lab home
# and free ports (notebooks/nbval.sh; notebooks/sanitize.cfg maps them back to what the stored outputs show).
# The two backends run side by side (separate homes and ports): about 90 s instead of 150 s on 2 cores.
if ls notebooks/[0-9][0-9]-*.ipynb >/dev/null 2>&1; then
  pids=()
  for backend in postfix sim; do
    bash notebooks/nbval.sh "$backend" -q >"artifacts/nbval-$backend.log" 2>&1 &
    pids+=($!)
  done
  i=0
  for backend in postfix sim; do
    wait "${pids[$i]}" || { status=1; echo "== nbval FAILED, LABSIM_BACKEND=$backend"; }
    echo "== nbval, LABSIM_BACKEND=$backend (artifacts/nbval-$backend.log)"
    cat "artifacts/nbval-$backend.log"
    i=$((i + 1))
  done
fi
exit $status
