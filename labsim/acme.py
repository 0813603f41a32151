"""Let's Encrypt, really, offline: pebble as the lab's ACME CA and pebble-challtestsrv as its DNS.

pebble is Let's Encrypt's own small ACME test server (Debian package ``pebble``). The mock DNS answers
127.0.0.1 for every name, so the lesson's domain (``lab.itpro.tv``) points at this machine, pebble's
http-01 validation reaches certbot's ``--standalone`` web server on the lab's http-01 port, and the
lesson's certbot command issues a real certificate without the internet.

pebble makes a new root every time it starts; the lab keeps every root it has seen in
``settings.lab_ca`` so certificates issued before a restart still verify.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import certs
from .errors import LabError, MissingPackageError
from .procs import alive, read_pidfile, write_pidfile
from .ports import require_free, wait_listening
from .settings import Settings


def installed() -> bool:
    return all(shutil.which(c) for c in ("pebble", "pebble-challtestsrv", "certbot"))


def require_installed() -> None:
    missing = [p for p, c in (("pebble", "pebble"), ("pebble", "pebble-challtestsrv"), ("certbot", "certbot"))
               if not shutil.which(c)]
    if missing:
        pkgs = " ".join(sorted(set(missing)))
        raise MissingPackageError(
            f"The lab's Let's Encrypt CA needs the Debian package(s): {pkgs}.",
            hint=f"As root: apt-get install -y {pkgs}   (or run `make lab`, which installs everything).",
        )


# --- processes ---------------------------------------------------------------------------------------

def _pidfile(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def pid(settings: Settings, name: str) -> int | None:
    """The running pebble or challtestsrv of this lab, checked against the start time and command line
    recorded in its pid file (a stale file after a reboot must not make ``stop`` signal a stranger)."""
    return read_pidfile(_pidfile(settings, name), expect="pebble")



def _spawn(settings: Settings, name: str, cmd: list[str], env: dict[str, str] | None = None) -> int:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.acme_dir.mkdir(parents=True, exist_ok=True)
    log = open(settings.acme_dir / f"{name}.log", "ab")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, env={**os.environ, **(env or {})}, cwd=settings.acme_dir,
    )
    log.close()
    write_pidfile(_pidfile(settings, name), proc.pid)
    return proc.pid


def is_running(settings: Settings) -> bool:
    return pid(settings, "pebble") is not None and pid(settings, "challtestsrv") is not None


def _write_config(settings: Settings) -> Path:
    s = settings
    s.acme_dir.mkdir(parents=True, exist_ok=True)
    key = s.acme_dir / "endpoint.key"
    if not s.acme_endpoint_cert.exists() or not key.exists():
        certs.self_signed(s.acme_endpoint_cert, key, [s.host, "localhost"], ca=True)
    conf = {
        "pebble": {
            "listenAddress": f"{s.host}:{s.acme_port}",
            "managementListenAddress": f"{s.host}:{s.acme_mgmt_port}",
            "certificate": str(s.acme_endpoint_cert),
            "privateKey": str(key),
            "httpPort": s.http01_port,
            "tlsPort": s.tlsalpn01_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    path = s.acme_dir / "pebble-config.json"
    path.write_text(json.dumps(conf, indent=2))
    return path


def start(settings: Settings) -> None:
    """Start the mock DNS and pebble on loopback, then save pebble's root into the lab CA file."""
    require_installed()
    s = settings
    if is_running(s):
        return
    stop(s)
    for port, var, what in (
        (s.acme_port, "LABSIM_ACME_PORT", "pebble's ACME directory"),
        (s.acme_mgmt_port, "LABSIM_ACME_MGMT_PORT", "pebble's management API"),
        (s.dns_mgmt_port, "LABSIM_DNS_MGMT_PORT", "the mock DNS's management API"),
    ):
        require_free(port, var, what, s.host)
    config = _write_config(s)
    # pebble keeps its accounts in memory: a new pebble does not know the account certbot registered
    # with the last one (certbot 2.1 then fails with a confusing "can't set attribute"). Forget it.
    shutil.rmtree(s.letsencrypt_dir / "accounts", ignore_errors=True)
    _spawn(s, "challtestsrv", [
        "pebble-challtestsrv", "-defaultIPv4", s.host, "-defaultIPv6", "",
        "-dns01", f"{s.host}:{s.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
        "-management", f"{s.host}:{s.dns_mgmt_port}",
    ])
    _spawn(s, "pebble", ["pebble", "-config", str(config), "-dnsserver", f"{s.host}:{s.dns_port}"], env={
        "PEBBLE_VA_NOSLEEP": "1",  # validate at once instead of after a random pause
        "PEBBLE_WFE_NONCEREJECT": "0",  # do not reject 5% of good nonces (a test of client retries)
    })
    ok = wait_listening(s.acme_port, s.host, 10) and wait_listening(s.dns_mgmt_port, s.host, 10)
    if not ok or not is_running(s):
        detail = "\n".join(_tail(s.acme_dir / f"{n}.log") for n in ("pebble", "challtestsrv"))
        stop(s)
        raise LabError("The lab's ACME CA (pebble) did not start.", detail=detail,
                       hint=f"See {s.acme_dir}/pebble.log; a port may be taken (labsim doctor).")
    save_root(s)


def stop(settings: Settings) -> None:
    for name in ("pebble", "challtestsrv"):
        running = pid(settings, name)
        if running:
            try:
                os.killpg(running, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(100):
                if not alive(running):  # the process itself, not the pid file: an exiting process may
                    break               # no longer show its command line while it still holds its ports
                try:  # reap if it is our child
                    os.waitpid(running, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            else:
                try:
                    os.killpg(running, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _pidfile(settings, name).unlink(missing_ok=True)


def _tail(path: Path, n: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return ""


def _get(settings: Settings, path: str) -> str:
    ctx = ssl.create_default_context(cafile=str(settings.acme_endpoint_cert))
    url = f"https://{settings.host}:{settings.acme_mgmt_port}{path}"
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return r.read().decode()


def save_root(settings: Settings) -> str:
    """Fetch the root of pebble's issuing chain and add it to the lab CA file (kept across restarts)."""
    root = _get(settings, "/roots/0").strip() + "\n"
    existing = settings.lab_ca.read_text() if settings.lab_ca.exists() else ""
    if root not in existing:
        settings.lab_ca.write_text(existing + root)
    return root


# --- certbot ------------------------------------------------------------------------------------------

#: What the lab adds to the learner's certbot arguments: only what points certbot at the lab.
def lab_arguments(settings: Settings, args: list[str]) -> list[str]:
    s = settings
    extra = [
        "--server", s.acme_directory_url,
        "--http-01-port", str(s.http01_port),
        "--http-01-address", s.host,
        "--config-dir", str(s.letsencrypt_dir),
        "--work-dir", str(s.home / "letsencrypt-work"),
        "--logs-dir", str(s.home / "letsencrypt-logs"),
    ]
    if not any(a in args for a in ("-m", "--email", "--register-unsafely-without-email")) and not any(
        a.startswith("--email=") for a in args
    ):
        extra.append("--register-unsafely-without-email")
    if not any(a in args for a in ("-n", "--non-interactive", "--noninteractive")):
        extra.append("--non-interactive")
    return extra


def certbot(settings: Settings, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real certbot with the learner's arguments, aimed at the lab CA.

    On failure raises LabError quoting the CA's own detail (certbot's "Detail:" lines).
    """
    require_installed()
    if not args:
        raise LabError("certbot needs arguments.", hint="The lesson's command: labsim certbot certonly --standalone "
                       "--rsa-key-size 4096 --agree-tos --preferred-challenges http -d lab.itpro.tv")
    if args[0] in ("certonly", "run", "renew", "certificates", "revoke", "delete") or args[0].startswith("-"):
        if not is_running(settings):
            raise LabError("The lab's Let's Encrypt CA is not running.", hint="Start the lab first: labsim up")
    if any(a in args for a in ("--standalone",)) or (args and args[0] in ("certonly", "renew")):
        require_free(settings.http01_port, "LABSIM_HTTP01_PORT", "certbot's http-01 web server", settings.host)
    cmd = [shutil.which("certbot") or "certbot", *args, *lab_arguments(settings, args)]
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(settings.acme_endpoint_cert)}
    log = settings.home / "letsencrypt-logs" / "letsencrypt.log"
    mark = log.stat().st_size if log.exists() else 0
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        out = proc.stdout + proc.stderr
        detail = [ln.strip() for ln in out.splitlines()
                  if any(k in ln for k in ("Detail:", "Error", "error:", "Type:", "Domain:"))]
        ca = _ca_errors(log, mark)
        if ca:  # certbot 2.1 hides some CA errors behind "AttributeError: can't set attribute"
            detail = [d for d in detail if "AttributeError" not in d] + ca
        raise LabError(
            f"certbot failed (exit {proc.returncode}).",
            detail="\n".join(detail) or out.strip()[-2000:],
            hint=f"The CA's own words are above; certbot's full log: {settings.home / 'letsencrypt-logs'}/letsencrypt.log",
        )
    return proc


def _ca_errors(log: Path, offset: int) -> list[str]:
    """The ACME errors (RFC 8555 problem documents) certbot logged since offset: the CA's own words."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    found = []
    for ln in lines:
        if "urn:ietf:params:acme:error" in ln:
            text = ln[ln.index("urn:ietf"):].strip().rstrip('",')
            if text not in found:
                found.append(text)
    return [f"CA: {t}" for t in found[-3:]]


def issued(settings: Settings, domain: str | None = None) -> bool:
    live = settings.live_dir(domain)
    return (live / "fullchain.pem").exists() and (live / "privkey.pem").exists()


def main() -> None:  # pragma: no cover - debugging aid: python -m labsim.acme
    s = Settings.from_env()
    start(s)
    print(f"pebble up: {s.acme_directory_url}, lab CA {s.lab_ca}", file=sys.stderr)
