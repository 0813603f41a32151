"""What the checks look at: main.cf as Postfix reads it, when the server last read it, and what a verifying
STARTTLS client and a plaintext client see (through the one SMTP client, :mod:`labsim.smtpprobe`).

"Has the server loaded main.cf since its last change?" A real Postfix smtpd process reads main.cf when it
starts, so a new smtpd picks up a changed main.cf even without ``postfix reload`` (FACTS.md), while idle
smtpd processes started before the change keep serving the old settings until they exit. A probe that
happens to reach a fresh smtpd therefore proves nothing about a reload. What proves it on both backends is
the log: the master's last ``daemon started`` or ``reload`` line (its ``configuration`` is this lab's) is not
older than main.cf. The simulator writes the same lines, and it reads main.cf only at start and on reload.
Log lines carry whole seconds, so a reload in the same second as the change counts as after it.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from .. import certs, dates
from ..backends import postfix
from ..errors import LabError
from ..settings import Settings
from ..smtpprobe import Conn

PROBE_SENDER = "MAIL FROM:<check@example.org>"


def param(settings: Settings, name: str) -> str:
    """A main.cf parameter as Postfix reads it (defaults, ``$name`` expansion), through the one model of
    main.cf (labsim.maincf.model). Reading it in-process keeps a check fast: ``postconf`` takes about a
    second per call on a machine without DNS (it looks up the host name)."""
    from ..maincf import MainCf

    return MainCf.load(settings.config_dir).get(name).strip()


def configured_files(settings: Settings) -> tuple[str, str]:
    """(certificate file, key file) smtpd uses (``MainCf.server_tls_files``: chain files win when set)."""
    from ..maincf import MainCf

    files = MainCf.load(settings.config_dir).server_tls_files()
    return files.cert, files.key


_MASTER_LINE = re.compile(
    r"^(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ \S+/master\[\d+\]: "
    r"(?P<what>daemon started|reload) -- version \S+, configuration (?P<config>\S+)\s*$"
)


def _stamp(text: str, now: dt.datetime | None = None) -> float:
    """Epoch seconds of a syslog-style stamp (``Nov 24 19:43:10``, local time, no year)."""
    return dates.parse_log_stamp(text, now)


def last_load(settings: Settings, max_bytes: int = 4_000_000) -> tuple[float, str] | None:
    """When the lab's mail server last read main.cf: its last ``daemon started``/``reload`` log line."""
    lines = postfix.log_tail(settings, max_bytes).splitlines()
    want = str(settings.config_dir)
    for line in reversed(lines):
        m = _MASTER_LINE.match(line)
        if m and m.group("config").rstrip("/") == want:
            return _stamp(m.group("stamp")), m.group("what")
    return None


def main_cf_changed(settings: Settings) -> float:
    return (settings.config_dir / "main.cf").stat().st_mtime


def loaded_since_change(settings: Settings) -> bool:
    seen = last_load(settings)
    return seen is not None and seen[0] >= int(main_cf_changed(settings))


def wait_loaded(settings: Settings, timeout: float = 60.0) -> bool:
    """Wait until the server's log shows it read the current main.cf (a reload is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        if loaded_since_change(settings):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def wait_new_load(settings: Settings, offset: int, timeout: float = 60.0) -> bool:
    """Wait for a ``daemon started``/``reload`` line of this lab written after byte ``offset`` of the log:
    how a solve knows its reload or restart has happened (no whole-second ambiguity)."""
    want = str(settings.config_dir)
    deadline = time.monotonic() + timeout
    while True:
        for line in postfix.log_since(settings, offset).splitlines():
            m = _MASTER_LINE.match(line)
            if m and m.group("config").rstrip("/") == want:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@dataclass
class TLSProbe:
    """What a verifying STARTTLS client saw."""

    connected: bool = False
    offered: bool = False
    verified: bool = False
    error: str = ""
    presented: bytes = b""  # DER of the server's certificate (also when it did not verify)
    protocol: str = ""
    mail_reply: str = ""  # the reply to MAIL FROM inside TLS (when verified)


def tls_probe(settings: Settings, timeout: float = 15.0) -> TLSProbe:
    """EHLO, STARTTLS, verify chain and name (lab CA, lab domain); keep what the server presented."""
    out = TLSProbe()
    for verify in (True, False):
        try:
            with Conn(settings.host, settings.smtp_port, timeout) as c:
                out.connected = True
                ehlo = c.cmd("EHLO check.lab")
                out.offered = "STARTTLS" in ehlo
                if not out.offered:
                    return out
                tls = c.starttls(settings.domain, settings.lab_ca if verify else None, verify)
                out.presented = tls.getpeercert(binary_form=True) or b""
                out.protocol = tls.version() or ""
                if verify:
                    out.verified = True
                    c.cmd("EHLO check.lab")
                    out.mail_reply = c.cmd(PROBE_SENDER)
                    c.cmd("RSET")
                return out
        except ssl.SSLCertVerificationError as e:
            out.error = f"certificate verification failed: {e.verify_message}"
        except (OSError, ConnectionError, ssl.SSLError) as e:
            if not out.error:
                out.error = str(e) or type(e).__name__
            if not out.connected or not verify:
                return out
    return out


def plain_dialog(settings: Settings, timeout: float = 15.0) -> tuple[str, str]:
    """(EHLO reply, MAIL FROM reply) of a client that never starts TLS."""
    with Conn(settings.host, settings.smtp_port, timeout) as c:
        ehlo = c.cmd("EHLO check.lab")
        mail = c.cmd(PROBE_SENDER)
        c.cmd("RSET")
        return ehlo, mail


def _leaf_der(path: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return certs.load_chain(Path(path))[0].public_bytes(Encoding.DER)


def _describe_der(der: bytes, settings: Settings) -> str:
    from cryptography import x509

    if not der:
        return "no certificate"
    c = x509.load_der_x509_certificate(der)
    name = c.subject.rfc4514_string()
    try:
        if der == _leaf_der(str(settings.snakeoil_cert)):
            return f"the self-signed snakeoil certificate ({name})"
    except LabError:
        pass
    return f"{name}, issued by {c.issuer.rfc4514_string()}"
