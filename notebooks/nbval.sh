#!/usr/bin/env bash
# The nbval stage for one backend:  bash notebooks/nbval.sh postfix|sim [extra pytest arguments]
# (NBVAL_NOTEBOOKS="notebooks/03-*.ipynb" runs only those, e.g. to show that a notebook runs alone.)
#
# A fresh lab home under /tmp (mode 0711: the postfix user must pass through it) and free ports, exported as
# LABSIM_* variables, so a learner's lab on the default ports and /var/lib/labsim is never touched;
# notebooks/sanitize.cfg maps that home and those ports back to what the stored outputs show.
# LABSIM_NOTEBOOK_SOLVE=1: each exercise's check applies its solution first (solve-then-check).
# Afterwards the lab and the sending Postfix are stopped, and the stage fails if any process is left.
set -uo pipefail
cd "$(dirname "$0")/.."
backend=${1:?usage: notebooks/nbval.sh postfix|sim [pytest args]}
shift
# NBVAL_VENV: another venv to run from (scripts/test.sh gives an unprivileged user one that reuses .venv's
# packages when .venv's interpreter lives where that user cannot go).
export PATH="${NBVAL_VENV:-$PWD/.venv}/bin:$PATH"
home=$(mktemp -d /tmp/labsim-nbval-XXXXXXXX)
chmod 0711 "$home"
unset MAIL_CONFIG
export LABSIM_HOME="$home" LABSIM_BACKEND="$backend" LABSIM_NOTEBOOK_SOLVE=1
eval "$(python -m labsim.ports)"

cleanup() {
  python - <<'PY'
from labsim import lab, sender
from labsim.settings import Settings
s = Settings.from_env()
sender.down(s)
lab.down(s)
PY
  left=$(python - "$home" "$$" <<'PY'
import os, sys
home, me = sys.argv[1], {os.getpid(), os.getppid(), int(sys.argv[2])}
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) in me:
        continue
    try:
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        env = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
    except OSError:
        continue
    if home in cmd or home in env:
        print(pid, cmd)
PY
)
  rm -rf "$home"
  if [ -n "$left" ]; then
    echo "nbval ($backend): processes left behind:"; echo "$left"; return 1
  fi
}

# shellcheck disable=SC2086  # NBVAL_NOTEBOOKS is a list of paths (globs allowed)
python -m pytest -p no:cacheprovider --nbval ${NBVAL_NOTEBOOKS:-notebooks} --nbval-sanitize-with notebooks/sanitize.cfg \
  --nbval-current-env -o testpaths=notebooks -o addopts= "$@"
status=$?
cleanup || status=1
exit $status
