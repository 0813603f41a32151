"""DANE, really: the sending Postfix of :mod:`labsim.sender` at ``smtp_tls_security_level = dane``, with
``smtp_dns_support_level = dnssec``, resolving through the lab's validating resolver (:mod:`labsim.dns`).

Postfix's smtp(8) asks the C library's resolver, which reads ``/etc/resolv.conf`` and talks to port 53.
So the sending Postfix is started in a private mount namespace (``unshare -m``, propagation private)
where ``/etc/resolv.conf`` is a bind mount of the lab's own file naming the lab's resolver on
``127.53.x.y:53`` (a loopback address of this lab's own). The master and every process it forks stay in
that namespace; the system's ``/etc/resolv.conf`` is never changed and every other process still sees it.

The sender relays to ``[<lab domain>]:<port>`` (a name now, not ``[127.0.0.1]``: DANE needs a name
whose A record and ``_<port>._tcp`` TLSA record are DNSSEC-validated). Needs root (a real Postfix).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from . import dns, sender
from .backends import postfix
from .errors import LabError
from .ports import wait_listening
from .settings import Settings

LEVELS = ("may", "encrypt", "dane", "dane-only")


def _same_mount_ns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False


def resolv_conf_seen_by_sender(lab: Settings) -> str:
    """``/etc/resolv.conf`` as the running sending Postfix sees it (read through its master's root)."""
    pid = postfix.master_pid(sender.settings_for(lab))
    if pid is None:
        raise LabError("The sending Postfix is not running.", hint="labsim.dane.up(settings)")
    return Path(f"/proc/{pid}/root/etc/resolv.conf").read_text()


def configure(lab: Settings, level: str = "dane", *, target_port: int | None = None) -> None:
    """The client's level, DNSSEC-aware lookups, and the relay by name; reloads a running sender."""
    if level not in LEVELS:
        raise LabError(f"{level!r} is not a level this part of the lab uses.", hint=f"Use one of: {', '.join(LEVELS)}.")
    s = sender.settings_for(lab)
    port = target_port or lab.smtp_port
    sender.configure(lab, None, target_port=port)  # the sender's common settings (transport, CAfile, loglevel)
    params = [
        "smtp_dns_support_level=dnssec",
        f"smtp_tls_security_level={level}",
        f"relayhost=[{lab.domain}]:{port}",
        "smtp_host_lookup=dns",
        "inet_protocols=ipv4",
    ]
    names = [p.split("=", 1)[0] for p in params]
    now = postfix.postconf(s, "-h", *names).stdout.splitlines()
    if now == [p.split("=", 1)[1] for p in params]:
        return
    postfix.postconf(s, *params, check=True)
    if postfix.is_running(s):
        postfix.reload(s)


def start(lab: Settings) -> None:
    """Start the sending Postfix in its private mount namespace (restart it there if it runs outside)."""
    postfix.require_installed()
    postfix.require_root()
    s = sender.settings_for(lab)
    pid = postfix.master_pid(s)
    if pid is not None:
        if not _same_mount_ns(pid):
            return  # already in a namespace of its own
        postfix.stop(s)
    resolv = dns.resolv_conf(lab)
    postfix.check_home_reachable(s)
    proc = postfix._postfix(s, "post-install", "create-missing")
    if proc.returncode != 0:
        raise LabError("Postfix could not create the sender's directories.", detail=proc.stderr)
    pf = postfix.find("postfix") or "postfix"
    script = 'mount --bind "$1" /etc/resolv.conf && exec "$2" -c "$3" start'
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           str(resolv), pf, str(s.config_dir)],
                          capture_output=True, text=True, env={**os.environ, "MAIL_CONFIG": str(s.config_dir)},
                          timeout=60)
    if proc.returncode != 0 or not wait_listening(s.smtp_port, s.host, timeout=15):
        raise LabError("The sending Postfix did not start in its private mount namespace.",
                       detail=(proc.stderr + proc.stdout).strip(),
                       hint="It needs root and util-linux's unshare; read labsim.sender.log(settings).")


def up(lab: Settings, level: str = "dane", *, target_port: int | None = None) -> Settings:
    """Create (first time), configure and start the DANE-capable sender. The lab DNS must be up
    (:func:`labsim.dns.up`)."""
    if not dns.is_running(lab):
        raise LabError("The lab's DNS (the signed zone and the validating resolver) is not running.",
                       hint="labsim.dns.up(settings) first: the sender resolves through it.")
    s = sender.settings_for(lab)
    if postfix.create_config(s):
        s.run_dir.mkdir(parents=True, exist_ok=True)
        (s.run_dir / "sender.json").write_text(json.dumps({"smtp_port": s.smtp_port}))
    configure(lab, level, target_port=target_port)
    start(lab)
    return s


def down(lab: Settings) -> None:
    """Stop the sender (``labsim down`` does it too, through :func:`labsim.sender.down`)."""
    sender.down(lab)


def send_and_wait(lab: Settings, subject: str, body: str, timeout: float = 30.0) -> sender.Delivery:
    """Hand a message to the sender and wait for its first delivery attempt."""
    mid = sender.send(lab, subject=subject, body=body)
    return sender.wait_delivery(lab, mid, timeout=timeout)


def tls_lines_since(lab: Settings, offset: int) -> list[str]:
    """The sender's smtp log lines about TLS and DANE written after ``offset`` (bytes)."""
    text = postfix.log_since(sender.settings_for(lab), offset)
    return [ln for ln in text.splitlines() if "postfix/smtp[" in ln and
            ("TLS" in ln or "TLSA" in ln or "certificate" in ln or "DNSSEC" in ln or "dane" in ln.lower())]


def log_mark(lab: Settings) -> int:
    return postfix.log_size(sender.settings_for(lab))


# --- for notebook 06: the cells that need the sending Postfix ---------------------------------------------

PART_BEGIN = "--- the sending Postfix's part (needs root) ---"
PART_END = "--- end of the sending Postfix's part ---"


def can_run() -> bool:
    """A real sending Postfix can run here: root and Debian's postfix package (on either lab backend)."""
    return postfix.installed() and os.geteuid() == 0


def part(fn, needs: str = "a real sending Postfix needs root (and the postfix package)") -> None:
    """Run a notebook cell's sending-Postfix part between two marker lines, or say why it does not run.
    Without root the sending Postfix cannot start; the DNS side of the notebook still runs. What ``fn``
    prints is printed at once at the end (one output block, whatever happens). ``needs``: what the "Not run"
    line says the part needs (notebook 08's policy server: port 443)."""
    import contextlib
    import io

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            if can_run():
                fn()
            else:
                print(f"Not run: {needs}. The DNS cells of this notebook run without it; the course site "
                      "shows what this cell prints as root.")
    finally:
        print(f"{PART_BEGIN}\n{buf.getvalue()}{PART_END}")
