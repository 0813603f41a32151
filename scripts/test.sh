#!/usr/bin/env bash
# Run every test: the pytest suite (real Postfix, pebble, certbot, the simulator, the quiz bank, the site
# in headless Chromium), then nbval over every notebook on both backends.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p artifacts
status=0

python -m pytest tests -p no:cacheprovider || status=1

if ls notebooks/*.ipynb >/dev/null 2>&1; then
  for backend in postfix sim; do
    echo "== nbval, LABSIM_BACKEND=$backend"
    LABSIM_BACKEND=$backend python -m pytest -p no:cacheprovider --nbval notebooks \
      --nbval-sanitize-with notebooks/sanitize.cfg --nbval-current-env -o testpaths=notebooks || status=1
  done
fi
exit $status
