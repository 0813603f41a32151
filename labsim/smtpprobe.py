"""Small, exact SMTP probes over a raw socket: what a verifying client sees, byte for byte.

smtplib hides the replies' text and checks the certificate against the address it connected to;
the lab connects to 127.0.0.1 but must verify the certificate for the lab domain, as a real MTA would
for its MX name. So these probes speak SMTP themselves (a few lines each).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path


class Conn:
    """One SMTP connection: send a line, read a (possibly multi-line) reply."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.banner = self.reply()

    def reply(self) -> str:
        """The next reply, its lines joined by newlines (``250-A\\n250 B``)."""
        lines = []
        while True:
            raw = self.file.readline(8192)
            if not raw:
                raise ConnectionError("connection closed by the server")
            line = raw.decode(errors="replace").rstrip("\r\n")
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def cmd(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def starttls(self, server_name: str, cafile: Path | None = None, verify: bool = True,
                 context: ssl.SSLContext | None = None) -> ssl.SSLSocket:
        r = self.cmd("STARTTLS")
        if not r.startswith("220"):
            raise ConnectionError(f"STARTTLS refused: {r}")
        return self.wrap_tls(server_name, cafile, verify, context)

    def wrap_tls(self, server_name: str, cafile: Path | None = None, verify: bool = True,
                 context: ssl.SSLContext | None = None) -> ssl.SSLSocket:
        """The TLS handshake, after a STARTTLS the caller sent and saw accepted (220). ``context``: the
        caller's own (e.g. one that offers only an old protocol version); ``cafile``/``verify`` are then unused."""
        ctx = context or ssl.create_default_context(cafile=str(cafile) if cafile else None)
        if not verify and context is None:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)
        self.file = self.sock.makefile("rb")
        return self.sock  # type: ignore[return-value]

    def close(self) -> None:
        try:
            self.cmd("QUIT")
        except (OSError, ConnectionError):
            pass
        self.sock.close()

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Handshake:
    ok: bool
    protocol: str = ""
    cipher: str = ""
    subject: str = ""
    issuer: str = ""
    error: str = ""
    ehlo_before: str = ""
    ehlo_after: str = ""
    notes: list[str] = field(default_factory=list)


def starttls_handshake(host: str, port: int, server_name: str, cafile: Path | None, verify: bool = True) -> Handshake:
    """EHLO, STARTTLS, a TLS handshake that verifies the chain (and the name), EHLO again.

    ``ok`` is False with ``error`` saying why when STARTTLS is not offered or refused, or when
    verification fails, as a client at ``smtp_tls_security_level = verify`` would refuse.
    """
    try:
        with Conn(host, port) as c:
            ehlo = c.cmd("EHLO probe.lab")
            if "STARTTLS" not in ehlo:
                return Handshake(False, error="the server does not offer STARTTLS", ehlo_before=ehlo)
            tls = c.starttls(server_name, cafile, verify)
            after = c.cmd("EHLO probe.lab")
            cert = tls.getpeercert() or {}
            cipher = tls.cipher()
            return Handshake(
                True,
                protocol=tls.version() or "",
                cipher=cipher[0] if cipher else "",
                subject=_name(cert.get("subject", ())),
                issuer=_name(cert.get("issuer", ())),
                ehlo_before=ehlo,
                ehlo_after=after,
            )
    except ssl.SSLCertVerificationError as e:
        return Handshake(False, error=f"certificate verification failed: {e.verify_message}")
    except (OSError, ConnectionError) as e:
        return Handshake(False, error=str(e))


def _name(rdns) -> str:
    return ", ".join(f"{k}={v}" for rdn in rdns for k, v in rdn)


def dialog(host: str, port: int, lines: list[str], timeout: float = 10.0) -> list[str]:
    """Send each line in turn (plaintext) and return [banner, reply1, reply2, ...]."""
    with Conn(host, port, timeout) as c:
        return [c.banner] + [c.cmd(line) for line in lines]
