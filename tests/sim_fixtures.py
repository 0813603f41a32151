"""Helpers for the simulator's tests: a scripted raw-socket SMTP client, lab homes, a running simulator.

The client controls every byte (pipelining, bare LFs, STARTTLS followed by plaintext) and records the
replies, so the same dialog can be played against the real Postfix and the simulator and compared.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from labsim.ports import free_ports
from labsim.settings import Settings

#: Marker step: do the TLS handshake if the last reply was 220 (STARTTLS accepted), else skip.
TLS = "<TLS>"


def read_reply(sock: socket.socket | ssl.SSLSocket, buf: bytearray, timeout: float = 5.0) -> str | None:
    """One complete (possibly multi-line) reply, or None at EOF/timeout."""
    sock.settimeout(timeout)
    while True:
        lines = bytes(buf).split(b"\r\n")
        for i, line in enumerate(lines[:-1]):
            if len(line) >= 4 and line[3:4] == b" " or len(line) == 3:
                reply = b"\r\n".join(lines[: i + 1])
                del buf[: len(reply) + 2]
                return reply.decode(errors="replace")
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
            return None
        if not chunk:
            return None
        buf.extend(chunk)


@dataclass
class Step:
    """Bytes to send and how many replies they should produce (None: read until quiet)."""

    data: bytes | str
    replies: int | None = 1


def step(data: bytes | str, replies: int | None = 1) -> Step:
    return Step(data, replies)


def _bytes(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode() + b"\r\n"


def play(port: int, steps: list[Step | str], quiet: float = 0.7) -> list[str]:
    """Run a dialog; returns the transcript: greeting, then ``> sent`` and ``< reply`` entries."""
    transcript: list[str] = []
    sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=5)
    buf = bytearray()
    try:
        transcript.append(f"< {read_reply(sock, buf)}")
        last = ""
        for s in steps:
            s = s if isinstance(s, Step) else Step(s)
            if s.data == TLS:
                if last.startswith("220"):
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    sock = ctx.wrap_socket(sock)
                    buf.clear()
                    transcript.append(f"[TLS {sock.version()} {sock.cipher()[0]}]")
                continue
            data = _bytes(s.data)
            transcript.append(f"> {data[:80]!r}")
            try:
                sock.sendall(data)
            except OSError:
                transcript.append("[closed]")  # the same as a close seen while reading: timing decides
                break
            if s.replies is None:
                while (reply := read_reply(sock, buf, timeout=quiet)) is not None:
                    transcript.append(f"< {reply}")
                    last = reply
                continue
            for _ in range(s.replies):
                reply = read_reply(sock, buf)
                transcript.append(f"< {reply}" if reply is not None else "[closed]")
                if reply is None:
                    return transcript
                last = reply
    finally:
        sock.close()
    return transcript


QUEUE_ID = re.compile(r"\b[0-9A-F]{8,12}\b")


def normalise(transcript: list[str]) -> list[str]:
    """Queue ids vary from run to run; nothing else may."""
    return [QUEUE_ID.sub("<QID>", line) for line in transcript]


def lab_home() -> Path:
    """A temporary lab home that the postfix user can pass through (mode 0711 on a 1777 /tmp)."""
    home = Path(tempfile.mkdtemp(prefix="labsim-sim-", dir="/tmp"))
    os.chmod(home, 0o711)
    return home


def new_settings() -> Settings:
    smtp, sub, mitm = free_ports(3)
    return Settings(home=lab_home(), smtp_port=smtp, submission_port=sub, mitm_port=mitm)


def remove_home(settings: Settings) -> None:
    shutil.rmtree(settings.home, ignore_errors=True)


def write_main_cf(settings: Settings, extra: str = "") -> None:
    """A main.cf like the lab's (for tests that do not need labsim.postfix.create_config)."""
    from labsim import certs

    settings.config_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    if not settings.snakeoil_cert.exists():
        settings.ssl_dir.mkdir(parents=True, exist_ok=True)
        certs.self_signed(settings.snakeoil_cert, settings.snakeoil_key, [settings.domain])
    (settings.config_dir / "main.cf").write_text(
        f"""smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
compatibility_level = 3.6
smtpd_tls_cert_file = {settings.snakeoil_cert}
smtpd_tls_key_file = {settings.snakeoil_key}
smtpd_tls_security_level = may
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
myhostname = {settings.domain}
mynetworks =
mydestination =
maillog_file = {settings.log_file}
virtual_mailbox_domains = $myhostname
virtual_mailbox_base = {settings.mail_dir}
virtual_mailbox_maps = static:student/
{extra}"""
    )


def wait_for_log(settings: Settings, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        try:
            text = settings.log_file.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        if needle in text:
            return text
        time.sleep(0.05)
    return text


@dataclass
class Counter:
    n: int = 0
    errors: list[str] = field(default_factory=list)


class Pair:
    """A real Postfix lab and a simulator lab, configured alike (needs root and the postfix package)."""

    def __init__(self) -> None:
        from labsim import certs
        from labsim import postfix as real
        from labsim.sim import control

        self.real = new_settings()
        self.sim = new_settings()
        for s in (self.real, self.sim):
            real.create_config(s)
            certs.self_signed(s.ssl_dir / "other.pem", s.ssl_dir / "other.key", ["other.example"])
        real.start(self.real)
        control.start(self.sim)
        self.current: dict[str, str] = {}

    def configure(self, **params: str) -> None:
        """Set parameters in both main.cf files (``{ssl}`` is each lab's ssl dir) and reload both."""
        from labsim import postfix as real
        from labsim.sim import control

        if all(self.current.get(k) == v for k, v in params.items()):
            return
        for s in (self.real, self.sim):
            args = [f"{k}={v.format(ssl=s.ssl_dir)}" for k, v in params.items()]
            real.postconf(s, "-e", *args, check=True)
        real.reload(self.real)
        control.reload(self.sim)
        self.current.update(params)
        time.sleep(1.2)  # Postfix's master restarts its smtpd processes; the simulator re-reads at once

    def restart(self, **params: str | None) -> None:
        """Set parameters (None removes one, postconf -X) and restart both: the way out of a fatal's throttle."""
        from labsim import postfix as real
        from labsim.sim import control

        for s in (self.real, self.sim):
            edits = [f"{k}={v.format(ssl=s.ssl_dir)}" for k, v in params.items() if v is not None]
            if edits:
                real.postconf(s, "-e", *edits, check=True)
            removed = [k for k, v in params.items() if v is None]
            if removed:
                real.postconf(s, "-X", *removed, check=True)
        real.stop(self.real)
        control.stop(self.sim)
        real.start(self.real)
        control.start(self.sim)
        self.current = {}

    def scenario(self, level: str, cert: str, **extra: str) -> None:
        cert_file, key_file = {
            "ok": ("{ssl}/ssl-cert-snakeoil.pem", "{ssl}/ssl-cert-snakeoil.key"),
            "missing": ("{ssl}/no-such-cert.pem", "{ssl}/ssl-cert-snakeoil.key"),
            "mismatch": ("{ssl}/ssl-cert-snakeoil.pem", "{ssl}/other.key"),
        }[cert]
        self.configure(smtpd_tls_security_level=level, smtpd_tls_cert_file=cert_file, smtpd_tls_key_file=key_file,
                       **extra)

    def both(self, dialog: list) -> tuple[list[str], list[str]]:
        return normalise(play(self.real.smtp_port, dialog)), normalise(play(self.sim.smtp_port, dialog))

    def close(self) -> None:
        from labsim import postfix as real
        from labsim.sim import control

        control.stop(self.sim)
        real.stop(self.real)
        remove_home(self.real)
        remove_home(self.sim)


def diff(name: str, want: list[str], got: list[str]) -> str:
    """Postfix's transcript beside the simulator's, differing lines marked."""
    lines = [f"dialog {name!r}: Postfix (left) vs simulator (right)"]
    for i in range(max(len(want), len(got))):
        a = want[i] if i < len(want) else "<none>"
        b = got[i] if i < len(got) else "<none>"
        lines.append(f"{'  ' if a == b else '!!'} {a!r:70} | {b!r}")
    return "\n".join(lines)
