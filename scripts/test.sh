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

# nbval as a learner without root: the simulator's stage again, run by an unprivileged user created for it
# (and removed afterwards), so "every notebook runs to the end without root" is tested, not assumed.
nonroot_nbval() {
  local user=labstudent created=0 venv="$PWD/.venv" tmp="" rc=0 src="$PWD"
  id "$user" >/dev/null 2>&1 || { useradd -m "$user" && created=1; } || return 1
  if ! runuser -u "$user" -- "$venv/bin/python" -c 'import labsim' 2>/dev/null || \
     ! runuser -u "$user" -- test -r "$PWD/notebooks/nbval.sh"; then
    # .venv's interpreter or the checkout is where that user cannot go (pyenv under /root, a clone in /root):
    # a venv of the system python3 (same minor version) that reads .venv's packages (a copy when they are
    # out of reach) and, when the checkout is, a copy of it (without .git and .venv).
    local py=${NONROOT_PYTHON:-/usr/bin/python3} site usersite
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    if [ "$("$py" -c 'import sys; print(sys.version_info[:2])' 2>/dev/null)" != \
         "$("$venv/bin/python" -c 'import sys; print(sys.version_info[:2])')" ]; then
      echo "== nbval (unprivileged): $py is not the Python version of .venv; set NONROOT_PYTHON"
      rc=1
    else
      tmp=$(mktemp -d /tmp/labsim-unprivileged-XXXXXXXX)
      chmod 0755 "$tmp"
      if ! runuser -u "$user" -- test -r "$PWD/notebooks/nbval.sh"; then
        mkdir "$tmp/checkout"
        tar -C "$PWD" --exclude=./.git --exclude=./.venv --exclude=./artifacts -cf - . | tar -C "$tmp/checkout" -xf -
        src="$tmp/checkout"
      fi
      if ! runuser -u "$user" -- test -r "$site"; then
        cp -a "$site" "$tmp/site-packages"
        site="$tmp/site-packages"
      fi
      chown -R "$user" "$tmp"
      runuser -u "$user" -- "$py" -m venv --without-pip "$tmp/venv"
      usersite=$(runuser -u "$user" -- "$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
      # The checkout first on sys.path: it wins over .venv's editable finder, which names the original.
      echo "import sys; sys.path.insert(0, '$src'); import site; site.addsitedir('$site')" >"$usersite/labsim-venv.pth"
      for pair in labsim:labsim.cli quizzes:quizzes.cli; do
        printf '#!%s\nimport sys\nfrom %s import main\nsys.exit(main())\n' "$tmp/venv/bin/python" "${pair#*:}" \
          >"$tmp/venv/bin/${pair%%:*}"
        chmod 755 "$tmp/venv/bin/${pair%%:*}"
      done
      venv="$tmp/venv"
    fi
  fi
  if [ "$rc" = 0 ]; then
    (cd "$src" && runuser -u "$user" -- env -u MAIL_CONFIG HOME="$(getent passwd "$user" | cut -d: -f6)" \
      NBVAL_VENV="$venv" bash notebooks/nbval.sh sim -q) >artifacts/nbval-sim-unprivileged.log 2>&1 || rc=1
    echo "== nbval, LABSIM_BACKEND=sim as unprivileged user $user (artifacts/nbval-sim-unprivileged.log)"
    cat artifacts/nbval-sim-unprivileged.log
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
  [ "$created" = 1 ] && userdel -r "$user" >/dev/null 2>&1
  return $rc
}
if [ "$(id -u)" = 0 ] && ls notebooks/[0-9][0-9]-*.ipynb >/dev/null 2>&1; then
  nonroot_nbval || { status=1; echo "== nbval FAILED, LABSIM_BACKEND=sim as an unprivileged user"; }
fi
exit $status
