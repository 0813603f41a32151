"""The sending Postfix's work-alike, for a learner without root: an SMTP client that follows
``smtp_tls_security_level`` as Postfix 3.7's smtp(8) does and writes the same log lines.

A real sending Postfix (:mod:`labsim.sender`) needs root: its master process switches users. Without
root, :mod:`labsim.sender` hands its work to this module, which keeps the same files: the sender's
``main.cf`` (read through the one model of main.cf, :mod:`labsim.maincf.model`), its ``maillog_file``
and a queue of its own under ``<sender home>/spool/labsim-client``. What it does, from smtp_proto.c and
checked against the real sending Postfix by ``tests/test_nonroot_sender.py``:

- ``none``: never STARTTLS. ``may``: STARTTLS when offered; a refused STARTTLS goes on in clear; a failed
  handshake retries the same server in clear. ``encrypt``: no STARTTLS offered defers the mail
  (``dsn=4.7.4, status=deferred (TLS is required, but was not offered by host H[A])``), a refused one
  defers with the server's reply. ``verify`` and ``secure``: also the certificate must verify (chain
  against ``smtp_tls_CAfile``/``smtp_tls_CApath``, by OpenSSL's own ``openssl verify``, and the name of
  the next hop), or ``dsn=4.7.5, status=deferred (Server certificate not verified)``.
- A 5xx reply bounces the mail (``host H[A] said: 530 5.7.0 ... (in reply to MAIL FROM command)``), a 4xx
  defers it; a refused connection defers it with ``relay=none``.
- ``smtp_tls_loglevel >= 1``: ``Trusted|Untrusted TLS connection established to H[A]:P: TLSv1.3 with
  cipher ...``. The key-exchange group is written as ``X25519``: the group OpenSSL 3 offers first, and
  what the lab's servers agree on; Python 3.11 cannot read the negotiated group.

What it does not do: no daemon. ``send`` delivers at once and ``flush`` retries the deferred mail at once;
nothing retries by itself later (Postfix's queue manager would, after ``queue_run_delay``), and a bounce
is logged but no non-delivery notification is written.
"""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import _ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import dates
from .errors import LabError
from .settings import Settings
from .smtpprobe import Conn

LEVELS = ("none", "may", "encrypt", "verify", "secure")
TIMEOUT = 30.0  # seconds per reply; Postfix's own timeouts are longer (smtp_helo_timeout = 300s)


def queue_dir(s: Settings) -> Path:
    return s.queue_dir / "labsim-client"


def _param(s: Settings, name: str) -> str:
    from .maincf import MainCf

    return MainCf.load(s.config_dir).get(name).strip()


def _queue_id() -> str:
    """A short Postfix queue id: microseconds (5 hex digits), then a number standing for the inode."""
    return f"{time.time_ns() // 1000 % 1_000_000:05X}{random.getrandbits(24):06X}"


def _log(s: Settings, daemon: str, text: str) -> None:
    host = (_param(s, "myhostname") or "localhost").split(".")[0]
    s.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(s.log_file, "a", encoding="utf-8") as f:
        f.write(f"{dates.maillog_stamp()} {host} postfix/{daemon}[{os.getpid()}]: {text}\n")


# --- the queue --------------------------------------------------------------------------------------

@dataclass
class Item:
    """A queued message (one recipient, as the lab sends them) and why it waits."""

    queue_id: str
    sender: str
    recipient: str
    arrival: float
    size: int
    reason: str = ""


def _items(s: Settings) -> list[Item]:
    out = []
    d = queue_dir(s)
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            j = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        out.append(Item(j["queue_id"], j["sender"], j["recipient"], j["arrival"], j["size"], j.get("reason", "")))
    return sorted(out, key=lambda i: i.arrival)


def _save(s: Settings, item: Item) -> None:
    d = queue_dir(s)
    tmp = d / f".{item.queue_id}.json"
    tmp.write_text(json.dumps({"queue_id": item.queue_id, "sender": item.sender, "recipient": item.recipient,
                               "arrival": item.arrival, "size": item.size, "reason": item.reason}))
    tmp.replace(d / f"{item.queue_id}.json")


def _remove(s: Settings, queue_id: str) -> None:
    for suffix in (".json", ".eml"):
        (queue_dir(s) / f"{queue_id}{suffix}").unlink(missing_ok=True)


def submit(s: Settings, message: bytes, sender: str, recipient: str) -> str:
    """What sendmail, pickup, cleanup and qmgr do: queue the message (with Postfix's Received: line), log it
    as they do, and deliver it at once. Returns the queue id."""
    d = queue_dir(s)
    d.mkdir(parents=True, exist_ok=True)
    qid = _queue_id()
    now = time.time()
    myhostname = _param(s, "myhostname") or "localhost"
    received = (f"Received: by {myhostname} (Postfix, from userid {os.getuid()})\r\n"
                f"\tid {qid}; {dates.header_date(now)}\r\n").encode()
    body = received + message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    (d / f"{qid}.eml").write_bytes(body)
    mid = ""
    for line in message.decode(errors="replace").splitlines():
        if not line.strip():
            break
        if line.lower().startswith("message-id:"):
            mid = line.split(":", 1)[1].strip()
    _log(s, "pickup", f"{qid}: uid={os.getuid()} from=<{sender}>")
    if mid:
        _log(s, "cleanup", f"{qid}: message-id={mid}")
    item = Item(qid, sender, recipient, now, len(body))
    _save(s, item)
    _log(s, "qmgr", f"{qid}: from=<{sender}>, size={item.size}, nrcpt=1 (queue active)")
    deliver(s, item)
    return qid


def flush(s: Settings) -> None:
    """``postqueue -f``: try every queued message again, now."""
    for item in _items(s):
        _log(s, "qmgr", f"{item.queue_id}: from=<{item.sender}>, size={item.size}, nrcpt=1 (queue active)")
        deliver(s, item)


def clear(s: Settings) -> int:
    """``postsuper -d ALL``."""
    items = _items(s)
    for item in items:
        _remove(s, item.queue_id)
    if items:
        _log(s, "postsuper", f"Deleted: {len(items)} message{'s' if len(items) != 1 else ''}")
    return len(items)


def queue_json(s: Settings) -> list[dict]:
    """``postqueue -j``: one object a message."""
    return [{"queue_name": "deferred", "queue_id": i.queue_id, "arrival_time": int(i.arrival),
             "message_size": i.size, "sender": i.sender,
             "recipients": [{"address": i.recipient, "delay_reason": i.reason}]} for i in _items(s)]


def queue_text(s: Settings) -> str:
    """``postqueue -p`` (``mailq``), laid out as Postfix 3.7 does."""
    items = _items(s)
    if not items:
        return "Mail queue is empty\n"
    out = ["-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------"]
    for i in items:
        arrival = f"{dates.header_date(i.arrival)[:3]} {dates.anvil_stamp(i.arrival)}"
        out.append(f"{i.queue_id:<11s} {i.size:7d} {arrival}  {i.sender}")
        if i.reason:
            reason = f"({i.reason})"
            out.append(" " * max(0, 78 - len(reason)) + reason)
        out.append(" " * 41 + i.recipient)
        out.append("")
    kbytes = sum(i.size for i in items) // 1024
    out.append(f"-- {kbytes} Kbytes in {len(items)} Request{'s' if len(items) != 1 else ''}.")
    return "\n".join(out) + "\n"


# --- one delivery attempt ---------------------------------------------------------------------------

class _Fail(Exception):
    """The end of an attempt that did not send: ``dsn``, the reason, and the relay it got to."""

    def __init__(self, dsn: str, reason: str, relay: str) -> None:
        super().__init__(reason)
        self.dsn, self.reason, self.relay = dsn, reason, relay


def _relayhost(s: Settings) -> tuple[str, int]:
    value = _param(s, "relayhost")
    if not value:
        raise LabError("The sender has no relayhost.", hint="labsim.sender.configure(lab, target_port=...)")
    host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "25")
    return host.strip("[]"), int(port or 25)


def _dsn(reply: str) -> str:
    parts = reply.split()
    if len(parts) > 1 and parts[1].count(".") == 2 and parts[1][0] in "245":
        return parts[1]
    return f"{reply[:1]}.0.0"


def _flat(reply: str) -> str:
    """A multi-line reply on one line, as Postfix logs it."""
    return " ".join(reply.splitlines())


def _fmt_delay(x: float) -> str:
    if x < 0.005:
        return "0"
    return f"{x:.2f}".rstrip("0").rstrip(".") if x < 10 else f"{x:.0f}"


def deliver(s: Settings, item: Item) -> str:
    """One delivery attempt of a queued message: sent (removed), deferred (kept) or bounced (removed)."""
    level = _param(s, "smtp_tls_security_level") or "none"
    host, port = _relayhost(s)
    namaddr = f"{host}[{host}]"
    t0 = time.time()
    timing: dict[str, float] = {}
    try:
        reason = _attempt(s, item, level, host, port, timing)
        status, dsn, relay = "sent", "2.0.0", f"{namaddr}:{port}"
    except _Fail as f:
        dsn, reason, relay = f.dsn, f.reason, f.relay
        status = "bounced" if dsn.startswith("5") else "deferred"
    now = time.time()
    # delays=a/b/c/d: before the queue manager, in it, connection setup (greeting, EHLO, TLS), transmission.
    setup = timing.get("setup", now) - t0
    delays = "/".join(_fmt_delay(x) for x in (max(0.0, t0 - item.arrival), 0.0, setup, now - t0 - setup))
    _log(s, "smtp", f"{item.queue_id}: to=<{item.recipient}>, relay={relay}, delay={_fmt_delay(now - item.arrival)}, "
                    f"delays={delays}, dsn={dsn}, status={status} ({reason})")
    if status == "deferred":
        item.reason = reason
        _save(s, item)
    else:
        if status == "bounced":
            _log(s, "bounce", f"{item.queue_id}: sender non-delivery notification: not written by the lab's "
                              "work-alike")
        _remove(s, item.queue_id)
        _log(s, "qmgr", f"{item.queue_id}: removed")
    return status


def _attempt(s: Settings, item: Item, level: str, host: str, port: int, timing: dict[str, float],
             plaintext: bool = False) -> str:
    namaddr = f"{host}[{host}]"
    relay = f"{namaddr}:{port}"
    helo = _param(s, "smtp_helo_name") or _param(s, "myhostname") or "localhost"
    try:
        c = Conn(host, port, TIMEOUT)
    except ConnectionRefusedError:
        _log(s, "smtp", f"connect to {relay}: Connection refused")
        raise _Fail("4.4.1", f"connect to {relay}: Connection refused", "none") from None
    except OSError as e:
        raise _Fail("4.4.1", f"connect to {relay}: {e.strerror or e}", "none") from None
    except ConnectionError:
        raise _Fail("4.4.2", f"lost connection with {namaddr} while receiving the initial server greeting",
                    relay) from None
    try:
        stage = "initial server greeting"
        if not c.banner.startswith("2"):
            raise _server_said(namaddr, c.banner, "initial greeting", relay)
        stage = "receiving the EHLO response"
        ehlo = c.cmd(f"EHLO {helo}")
        if not ehlo.startswith("2"):
            raise _server_said(namaddr, ehlo, "EHLO", relay)
        features = {ln[4:].split()[0].upper() for ln in ehlo.splitlines()[1:] if len(ln) > 4}
        want_tls = level != "none" and not plaintext
        if want_tls and "STARTTLS" in features:
            r = c.cmd("STARTTLS")
            if r.startswith("2"):
                try:
                    trusted, matched = _handshake(s, c, level, host, port)
                except (ssl.SSLError, OSError, ConnectionError):
                    if level == "may":
                        c.sock.close()
                        return _attempt(s, item, level, host, port, timing, plaintext=True)
                    raise _Fail("4.7.5", "Cannot start TLS: handshake failure", relay) from None
                if level in ("verify", "secure") and not (trusted and matched):
                    c.close()
                    raise _Fail("4.7.5", "Server certificate not verified", relay)
                ehlo = c.cmd(f"EHLO {helo}")
                features = {ln[4:].split()[0].upper() for ln in ehlo.splitlines()[1:] if len(ln) > 4}
            elif level != "may":
                c.close()
                raise _Fail(_dsn(r), f"TLS is required, but host {namaddr} refused to start TLS: {_flat(r)}", relay)
        elif want_tls and level != "may":
            c.close()
            raise _Fail("4.7.4", f"TLS is required, but was not offered by host {namaddr}", relay)
        timing["setup"] = time.time()
        message = (queue_dir(s) / f"{item.queue_id}.eml").read_bytes()
        size = f" SIZE={len(message)}" if "SIZE" in features else ""
        stage = "MAIL FROM"
        r = c.cmd(f"MAIL FROM:<{item.sender}>{size}")
        if not r.startswith("2"):
            raise _server_said(namaddr, r, "MAIL FROM", relay, c)
        r = c.cmd(f"RCPT TO:<{item.recipient}>")
        if not r.startswith("2"):
            raise _server_said(namaddr, r, "RCPT TO", relay, c)
        r = c.cmd("DATA")
        if not r.startswith("3"):
            raise _server_said(namaddr, r, "DATA", relay, c)
        stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) for ln in message.splitlines(keepends=True))
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        c.sock.sendall(stuffed + b".\r\n")
        r = c.reply()
        if not r.startswith("2"):
            raise _server_said(namaddr, r, "end of DATA", relay, c)
        c.close()
        return _flat(r)
    except (socket.timeout, TimeoutError):
        c.sock.close()
        raise _Fail("4.4.2", f"conversation with {namaddr} timed out while {stage}", relay) from None
    except ConnectionError:
        c.sock.close()
        raise _Fail("4.4.2", f"lost connection with {namaddr} while {stage}", relay) from None


def _server_said(namaddr: str, reply: str, command: str, relay: str, conn: Conn | None = None) -> _Fail:
    if conn is not None:
        conn.close()
    where = "in reply to initial greeting" if command == "initial greeting" else f"in reply to {command} command"
    return _Fail(_dsn(reply), f"host {namaddr} said: {_flat(reply)} ({where})", relay)


# --- TLS ----------------------------------------------------------------------------------------------

def _handshake(s: Settings, c: Conn, level: str, host: str, port: int) -> tuple[bool, bool]:
    """The TLS handshake, completed whatever the certificate (as Postfix's tls_client_start does), then
    the verdicts: chain trusted? name matched? Logs what Postfix logs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(c.sock, server_hostname=None)
    c.sock, c.file = tls, tls.makefile("rb")
    relay = f"{host}[{host}]:{port}"
    # The private method Python 3.11 has for the chain the server sent (public from 3.13 on);
    # tests/test_nonroot_sender.py guards it.
    chain = [cert.public_bytes(_ssl.ENCODING_PEM).encode()
             for cert in tls._sslobj.get_unverified_chain() or []]  # type: ignore[union-attr]
    err = _openssl_verify(s, chain)
    trusted = err is None
    matched = True
    if level in ("verify", "secure"):
        if not trusted:
            _log(s, "smtp", f"certificate verification failed for {relay}: {err[1]}")  # type: ignore[index]
        else:
            name_err = _openssl_verify(s, chain, name=host, ip=level == "verify" and _is_ip(host))
            if name_err is not None:
                matched = False
                trusted = False
                _log(s, "smtp", f"server certificate verification failed for {relay}: num={name_err[0]}:{name_err[1]}")
    try:
        loglevel = int(_param(s, "smtp_tls_loglevel") or "0")
    except ValueError:
        loglevel = 0
    if loglevel >= 1:
        kind = ("Verified" if level in ("verify", "secure") else "Trusted") if trusted and matched else "Untrusted"
        _log(s, "smtp", f"{kind} TLS connection established to {relay}: {_summary(tls)}")
    return trusted, matched


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False


def _summary(tls: ssl.SSLSocket) -> str:
    """``TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature
    RSA-PSS (4096 bits) server-digest SHA256``, as Postfix's tls_log_summary() writes it."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    name, proto, bits = tls.cipher() or ("", tls.version() or "", 0)
    text = f"{tls.version()} with cipher {name} ({bits}/{bits} bits) key-exchange X25519"
    der = tls.getpeercert(binary_form=True)
    if der:
        pub = x509.load_der_x509_certificate(der).public_key()
        if isinstance(pub, rsa.RSAPublicKey):
            sig = f"RSA-PSS ({pub.key_size} bits)" if tls.version() == "TLSv1.3" else f"RSA ({pub.key_size} bits)"
            digest = "SHA256"
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            # OpenSSL's short name of the curve, as Postfix logs it: "ECDSA (prime256v1)" (parity-tested).
            sig = f"ECDSA ({ {'secp256r1': 'prime256v1'}.get(pub.curve.name, pub.curve.name)})"
            digest = {"secp384r1": "SHA384", "secp521r1": "SHA512"}.get(pub.curve.name, "SHA256")
        else:
            sig, digest = type(pub).__name__, "SHA256"
        text += f" server-signature {sig} server-digest {digest}"
    return text


def _openssl_verify(s: Settings, chain: list[bytes], name: str | None = None,
                    ip: bool = False) -> tuple[int, str] | None:
    """OpenSSL's verdict on the server's chain (and name): None when it verifies, else (error number,
    OpenSSL's text), e.g. ``(18, 'self-signed certificate')``, ``(64, 'IP address mismatch')``."""
    if not chain:
        return (20, "unable to get local issuer certificate")
    cafile, capath = _param(s, "smtp_tls_CAfile"), _param(s, "smtp_tls_CApath")
    with tempfile.TemporaryDirectory(prefix="labsim-verify-") as tmp:
        leaf, rest = Path(tmp) / "leaf.pem", Path(tmp) / "chain.pem"
        leaf.write_bytes(chain[0])
        rest.write_bytes(b"".join(chain[1:]))
        cmd = ["openssl", "verify", "-purpose", "sslserver"]
        cmd += ["-CAfile", cafile] if cafile and Path(cafile).exists() else ["-no-CAfile"]
        cmd += ["-CApath", capath] if capath and Path(capath).is_dir() else ["-no-CApath"]
        if len(chain) > 1:
            cmd += ["-untrusted", str(rest)]
        if name:
            cmd += ["-verify_ip" if ip else "-verify_hostname", name]
        proc = subprocess.run([*cmd, str(leaf)], capture_output=True, text=True, timeout=30)
    if proc.returncode == 0:
        return None
    import re

    m = re.search(r"error (\d+) at \d+ depth lookup: (.+)", proc.stdout + proc.stderr)
    if not m:
        return (0, (proc.stderr or proc.stdout).strip().splitlines()[-1] if (proc.stderr or proc.stdout) else "?")
    return int(m.group(1)), m.group(2).strip()
