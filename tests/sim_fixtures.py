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
