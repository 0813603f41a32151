#!/usr/bin/env bash
# Set up everything the course needs, idempotently: Debian packages (as root), then ./.venv.
# A second run only checks, so it takes a second or two.
#   scripts/setup.sh          course packages
#   scripts/setup.sh --test   also what the tests need (headless chromium for the site test)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

APT_COURSE="postfix pebble certbot swaks openssl ca-certificates ssl-cert python3-venv nsd unbound ldnsutils bind9-dnsutils testssl.sh"
APT_TEST="chromium chromium-driver iproute2 tzdata faketime"
pkgs="$APT_COURSE"
[ "$want_test" = 1 ] && pkgs="$pkgs $APT_TEST"

missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    # A fresh install of postfix must not configure or start the system's own mail server:
    # the lab runs a private instance. This answer only applies when postfix is not installed yet.
    if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
      echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    fi
    export DEBIAN_FRONTEND=noninteractive
    # The lab runs its own NSD and unbound on loopback ports (labsim.dns): the packages' system daemons
    # must not start on port 53 or touch the system's resolver (unbound-resolvconf). Masked before install.
    # Only for the packages this run installs: a DNS server the machine already had stays as it was.
    new_dns=$(printf '%s\n' "${missing[@]}" | grep -xE 'nsd|unbound' || true)
    dns_units=""
    for svc in $new_dns; do dns_units="$dns_units $svc.service"; done
    case " $new_dns " in *" unbound "*) dns_units="$dns_units unbound-resolvconf.service" ;; esac
    [ -n "$dns_units" ] && [ -d /run/systemd/system ] && systemctl mask $dns_units >/dev/null 2>&1 || true
    # No package's daemon may start during the install (Debian's policy-rc.d: exit 101 = not allowed),
    # whatever the init system; an existing policy-rc.d (container images have one) is left as it is.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\n# labsim setup: no daemon starts while the lab installs its packages\nexit 101\n' > "$policy"
      chmod 0755 "$policy"
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    if grep -q "labsim setup" "$policy" 2>/dev/null; then rm -f "$policy"; trap - EXIT; fi
    for svc in $new_dns; do  # no systemd: stop and disable the SysV scripts instead
      [ -d /run/systemd/system ] || { service "$svc" stop; update-rc.d "$svc" disable; } >/dev/null 2>&1 || true
    done
  else
    echo "setup: these Debian packages are missing: ${missing[*]}" >&2
    echo "setup: install them as root with:" >&2
    echo "    sudo apt-get install -y ${missing[*]}" >&2
    echo "setup: without root the lab still works with the simulator backend (labsim up --backend sim)." >&2
  fi
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: Python 3.11 or newer is needed ('$PY' is $("$PY" --version 2>&1))." >&2
  echo "setup: install it (Debian 12: sudo apt-get install python3) or set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi

# Reinstall only when the project's dependencies changed.
stamp=".venv/.labsim-installed"
digest=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
  echo "setup: installing the Python packages into .venv (a minute or two the first time)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[course,docs,test]'
  echo "$digest" > "$stamp"
fi
echo "setup: ready (.venv/bin/labsim)"
