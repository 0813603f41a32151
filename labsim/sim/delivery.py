"""Where a recipient's mail goes and how it lands, as cleanup(8) and virtual(8) would do it for the lab.

- ``route``: the address class of a recipient (virtual mailbox domain, local, relay, or refused);
- ``queue_id``: a Postfix-looking short queue id (``1EAC420C0E1``);
- ``compose``: the delivered message: ``Return-Path``, ``X-Original-To``, ``Delivered-To``, Postfix's
  ``Received:`` header (with the TLS protocol and cipher when ``smtpd_tls_received_header = yes``), then
  the client's text with ``Message-Id``, ``Date`` and ``From`` added when missing, LF line ends;
- ``deliver``: a Maildir file written through ``tmp/`` and renamed into ``new/``.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from labsim.dates import header_date

from .simconfig import SimConfig


#: (index, count) of this simulator worker process among its siblings: set in each by ``labsim.sim.app``.
WORKER = (0, 1)
_SERIAL = itertools.count(random.randrange(1 << 24))


def queue_id() -> str:
    """Postfix's short queue id shape: 5 hex digits of microseconds, then a hex inode-like number.

    The number is this process's serial times the worker count plus its index, so no two ids of a lab's
    workers meet (Postfix's is the queue file's inode, unique while the message is queued)."""
    usec = int((time.time() % 1) * 1_000_000) & 0xFFFFF
    index, count = WORKER
    span = 0xEFFFFF // count * count
    return f"{usec:05X}{0x100000 + (next(_SERIAL) * count + index) % span:X}"


def canonical(address: str, conf: SimConfig) -> str:
    """``user`` becomes ``user@$myorigin`` (append_at_myorigin); a trailing dot on the domain goes."""
    if "@" not in address:
        return f"{address}@{conf.myorigin}" if conf.append_at_myorigin and address else address
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.rstrip('.')}"


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def route(address: str, conf: SimConfig) -> str:
    """``virtual``, ``local``, ``relay`` (a relay_domains destination) or ``foreign``."""
    domain = domain_of(address)
    if domain in conf.virtual_domains:
        return "virtual"
    if domain in conf.mydestination:
        return "local"
    if domain in conf.relay_domains:
        return "relay"
    return "foreign"


def _lookup(table: str, key_candidates: list[str]) -> str | None:
    kind, _, arg = table.partition(":")
    if kind == "static":
        return arg
    if kind in ("hash", "btree", "texthash", "lmdb", "cdb"):
        # The simulator reads the source text of an indexed table (what postmap would compile).
        try:
            lines = Path(arg).read_text().splitlines()
        except OSError:
            return None
        entries: dict[str, str] = {}
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                key, _, value = line.partition(" ")
                entries.setdefault(key.lower(), value.strip())
        for key in key_candidates:
            if key.lower() in entries:
                return entries[key.lower()]
    return None


def mailbox_for(address: str, conf: SimConfig, fallback: Path) -> Path | None:
    """The Maildir (or mbox path) virtual(8) would write for this recipient; None: no such user."""
    if route(address, conf) == "local":
        return fallback
    for table in conf.virtual_maps:
        value = _lookup(table, [address, "@" + domain_of(address)])
        if value:
            base = conf.virtual_base or fallback.parent
            return base / value if value.endswith("/") else base / value
    return None


@dataclass
class TLSInfo:
    protocol_cipher: str  # "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
    details: str  # "key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256"


_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


def split_message(content: bytes, glued: bool = False) -> tuple[list[bytes], list[bytes] | None]:
    """cleanup's reading of a message: (header lines, the rest from the first line that is not a header).

    A header is ``name:`` (is_header.c), or a line starting with a space or tab after a header (a folded
    one). At the very top such a line is body text after DATA (smtpd puts an empty line before it, so it
    cannot continue smtpd's own Received: header), but with BDAT (``glued``) smtpd does not, and it continues
    the Received: header (both seen on 3.7.11). The rest is None when the message ends inside its headers."""
    lines = content.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, line in enumerate(lines):
        if not (_HEADER_LINE.match(line) or ((i or glued) and line[:1] in (b" ", b"\t"))):
            return lines[:i], lines[i:]
    return lines, None


def unique_recipients(recipients: list[tuple[str, str, list[str], str]]) -> list[tuple[str, str]]:
    """cleanup's duplicate filter over (address, canonical address, RCPT parameters, address as given):
    one delivery per ORCPT=, NOTIFY=, address and canonical address, case-folded (been_here with
    BH_FLAG_FOLD). Seen on 3.7.11: ``Student@LAB.ITPRO.TV`` then ``student@lab.itpro.tv`` get one delivery
    (the first); with ``NOTIFY=NEVER``, as ``student``, as ``student@lab.itpro.tv.`` or with a source route
    (``<@route:student@lab.itpro.tv>``) each gets its own."""
    seen, out = set(), []
    for orig, rcpt, params, given in recipients:
        opts = {p.partition("=")[0].upper(): p.partition("=")[2] for p in params}
        key = tuple(k.lower() for k in (opts.get("ORCPT", ""), opts.get("NOTIFY", ""), given, orig, rcpt))
        if key not in seen:
            seen.add(key)
            out.append((orig, rcpt))
    return out


def received_header(
    conf: SimConfig, helo: str | None, client_name: str, client_addr: str, proto: str, qid: str,
    recipients: list[str], tls: TLSInfo | None, now: float,
) -> str:
    """smtpd's Received: header: ``for <recipient>`` (as the client gave it) when there is one recipient,
    else the date on a line of its own after ``id QID;`` (seen on 3.7.11)."""
    lines = [f"Received: from {helo or client_name} ({client_name} [{client_addr}])"]
    if tls and conf.received_header:
        lines.append(f"\t(using {tls.protocol_cipher}")
        lines.append(f"\t {tls.details})")
        lines.append("\t(No client certificate requested)")
    lines.append(f"\tby {conf.myhostname} (Postfix) with {proto} id {qid}")
    when = header_date(now)
    if len(recipients) == 1:
        lines.append(f"\tfor <{recipients[0]}>; {when}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{when}")
    return "\n".join(lines)


def compose(
    content: bytes, sender: str, recipient: str, received: str, conf: SimConfig, qid: str, now: float,
    original: str | None = None, glued: bool = False,
) -> bytes:
    """The message as virtual(8) writes it: envelope headers (``X-Original-To:`` the recipient as the client
    gave it), Received, the text, missing headers added."""
    headers, body = split_message(content, glued)
    names = {line.split(b":", 1)[0].strip().lower() for line in headers if line[:1] not in (b" ", b"\t")}
    added = []
    if b"message-id" not in names:
        added.append(f"Message-Id: <{time.strftime('%Y%m%d%H%M%S', time.localtime(now))}.{qid}@{conf.myhostname}>")
    if b"date" not in names:
        added.append(f"Date: {header_date(now)}")
    if b"from" not in names:
        added.append(f"From: {sender or 'MAILER-DAEMON'}")
    top = [f"Return-Path: <{sender}>", f"X-Original-To: {original or recipient}", f"Delivered-To: {recipient}",
           received]
    # an address that was no UTF-8 keeps its bytes (surrogateescape, as the command line was read)
    out = [line.encode("utf-8", "surrogateescape") for line in top] + headers + [
        line.encode("utf-8", "surrogateescape") for line in added]
    if body is not None:
        # the first line that is no header ends the headers; cleanup puts an empty line before it unless
        # it is one (seen on 3.7.11); a message that ends inside its headers gets none
        out += body if body[:1] == [b""] else [b"", *body]
    return b"\n".join(out) + b"\n"


def deliver(maildir: Path, message: bytes) -> Path:
    """Write one message into a Maildir (tmp/, then rename into new/), creating the folders if needed."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    now = time.time()
    tmp = maildir / "tmp" / f"{int(now)}.P{os.getpid()}R{random.randrange(1 << 30):x}.{socket.gethostname()}"
    with open(tmp, "xb") as f:
        f.write(message)
    st = tmp.stat()
    final = maildir / "new" / f"{int(now)}.V{st.st_dev:x}I{st.st_ino:x}M{int((now % 1) * 1e6)}.{socket.gethostname()}"
    os.rename(tmp, final)
    return final
