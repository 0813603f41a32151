"""The simulated Postfix 3.7 smtpd: aiosmtpd (pinned ``~=1.4.6``), extended where Postfix behaves differently.

What comes from aiosmtpd unchanged: the asyncio protocol, the STARTTLS upgrade (``SMTP.smtp_STARTTLS``'s
machinery, including 1.4.6's fix that discards plaintext pipelined behind STARTTLS, CVE-2024-34083),
HELO/EHLO argument checks, idle timeouts, connection teardown.

aiosmtpd's private names the simulator touches (``tests/test_sim_aiosmtpd.py`` fails, naming the one, if an
upgrade changes any of them); no public hook does these jobs:

- ``_handle_client`` (replaced): Postfix's command loop: lines end at LF (a CR before it is dropped),
  commands longer than ``line_length_limit`` are cut there (with smtpd's ``request longer than`` warning),
  verbs split on any whitespace, the ``encrypt`` gate with ``replies.ALLOWED_BEFORE_TLS`` (smtpd's
  SMTPD_CMD_FLAG_PRE_TLS), ``improper command pipelining``, ``smtpd_hard_error_limit`` (421), 521 hang-ups
  and Postfix's ``disconnect from ... commands=N`` log line. aiosmtpd's loop has none of these.
- ``_set_rset_state`` and ``_set_post_data_state`` (extended): Postfix's mail_reset also forgets SIZE=,
  the queue id and every BDAT chunk (RSET, STARTTLS, HELO/EHLO, after a message, after an error).
- ``_timeout_cb`` (extended): Postfix's ``421 4.4.2 ... timeout exceeded`` and its log line first.
- ``_reset_timeout``, ``_call_handler_hook`` (called), and the attributes ``_tls_protocol``,
  ``_original_transport``, ``_smtp_methods``, ``_reader`` (read; ``_reader._buffer`` for pipelining).
- the module global ``aiosmtpd.smtp.inspect`` (replaced by ``_ClassCachedInspect``): ``SMTP.__init__``
  runs ``inspect.getmembers`` on the session and its handler and ``inspect.signature`` on ``handle_EHLO``
  for every connection; the answers depend on the class only, so they are worked out once.

The differences from aiosmtpd's own commands (texts and rules are data in ``replies.py``):

1. ``smtp_STARTTLS``: level ``none`` (502), TLS already active (554), unusable certificate (454), then
   aiosmtpd's upgrade; the session starts over afterwards (RFC 3207), as in Postfix.
2. ``smtp_MAIL``, ``smtp_RCPT``, ``smtp_VRFY``: Postfix's address and parameter syntax (``address.py``:
   the address as given, its internal and external forms), replies and reject log lines; recipients go
   through ``restrictions.py`` (smtpd_check_rcpt), then the transport.
3. ``smtp_DATA``: Postfix's reading of the message, including bare-LF handling and
   ``smtpd_forbid_bare_newline`` (SMTP smuggling, CVE-2023-51764), and its size limit.
4. ``smtp_BDAT``: smtpd.c's bdat_cmd (chunk replies, ``Ok: N bytes queued as``, size limit, the error
   state that discards chunks until LAST or RSET, 521 on bad syntax).
5. ``smtp_RSET``, ``smtp_QUIT``, ``smtp_ETRN``, ``smtp_AUTH``, ``smtp_XCLIENT``, ``smtp_XFORWARD``: Postfix's replies.
6. Handler hooks (``PostfixHandler``): ``handle_EHLO`` (keywords in Postfix's order), ``handle_HELO``,
   ``handle_NOOP``, ``handle_RCPT`` (relay control, never open), ``handle_DATA`` (queue id, delivery, logs).
7. A main.cf smtpd would die on (``SimConfig.fatal``): no session at all (``HeldConnection``, ``Throttle``).

Where the simulator still differs from Postfix, and why: ``known_differences.py`` (the one list).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import time
from typing import Any

import aiosmtpd.smtp
from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from . import delivery, replies, restrictions
from .address import external_form, internal_form, refused_token, split_address
from . import tls as tlsmod
from .maillog import MailLog
from .simconfig import SimConfig

#: aiosmtpd texts that its own STARTTLS machinery sends, in Postfix's words.
_REWRITES = {"220 Ready to start TLS": replies.READY_TLS}

#: Commands Postfix knows (anything else: ``replies.UNKNOWN_COMMAND``).
KNOWN_COMMANDS = ("HELO", "EHLO", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
                  "RSET", "NOOP", "VRFY", "ETRN", "QUIT")

_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+:")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # a command line's bytes that were no UTF-8 (surrogateescape)


def client_name(address: str) -> str:
    """Postfix's verified client name: ``localhost`` for loopback (as /etc/hosts says), else ``unknown``."""
    return "localhost" if address in ("127.0.0.1", "::1") else "unknown"


def escape(data: bytes) -> str:
    """Postfix's escape(3): C escapes for control characters, octal for other bytes outside ASCII."""
    named = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 92: "\\\\"}
    return "".join(named.get(b) or (chr(b) if 32 <= b < 127 else f"\\{b:03o}") for b in data)


_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")


def message_id_of(content: bytes, qid: str, myhostname: str, now: float | None = None, glued: bool = False) -> str:
    """The Message-Id cleanup logs: the message's own, else the one it adds (``<stamp.qid@host>``)."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
    return header_value(content, b"message-id", glued) or f"<{stamp}.{qid}@{myhostname}>"


def header_values(content: bytes, name: bytes, glued: bool = False) -> list[str]:
    """The values of every ``name:`` header of a message, in order."""
    headers, _ = delivery.split_message(content, glued)
    out = []
    for line in headers:
        m = re.match(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)", line.rstrip(b"\r"))
        if m and m.group(1).lower() == name:
            out.append(m.group(2).strip().decode("utf-8", errors="backslashreplace"))
    return out


def header_value(content: bytes, name: bytes, glued: bool = False) -> str | None:
    """The value of the first ``name:`` header of a message."""
    values = header_values(content, name, glued)
    return values[0] if values else None


def log_message_ids(log: MailLog, qid: str, content: bytes, myhostname: str, now: float | None = None,
                    glued: bool = False) -> None:
    """cleanup's ``message-id=`` lines: one per Message-Id: header (3.7.11 logs two for two), else the one
    it adds."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(now))
    for mid in header_values(content, b"message-id", glued) or [f"<{stamp}.{qid}@{myhostname}>"]:
        log.log("cleanup", f"{qid}: message-id={mid}")


_COMPAT: list[Any] = [None, restrictions.Compat()]  # the last configuration seen and its Compat


def compat_of(conf: SimConfig) -> restrictions.Compat:
    """``restrictions.Compat`` of a configuration, worked out once per (re)load, not per session."""
    if _COMPAT[0] is not conf:
        _COMPAT[:] = [conf, restrictions.Compat.of(conf.source)]
    return _COMPAT[1]


class PostfixHandler:
    """Postfix's policy and delivery, at aiosmtpd's handler hooks."""

    def __init__(self, conf: SimConfig, log: MailLog, mailbox_fallback: Any) -> None:
        self.conf = conf
        self.log = log
        self.mailbox_fallback = mailbox_fallback
        self.compat = compat_of(conf)

    async def handle_HELO(self, server: "PostfixSMTP", session: Session, envelope: Envelope, hostname: str) -> str:
        session.host_name = hostname
        return replies.HELO_OK.format(myhostname=self.conf.myhostname)

    async def handle_EHLO(
        self, server: "PostfixSMTP", session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        keywords = []
        for word in replies.EHLO_KEYWORDS:
            if word == "STARTTLS" and (self.conf.level == "none" or server.tls_active):
                continue
            if word == "SMTPUTF8" and not self.compat.smtputf8:
                continue
            if word == "VRFY" and self.conf.disable_vrfy:
                continue
            keywords.append(f"SIZE {self.conf.message_size_limit}" if word == "SIZE" and self.conf.message_size_limit else word)
        lines = [self.conf.myhostname, *keywords]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_NOOP(self, server: "PostfixSMTP", session: Session, envelope: Envelope, arg: str) -> str:
        return replies.OK

    async def handle_RCPT(
        self, server: "PostfixSMTP", session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        """``smtpd_relay_restrictions`` and ``smtpd_recipient_restrictions``, as smtpd_check_rcpt runs them.

        Whatever is not understood refuses (``restrictions.SERVER_ERROR``); the only accept is the end of
        both lists with no refusal, as in Postfix.
        """
        target = delivery.canonical(address, self.conf)
        request = restrictions.Request(
            address=internal_form(address),  # smtpd_check's replies quote the internal form (FACTS.md)
            authorized_destination=delivery.route(target, self.conf) != "foreign",
            in_mynetworks=self.conf.in_networks(server.client_addr, self.conf.mynetworks),
            tls=server.tls_active,
            client=server.client,
            compat=self.compat,
        )
        first, second = self.conf.rcpt_lists
        refused = restrictions.check_recipient(first, second, self.conf.restriction_classes, request)
        for kind, text in request.notes:
            if kind == "reject_warning":
                server._log_reject(server.last_command, text, address, action="reject_warning")
            else:
                self.log.smtpd(text)
        server.after_reject = request.after  # logged after the reject line (restrictions.COMPAT_RECIPIENT_FIRST)
        if refused:
            return refused
        # Then the recipient's transport: an error: transport refuses at RCPT (check_rcpt_maps).
        kind = delivery.route(target, self.conf)
        if kind in ("foreign", "relay") and self.conf.source is not None and address.lower() != "postmaster":
            transport = self.conf.source.get("default_transport" if kind == "foreign" else "relay_transport").strip()
            name, _, text = transport.partition(":")
            if name == "error":
                return restrictions.reject_text(replies.ERROR_TRANSPORT.format(address=request.address, text=text),
                                                self.compat)
        return replies.RCPT_OK

    async def handle_DATA(self, server: "PostfixSMTP", session: Session, envelope: Envelope) -> str:
        qid = server.queue_id or delivery.queue_id()
        now = time.time()
        # MAIL FROM's SMTPUTF8 makes it "with UTF8SMTP" (smtpd.c); TLS adds the "S" of RFC 3848, which is
        # defined for ESMTP only (HELO, STARTTLS, no EHLO: "with SMTP"; seen on 3.7.11)
        utf8 = server.smtputf8
        tls = "S" if server.tls_active and server.protocol == "ESMTP" else ""
        proto = ("UTF8SMTP" if utf8 else server.protocol) + tls
        given = getattr(envelope, "rcpt_params", None) or [([], r) for r in envelope.rcpt_tos]
        recipients = delivery.unique_recipients(
            [(r, delivery.canonical(r, self.conf), p, raw) for r, (p, raw) in zip(envelope.rcpt_tos, given)])
        received = delivery.received_header(
            self.conf, session.host_name, server.client_name, server.client_addr, proto, qid,
            list(envelope.rcpt_tos), server.tls_info, now,  # smtpd's: before cleanup's duplicate filter
        )
        content = envelope.original_content or b""
        sender = envelope.mail_from or ""
        glued = getattr(envelope, "chunked", False)  # BDAT: see delivery.split_message
        if not server.bdat_mid_logged:
            log_message_ids(self.log, qid, content, self.conf.myhostname, now, glued)
        self.log.log("qmgr", f"{qid}: from=<{sender}>, size={len(content) + len(received) + 100}, nrcpt={len(recipients)} (queue active)")
        for orig, rcpt in recipients:
            text = delivery.compose(content, sender, rcpt, received, self.conf, qid, now, original=orig, glued=glued)
            box = delivery.mailbox_for(rcpt, self.conf, self.mailbox_fallback)
            delay = time.time() - server.mail_time
            stamp = f"delay={delay:.2g}, delays={delay:.2g}/0/0/0"
            to = f"to=<{rcpt}>" + (f", orig_to=<{orig}>" if orig.lower() != rcpt.lower() else "")
            if box is None or delivery.route(rcpt, self.conf) == "foreign":
                self.log.log("qmgr", f"{qid}: {to}, relay=none, {stamp}, dsn=5.4.4, status=bounced "
                             "(the lab has no route to the internet)")
                continue
            try:
                delivery.deliver(box, text)
            except OSError as e:
                self.log.log("virtual", f"{qid}: {to}, relay=virtual, {stamp}, dsn=4.2.0, status=deferred "
                             f"(maildir delivery failed: {e.strerror})")
                continue
            self.log.log("virtual", f"{qid}: {to}, relay=virtual, {stamp}, dsn=2.0.0, status=sent "
                         "(delivered to maildir)")
        self.log.log("qmgr", f"{qid}: removed")
        return replies.QUEUED.format(queue_id=qid)


class PostfixSMTP(SMTP):
    """One SMTP session, speaking as Postfix 3.7's smtpd (see the module docstring for the differences)."""

    def __init__(self, handler: PostfixHandler, conf: SimConfig, log: MailLog, **kwargs: Any) -> None:
        self.line_length_limit = max(conf.line_length_limit * 2, 4096)  # reader buffer; commands cut at the limit
        super().__init__(
            handler,
            hostname=conf.myhostname,
            tls_context=conf.tls.context if conf.tls else None,
            require_starttls=False,  # the encrypt gate is ours (Postfix's list of commands, Postfix's text)
            enable_SMTPUTF8=True,
            data_size_limit=conf.message_size_limit or None,
            timeout=conf.timeout,
            auth_require_tls=True,
            **kwargs,
        )
        self.conf = conf
        self.compat = compat_of(conf)
        self.maillog = log
        self.client_addr = "unknown"
        self.client_name = "unknown"
        self.counts: dict[str, list[int]] = {}
        self.errors = 0
        self.last_command = "CONNECT"
        self.queue_id: str | None = None
        self.msg_size = 0  # Postfix keeps a SIZE= it saw until the transaction is reset, even after an error
        self.mail_time = time.time()
        self.tls_info: delivery.TLSInfo | None = None
        self._ended = False
        self.hang_up = False  # set by a command whose reply (421/521) ends the session
        self.ill_pipelining = False  # "improper command pipelining" is logged once a session
        self.protocol = "SMTP"  # EHLO makes it ESMTP; HELO does not downgrade it (smtpd.c); STARTTLS keeps it
        self.after_reject: list[str] = []  # restrictions' lines for after the next reject line
        self.smtputf8 = False  # MAIL FROM's SMTPUTF8 (smtpd's SMTPD_FLAG_SMTPUTF8): "with UTF8SMTP"
        self._set_rset_state()

    # --- plumbing ------------------------------------------------------------------------------------
    @property
    def client(self) -> str:
        return f"{self.client_name}[{self.client_addr}]"

    @property
    def tls_active(self) -> bool:
        return self._tls_protocol is not None and self.tls_info is not None

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, str):
            # the client's own bytes go back as they came (a reply quoting an address that is no UTF-8)
            status = _REWRITES.get(status, status).encode("utf-8", errors="surrogateescape")
        await super().push(status)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:
            peer = transport.get_extra_info("peername") or ("unknown", 0)
            self.client_addr = str(peer[0])
            self.client_name = client_name(self.client_addr)
        super().connection_made(transport)

    def _set_rset_state(self) -> None:
        """Postfix's mail_reset: the envelope, SIZE=, the queue id and every BDAT chunk so far go."""
        super()._set_rset_state()
        self.msg_size = 0
        self.queue_id = None
        self.bdat_state = "none"  # none | ok (chunks received) | error (skip chunks until LAST or RSET)
        self.bdat_lines: list[bytes] = []
        self.bdat_partial = b""
        self.bdat_size = 0
        self.bdat_error = False
        self.bdat_mid_logged = False

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()
        self.bdat_state = "none"
        self.bdat_lines, self.bdat_partial, self.bdat_size, self.bdat_error = [], b"", 0, False
        self.bdat_mid_logged = False

    def _count(self, command: str, ok: bool) -> None:
        entry = self.counts.setdefault(command.lower(), [0, 0])
        entry[1] += 1
        entry[0] += int(ok)

    def _disconnect_line(self) -> str:
        parts = []
        for name in replies.LOG_ORDER:
            if name in self.counts:
                ok, total = self.counts[name]
                parts.append(f"{name}={ok}" if ok == total else f"{name}={ok}/{total}")
        ok = sum(c[0] for c in self.counts.values())
        total = sum(c[1] for c in self.counts.values())
        # no command at all: "commands=0/0" (seen on 3.7.11)
        parts.append(f"commands={ok}" if ok == total and total else f"commands={ok}/{total}")
        return replies.LOG_DISCONNECT.format(client=self.client, counts=" ".join(parts))

    def _end(self, why: str | None) -> None:
        """Log how the session ended, once: ``lost connection``/``timeout``/``too many errors``, then disconnect."""
        if self._ended:
            return
        self._ended = True
        if why == replies.LOG_LOST and self.last_command == "END-OF-MESSAGE":
            why = None  # smtpd does not log a client that leaves right after a message
        if why:
            self.maillog.smtpd(why.format(command=self.last_command, client=self.client))
        self.maillog.smtpd(self._disconnect_line())

    def _timeout_cb(self) -> None:
        self._end(replies.LOG_TIMEOUT)
        handshaking = self._tls_protocol is not None and self.tls_info is None
        if handshaking and self._original_transport is not None:
            self._original_transport.abort()  # a stalled TLS handshake: nothing more to say, just close
        elif self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write((replies.TIMEOUT.format(myhostname=self.conf.myhostname) + "\r\n").encode())
            except Exception:
                pass
        super()._timeout_cb()

    async def _readline(self, limit: int) -> bytes | None:
        """One line up to LF, cut at ``limit`` bytes (the rest of a longer line is dropped); None at EOF."""
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None  # the client went away (a partial last line counts as nothing, as in Postfix)
        except asyncio.LimitOverrunError as e:
            line = await self._reader.readexactly(e.consumed)
            while True:  # discard the rest of the line
                try:
                    await self._reader.readuntil(b"\n")
                    break
                except asyncio.LimitOverrunError as more:
                    await self._reader.readexactly(more.consumed)
                except asyncio.IncompleteReadError:
                    break
        if b"\n" not in line[:limit]:  # smtpd_chat_query_limit: no line end within the limit
            head = "".join(chr(b) if 32 <= b < 127 else "?" for b in line[:limit])
            self.maillog.smtpd(replies.LOG_LONG_REQUEST.format(client=self.client, limit=limit, head=head[:30]))
        return line[:limit]

    async def _data_line(self) -> bytes | None:
        """One message line up to LF, however long (long lines are kept whole, as Postfix keeps them)."""
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                part = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return None
            except asyncio.LimitOverrunError as e:
                part = await self._reader.readexactly(e.consumed)
                total += len(part)
                if total <= 4 * self.conf.message_size_limit + 65536:
                    parts.append(part)
                continue
            parts.append(part)
            return b"".join(parts)

    # --- the command loop (difference 1) ----------------------------------------------------------------
    async def _handle_client(self) -> None:
        self.maillog.smtpd(replies.LOG_CONNECT.format(client=self.client))
        await self.push(f"220 {self.conf.banner}")
        why: str | None = replies.LOG_LOST
        try:
            while self.transport is not None:
                raw = await self._readline(self.conf.line_length_limit)
                if raw is None:
                    break
                if raw.endswith(b"\n") and not raw.endswith(b"\r\n") and self._reject_bare_lf():
                    # smtpd_forbid_bare_newline = reject: refused where the session is, and the end of it
                    # (the line is no command: not counted; seen on 3.7.11)
                    await self.push(self._bare_lf_reply())
                    self._log_reject(self.last_command, replies.LOG_BARE_LF, self._first_recipient())
                    why = None
                    break
                line = raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="surrogateescape")
                self._reset_timeout()
                if self.errors >= self.conf.hard_error_limit:
                    await self.push(replies.TOO_MANY_ERRORS.format(myhostname=self.conf.myhostname))
                    why = replies.LOG_TOO_MANY_ERRORS
                    break
                if self.compat.smtputf8 and _NOT_UTF8.search(line):
                    # smtpd.c protects its interfaces: not counted, "after X" unchanged (like "bad syntax")
                    self.errors += 1
                    await self.push(replies.BAD_UTF8)
                    continue
                verb, _, arg = line.strip().partition(" ") if " " in line.strip() else (line.strip(), "", "")
                if "\t" in verb:
                    verb, _, rest = verb.partition("\t")
                    arg = f"{rest} {arg}".strip()
                command = verb.upper()
                if not verb:  # before the command lookup in smtpd: not counted, "after X" unchanged
                    self.errors += 1
                    await self.push(replies.BAD_SYNTAX)
                    continue
                elif command not in KNOWN_COMMANDS and (
                    command in self.conf.forbidden_words
                    or any(p.search(line.strip()) for p in self.conf.forbidden_patterns)
                    or _HEADER_NAME.fullmatch(verb)
                ):
                    # smtpd_forbidden_commands (CONNECT, GET, POST, lines not starting with a letter) and
                    # anything shaped like a header ("Subject:"): a web client, or a message body sent as
                    # commands after a refused DATA; Postfix hangs up at once.
                    self.maillog.smtpd(replies.LOG_FORBIDDEN.format(client=self.client, line=line.strip()[:100]))
                    await self.push(replies.FORBIDDEN_COMMAND)
                    self._count("UNKNOWN", False)
                    why = None  # smtpd leaves its loop: no "lost connection" line (seen on 3.7.11)
                    break
                elif command not in KNOWN_COMMANDS:
                    ok = False
                    self.last_command = "UNKNOWN"
                    await self.push(replies.UNKNOWN_COMMAND)
                    command = "UNKNOWN"
                elif self.conf.level == "encrypt" and not self.tls_active and command not in replies.ALLOWED_BEFORE_TLS:
                    ok = False  # refused before smtpd notes the command as where it is ("after EHLO" stays)
                    await self.push(replies.MUST_STARTTLS)
                else:
                    self.last_command = command
                    self._check_pipelining(command)
                    ok = bool(await self._smtp_methods[command](arg.strip() or None))
                self._count(command, ok)
                if not ok:
                    self.errors += 1
                if command == "QUIT" and ok:
                    why = None
                    break
                if command == "STARTTLS" and ok is False and self.transport is None:
                    break
                if self.hang_up:
                    why = None
                    break
        except asyncio.CancelledError:
            self._end(why)
            raise
        except (ConnectionError, TLSSetupException):
            pass
        self._end(why)
        if self.transport is not None:
            self.transport.close()

    def _reject_bare_lf(self) -> bool:
        """``smtpd_forbid_bare_newline = reject`` applies to this client (not in the exclusions)."""
        return self.conf.reject_bare_newline and not self.conf.in_networks(
            self.client_addr, self.conf.bare_newline_exclusions)

    def _bare_lf_reply(self) -> str:
        if self.conf.bare_newline_reject_code == 521:
            self.hang_up = True  # a 521 reply ends the session (smtpd_chat.c)
        return replies.BARE_LF.format(code=self.conf.bare_newline_reject_code, myhostname=self.conf.myhostname)

    def _first_recipient(self) -> str | None:
        return self.envelope.rcpt_tos[0] if self.envelope.rcpt_tos else None

    def _log_partial_message_id(self, lines: list[bytes], glued: bool = False) -> None:
        """cleanup got these lines (those before a bare <LF>, or before the size limit): it logs the
        message-id if they hold every header."""
        content = b"".join(line + b"\r\n" for line in lines)
        if delivery.split_message(content, glued)[1] is not None:
            log_message_ids(self.maillog, self.queue_id or "", content, self.conf.myhostname, glued=glued)

    def _illegal_address(self, command: str, text: str) -> None:
        """extract_addr's warning for a refused address (an empty RCPT one too), quoting it without its
        parameters (3.7.11: ``<> NOTIFY=NEVER`` logs ``<>``)."""
        token = refused_token(text)
        if token is not None:
            self.maillog.smtpd(replies.LOG_ILLEGAL_ADDRESS.format(client=self.client, command=command, text=token))

    def _log_reject(self, command: str, reply: str, recipient: str | None, sender: str | None = None,
                    action: str = "reject") -> None:
        """log_whatsup: ``NOQUEUE: reject: RCPT from c: reply; from=<s> to=<r> proto=ESMTP helo=<h>``, then
        any line the restrictions left for after it."""
        line = replies.LOG_REJECT.format(queue_id=self.queue_id or "NOQUEUE", action=action, command=command,
                                         client=self.client, reply=reply)
        sender = self.envelope.mail_from if sender is None else sender
        # info_log_addr_form: the external form of smtpd's internal one (FACTS.md, "Envelope addresses")
        if sender is not None:
            line += f" from=<{external_form(internal_form(sender))}>"
        if recipient is not None:
            line += f" to=<{external_form(internal_form(recipient))}>"
        line += " proto=" + self.protocol
        if self.session.host_name:
            line += f" helo=<{self.session.host_name}>"
        self.maillog.smtpd(line)
        if action == "reject":
            for note in self.after_reject:
                self.maillog.smtpd(note)
            self.after_reject = []

    def _check_pipelining(self, command: str) -> None:
        """smtpd_flag_ill_pipelining: more input already waiting after a command that must end a group."""
        if self.ill_pipelining or (self.protocol == "ESMTP" and command not in replies.LAST_IN_GROUP):
            return
        waiting = bytes(self._reader._buffer[:100])  # aiosmtpd's StreamReader buffer (guarded by a test)
        if waiting:
            self.ill_pipelining = True
            self.maillog.smtpd(replies.LOG_PIPELINING.format(command=command, client=self.client,
                                                             rest=escape(waiting)))

    # --- commands -------------------------------------------------------------------------------------
    async def smtp_HELO(self, hostname: str | None) -> bool:
        await super().smtp_HELO(hostname or "")
        if hostname:  # a refused HELO/EHLO (no argument) keeps the transaction and its queue id (3.7.11)
            self.queue_id = None
        return bool(hostname)

    async def smtp_EHLO(self, hostname: str | None) -> bool:
        await super().smtp_EHLO(hostname or "")
        if hostname:
            self.queue_id = None
            self.protocol = "ESMTP"
        return bool(hostname)

    async def smtp_NOOP(self, arg: str | None) -> bool:
        await super().smtp_NOOP(arg or "")
        return True

    async def smtp_QUIT(self, arg: str | None) -> bool:
        await self.push(replies.BYE)
        return True

    async def smtp_RSET(self, arg: str | None) -> bool:
        if arg:
            await self.push(replies.SYNTAX_RSET)
            return False
        self._set_rset_state()
        self.queue_id = None
        await self.push(replies.OK)
        return True

    async def smtp_STARTTLS(self, arg: str | None) -> bool:  # difference 2
        if arg:
            await self.push(replies.SYNTAX_STARTTLS)
        elif self.conf.level == "none":
            await self.push(replies.NOT_IMPLEMENTED)
        elif self.tls_active:
            await self.push(replies.TLS_ALREADY_ACTIVE)
        elif self.conf.tls is None:
            await self.push(replies.TLS_NOT_AVAILABLE)
        elif self.conf.tls.problem:  # a cipher grade or exclusion Postfix refuses: 220, a warning, hung up
            await self.push(replies.READY_TLS)
            self.maillog.smtpd(f"warning: {self.client}: {self.conf.tls.problem}")
            if self.transport is not None:
                self.transport.close()
            self.transport = None
            return False
        else:
            self._reset_timeout(self.conf.starttls_timeout)
            try:
                await super().smtp_STARTTLS("")
            except TLSSetupException as error:
                self.maillog.smtpd(replies.LOG_TLS_ACCEPT_ERROR.format(client=self.client))
                reason = getattr(error.__cause__, "reason", None)  # aiosmtpd raises it from the ssl.SSLError
                if reason in replies.TLS_LIBRARY_ERRORS:
                    self.maillog.smtpd(replies.LOG_TLS_LIBRARY.format(error=replies.TLS_LIBRARY_ERRORS[reason]))
                if self.transport is not None:
                    self.transport.close()
                self.transport = None
                return False
            self._reset_timeout()
            ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
            if ssl_object is None:
                return False
            head, details = tlsmod.summary(ssl_object, self.conf.tls.signature)
            self.tls_info = delivery.TLSInfo(head, details)
            if self.conf.tls_loglevel >= 1:
                self.maillog.smtpd(replies.LOG_TLS.format(kind="Anonymous", client=self.client, summary=f"{head} {details}"))
            # RFC 3207 4.2: forget everything learnt before TLS (aiosmtpd made a new session already).
            self._set_rset_state()
            self.queue_id = None
            return True
        return False

    async def smtp_MAIL(self, arg: str | None) -> bool:  # difference 3
        self.smtputf8 = False  # every MAIL command clears it first, even a refused one (mail_cmd; 3.7.11)
        if self.envelope.mail_from is not None:
            await self.push(replies.NESTED_MAIL)
            return False
        if self.bdat_state != "none":
            await self.push(replies.MAIL_AFTER_BDAT)
            return False
        m = re.match(r"FROM:", arg or "", re.IGNORECASE)
        rest = (arg or "")[m.end():] if m else ""
        if not m or not rest.strip():
            await self.push(replies.SYNTAX_MAIL)
            return False
        address, params = split_address(rest)
        if address is None:
            self._illegal_address("MAIL", rest)
            await self.push(replies.BAD_SENDER)
            return False
        ret_seen = envid_seen = False
        for param in params:
            key, eq, value = param.partition("=")
            key = key.upper()
            if key == "SIZE":
                if not value.isdigit():
                    await self.push(replies.BAD_SIZE)
                    return False
                self.msg_size = int(value)
            elif key == "BODY" and value.upper() in replies.BODY_TYPES:
                continue
            elif key == "SMTPUTF8" and not eq and not self.compat.smtputf8:
                await self.push(replies.UNSUPPORTED_OPTION.format(option=param))  # smtputf8_enable = no
                return False
            elif key == "RET":
                if ret_seen or value.upper() not in ("HDRS", "FULL"):  # a second RET, or not HDRS/FULL
                    await self.push(replies.BAD_RET)
                    return False
                ret_seen = True
            elif key == "ENVID":
                if envid_seen:  # a second ENVID (seen on 3.7.11)
                    await self.push(replies.BAD_ENVID)
                    return False
                envid_seen = True
            elif key not in replies.MAIL_PARAMETERS or key == "BODY":
                await self.push(replies.UNSUPPORTED_OPTION.format(option=param))
                return False
        if self.conf.message_size_limit and self.msg_size > self.conf.message_size_limit:
            self._log_reject("MAIL", replies.TOO_BIG, None, sender=address)
            await self.push(replies.TOO_BIG)
            return False
        note = restrictions.non_ascii_note(self.compat, "sender", internal_form(address), self.client)
        if note:
            self.maillog.smtpd(note)
        self.envelope.mail_from = external_form(internal_form(address))  # as cleanup gets it, quoted for headers
        self.envelope.mail_options = params
        self.smtputf8 = any(p.upper() == "SMTPUTF8" for p in params)
        self.mail_time = time.time()
        await self.push(replies.MAIL_OK)
        return True

    async def smtp_RCPT(self, arg: str | None) -> bool:
        if self.envelope.mail_from is None:
            await self.push(replies.NEED_MAIL)
            return False
        if self.bdat_state != "none":
            await self.push(replies.RCPT_AFTER_BDAT)
            return False
        m = re.match(r"TO:", arg or "", re.IGNORECASE)
        rest = (arg or "")[m.end():] if m else ""
        if not m or not rest.strip():
            await self.push(replies.SYNTAX_RCPT)
            return False
        address, params = split_address(rest)
        text = rest.strip()
        if not address:
            self._illegal_address("RCPT", text)
            await self.push(replies.BAD_RECIPIENT)
            return False
        address = external_form(internal_form(address))  # smtpd's internal form, quoted where RFC 822 needs it
        seen: set[str] = set()
        for param in params:
            key = param.partition("=")[0].upper()
            if key not in replies.RCPT_PARAMETERS:
                await self.push(replies.UNSUPPORTED_OPTION.format(option=param))
                return False
            if key in seen:  # a second NOTIFY or ORCPT (seen on 3.7.11)
                await self.push(replies.BAD_DSN_PARAMETER.format(name=key))
                return False
            seen.add(key)
        note = restrictions.non_ascii_note(self.compat, "recipient", internal_form(address), self.client)
        if note:
            self.maillog.smtpd(note)
        status = await self._call_handler_hook("RCPT", address, params)
        if status.startswith("2"):
            if self.queue_id is None:
                self.queue_id = delivery.queue_id()
                self.maillog.smtpd(replies.LOG_CLIENT.format(queue_id=self.queue_id, client=self.client))
            self.envelope.rcpt_tos.append(address)
            if not hasattr(self.envelope, "rcpt_params"):
                self.envelope.rcpt_params = []  # type: ignore[attr-defined]
            # for cleanup's duplicate filter: the parameters and the address as given (a source route too)
            self.envelope.rcpt_params.append((params, text.split()[0] if text else address))  # type: ignore[attr-defined]
        else:
            self._log_reject("RCPT", status, address)
        await self.push(status)
        return status.startswith("2")

    async def smtp_VRFY(self, arg: str | None) -> bool:
        if not arg:
            await self.push(replies.SYNTAX_VRFY if self.compat.smtputf8 else replies.SYNTAX_VRFY_NO_SMTPUTF8)
            return False
        address, _params = split_address(arg)
        if address is None and arg.startswith("<") and ">" not in arg:
            address, _params = split_address(arg[1:])  # VRFY parses sloppily: a lone "<" is ignored (3.7.11)
        if not address:  # VRFY's extract_addr warns about the whole argument (no tokenizer error first)
            self.maillog.smtpd(replies.LOG_ILLEGAL_ADDRESS.format(client=self.client, command="VRFY",
                                                                  text=" ".join(arg.split())))
            await self.push(replies.BAD_RECIPIENT)
            return False
        status = await self._call_handler_hook("RCPT", address, [])
        if status.startswith("2"):
            status = replies.VRFY_OK.format(address=arg.strip())
        else:
            self._log_reject("VRFY", status, address)
        await self.push(status)
        return status.startswith("2")

    async def smtp_DATA(self, arg: str | None) -> bool:  # difference 4
        if self.bdat_state != "none":
            await self.push(replies.DATA_AFTER_BDAT)
            return False
        if not self.envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT if self.envelope.mail_from is None else replies.NO_VALID_RECIPIENTS)
            return False
        if arg:
            await self.push(replies.SYNTAX_DATA)
            return False
        await self.push(replies.START_DATA)
        bare_lf_ok = not self.conf.forbid_bare_newline or self.conf.in_networks(
            self.client_addr, self.conf.bare_newline_exclusions
        )
        lines: list[bytes] = []
        size, too_big, previous_crlf = 0, False, True
        bare_at: int | None = None  # smtpd_forbid_bare_newline = reject: the lines before the first bare <LF>
        reject_bare = self._reject_bare_lf()
        while True:
            raw = await self._data_line()
            if raw is None:
                raise ConnectionResetError("lost connection during DATA")
            crlf = raw.endswith(b"\r\n")
            line = raw[:-2] if crlf else raw.rstrip(b"\n")
            if reject_bare and not crlf and bare_at is None:  # a "." line too (seen on 3.7.11)
                bare_at = len(lines)
            if line == b".":
                if bare_lf_ok or (crlf and previous_crlf):
                    break
                previous_crlf = crlf
                continue  # 3.7.11 with smtpd_forbid_bare_newline = yes: not the end, and not kept
            previous_crlf = crlf
            if line.startswith(b"."):
                line = line[1:]
            size += len(line) + 2
            if self.conf.message_size_limit and size > self.conf.message_size_limit:
                if not too_big:  # smtpd's receive_data warns once; cleanup had the lines so far (3.7.11)
                    self.maillog.smtpd(f"warning: {self.queue_id or 'NOQUEUE'}: queue file size limit exceeded")
                    self._log_partial_message_id(lines)
                too_big = True
                lines.clear()
                continue
            if not too_big:
                lines.append(line)
        self.last_command = "END-OF-MESSAGE"
        if too_big:
            self._set_post_data_state()
            self.queue_id = None
            await self.push(replies.DATA_TOO_BIG)
            return False
        if bare_at is not None:
            self._log_reject("END-OF-MESSAGE", replies.LOG_BARE_LF, self._first_recipient())
            self._log_partial_message_id(lines[:bare_at])
            reply = self._bare_lf_reply()
            self._set_post_data_state()
            self.queue_id = None
            await self.push(reply)
            return False
        self.envelope.original_content = b"\r\n".join(lines) + (b"\r\n" if lines else b"")
        self.envelope.content = self.envelope.original_content
        status = await self._call_handler_hook("DATA")
        if status.startswith("250"):
            self.errors = 0  # smtpd forgives earlier errors once a message is received
        self._set_post_data_state()
        self.queue_id = None
        await self.push(status)
        return True

    async def smtp_ETRN(self, arg: str | None) -> bool:  # difference 5
        if self.envelope.mail_from is not None:
            await self.push(replies.ETRN_IN_TRANSACTION)
        elif not arg or len(arg.split()) != 1:
            await self.push(replies.SYNTAX_ETRN)
        else:
            self.maillog.smtpd(replies.LOG_ETRN_REJECT.format(domain=arg[:100], client=self.client))
            await self.push(replies.ETRN_UNAVAILABLE.format(domain=arg))
        return False

    async def smtp_AUTH(self, arg: str | None) -> bool:
        await self.push(replies.AUTH_NOT_ENABLED)
        return False

    async def _x_command(self, name: str, arg: str | None) -> bool:
        """XCLIENT/XFORWARD: no client is authorized for them (``smtpd_authorized_x*_hosts`` is empty)."""
        if self.envelope.mail_from is not None:
            await self.push(replies.MAIL_IN_PROGRESS)
        elif not arg:
            await self.push(replies.SYNTAX_X.format(command=name))
        else:
            await self.push(replies.INSUFFICIENT_AUTHORIZATION)
        return False

    async def smtp_XCLIENT(self, arg: str | None) -> bool:
        return await self._x_command("XCLIENT", arg)

    async def smtp_XFORWARD(self, arg: str | None) -> bool:
        return await self._x_command("XFORWARD", arg)

    async def _skip_bdat(self, size: int, last: bool, reply: str) -> bool:
        """smtpd's skip_bdat: read and drop the chunk, answer, and refuse the rest of this transaction."""
        await self._reader.readexactly(size)
        await self.push(reply)
        if last:
            self._set_rset_state()
        else:
            self.bdat_state = "error"
        return False

    async def smtp_BDAT(self, arg: str | None) -> bool:
        """CHUNKING as smtpd.c's bdat_cmd: each chunk answered, LAST delivers, an error discards the rest."""
        parts = (arg or "").split()
        last = len(parts) == 2 and parts[1].upper() == "LAST"
        if not parts or len(parts) > 2 or not parts[0].isdigit() or (len(parts) == 2 and not last):
            self.maillog.smtpd(replies.LOG_BDAT_SYNTAX.format(
                queue_id=self.queue_id or "NOQUEUE", client=self.client, line=f"BDAT {arg or ''}".strip()[:100]))
            await self.push(replies.SYNTAX_BDAT)
            self.hang_up = True  # a 521 reply ends the session (smtpd_chat.c)
            return False
        size = int(parts[0])
        if size == 0 and not last:
            self.maillog.smtpd(replies.LOG_BDAT_NULL.format(queue_id=self.queue_id or "NOQUEUE", client=self.client))
            return await self._skip_bdat(size, last, replies.BDAT_NULL)
        if self.bdat_state == "error":
            return await self._skip_bdat(size, last, replies.BDAT_DISCARDED.format(size=size))
        if self.bdat_state == "none":
            if not self.envelope.rcpt_tos:
                reply = replies.NEED_RCPT if self.envelope.mail_from is None else replies.NO_VALID_RECIPIENTS
                return await self._skip_bdat(size, last, reply)
        limit = self.conf.message_size_limit
        if limit and self.bdat_size > limit - size:
            self.maillog.smtpd(replies.LOG_BDAT_TOO_BIG.format(queue_id=self.queue_id or "NOQUEUE", client=self.client))
            return await self._skip_bdat(size, last, replies.BDAT_TOO_BIG)
        self.bdat_state = "ok"
        data = self.bdat_partial + await self._reader.readexactly(size)
        ended = data.split(b"\n")
        self.bdat_partial = ended.pop()  # an unfinished line waits for the next chunk
        lines = [(line, True) for line in ended]
        if last and self.bdat_partial:
            lines.append((self.bdat_partial, False))
            self.bdat_partial = b""
        reject_bare = self._reject_bare_lf()
        for line, had_lf in lines:
            if reject_bare and had_lf and not line.endswith(b"\r"):
                # smtpd_forbid_bare_newline = reject: this chunk is refused (seen on 3.7.11: LAST ends the
                # transaction, an earlier chunk makes the rest be discarded until LAST or RSET)
                self._log_reject("END-OF-MESSAGE" if last else "BDAT content", replies.LOG_BARE_LF,
                                 self._first_recipient())
                if not self.bdat_mid_logged and not self.bdat_error:
                    self._log_partial_message_id(self.bdat_lines, glued=True)
                reply = self._bare_lf_reply()
                if last:
                    self.last_command = "END-OF-MESSAGE"
                    self._set_rset_state()
                else:
                    self.bdat_state = "error"
                await self.push(reply)
                return False
            line = line[:-1] if line.endswith(b"\r") else line
            if self.bdat_error:
                continue
            if limit and limit - self.bdat_size < len(line) + 2:
                self.bdat_error = True
                self.maillog.smtpd(f"warning: {self.queue_id or 'NOQUEUE'}: queue file size limit exceeded")
                continue
            self.bdat_size += len(line) + 2
            self.bdat_lines.append(line)
            if not self.bdat_mid_logged and line[:1] not in (b" ", b"\t") and not _HEADER_LINE.match(line):
                # cleanup has the whole header section now: it logs the message-id (or the one it adds)
                # even if a later chunk is refused (seen on 3.7.11)
                self.bdat_mid_logged = True
                log_message_ids(self.maillog, self.queue_id or "", b"\r\n".join(self.bdat_lines),
                                self.conf.myhostname, glued=True)
        if not last and not self.bdat_error:
            await self.push(replies.BDAT_CHUNK.format(size=size))
            return True
        if self.bdat_error:
            if last:
                self.last_command = "END-OF-MESSAGE"
            self._set_rset_state()
            await self.push(replies.DATA_TOO_BIG)
            if not last:
                self.bdat_state = "error"
            return False
        self.last_command = "END-OF-MESSAGE"
        self.envelope.original_content = b"".join(line + b"\r\n" for line in self.bdat_lines)
        self.envelope.content = self.envelope.original_content
        self.envelope.chunked = True  # type: ignore[attr-defined]  (BDAT: see delivery.split_message)
        size_total = self.bdat_size
        status = await self._call_handler_hook("DATA")
        if status.startswith("250 2.0.0 Ok: queued as "):
            status = replies.BDAT_QUEUED.format(size=size_total, queue_id=status.rpartition(" ")[2])
            self.errors = 0  # smtpd forgives earlier errors once a message is received
        self._set_rset_state()
        await self.push(status)
        return True

    async def smtp_EXPN(self, arg: str | None) -> bool:
        await self.push(replies.UNKNOWN_COMMAND)
        return False

    async def smtp_HELP(self, arg: str | None) -> bool:
        await self.push(replies.UNKNOWN_COMMAND)
        return False


class Throttle:
    """Postfix's master after an smtpd died at start: no new smtpd for 60 s (``$process_minimum_wait`` is
    not it: the master's fixed throttle), and a reload does not end the wait (seen on 3.7.11)."""

    DELAY = 60.0

    def __init__(self) -> None:
        self.until = 0.0

    def active(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.until

    def fatal(self, conf: SimConfig, log: MailLog, message: str) -> None:
        """What the lab log shows when smtpd exits at start: its fatal line and the master's two warnings."""
        daemon = f"{conf.source.get('daemon_directory') if conf.source else '/usr/lib/postfix/sbin'}/smtpd"
        log.smtpd(f"fatal: {message}")
        log.log("master", f"warning: process {daemon} pid {log.pid} exit status 1")
        log.log("master", f"warning: {daemon}: bad command startup -- throttling")
        self.until = time.monotonic() + self.DELAY


class HeldConnection(asyncio.Protocol):
    """A connection no smtpd takes: while smtpd cannot start, Postfix's clients wait in the listen queue.

    No banner, no log line of their own, what they send waits; when the throttle ends, a main.cf that is
    good again gets them a session (their pipelined bytes included), a still bad one another fatal.
    """

    MAX_BUFFER = 1 << 20

    def __init__(self, session: Any, conf_getter: Any, log_getter: Any, throttle: Throttle) -> None:
        self.session, self.conf_getter, self.log_getter, self.throttle = session, conf_getter, log_getter, throttle
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._try()

    def _try(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        if not self.throttle.active(now):
            conf = self.conf_getter()
            if not conf.fatal:
                proto = self.session()
                self.transport.set_protocol(proto)
                proto.connection_made(self.transport)
                if self.buffer:
                    proto.data_received(bytes(self.buffer))
                return
            self.throttle.fatal(conf, self.log_getter(), conf.fatal)
        self.timer = loop.call_later(max(self.throttle.until - time.monotonic(), 0.05), self._try)

    def data_received(self, data: bytes) -> None:
        if len(self.buffer) < self.MAX_BUFFER:
            self.buffer.extend(data[: self.MAX_BUFFER - len(self.buffer)])

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.timer is not None:
            self.timer.cancel()


class _ClassCachedInspect:
    """``inspect`` as aiosmtpd.smtp sees it, with the two calls ``SMTP.__init__`` makes for every session
    answered once per class for the simulator's own classes (about half the cost of a handshake-only
    session): ``getmembers(obj)``, which aiosmtpd filters to ``auth_*`` names (the same list, built from
    the names found once), and ``signature(handle_EHLO)``. Everything else is the real ``inspect``.
    ``tests/test_sim_aiosmtpd.py`` checks that aiosmtpd still calls exactly these and that the answers
    are the real ones."""

    def __init__(self) -> None:
        self._auth_names: dict[type, list[str]] = {}
        self._signatures: dict[Any, inspect.Signature] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    def getmembers(self, obj: Any, predicate: Any = None) -> list[tuple[str, Any]]:
        kind = type(obj)
        if predicate is not None or kind not in (PostfixSMTP, PostfixHandler):
            return inspect.getmembers(obj, predicate)
        names = self._auth_names.get(kind)
        if names is None:
            names = self._auth_names[kind] = [n for n, _ in inspect.getmembers(obj) if n.startswith("auth_")]
        return [(n, getattr(obj, n)) for n in names]

    def signature(self, obj: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        func = getattr(obj, "__func__", None)
        if args or kwargs or func is None or type(obj.__self__) is not PostfixHandler:
            return inspect.signature(obj, *args, **kwargs)
        if func not in self._signatures:
            self._signatures[func] = inspect.signature(obj)
        return self._signatures[func]


aiosmtpd.smtp.inspect = _ClassCachedInspect()  # type: ignore[attr-defined]  (guarded by tests/test_sim_aiosmtpd.py)


def make_factory(conf_getter: Any, log_getter: Any, mailbox_fallback: Any, throttle: Throttle | None = None) -> Any:
    """A protocol factory reading the *current* configuration, so a reload affects new sessions only.

    A configuration smtpd would die on (``SimConfig.fatal``) gets no session, as with Postfix: the
    connection is held without a banner, and the lab log gets Postfix's fatal and throttling lines.
    """
    throttle = throttle or Throttle()

    def session() -> PostfixSMTP:
        conf, log = conf_getter(), log_getter()
        return PostfixSMTP(PostfixHandler(conf, log, mailbox_fallback), conf, log)

    def factory() -> asyncio.Protocol:
        if conf_getter().fatal or throttle.active():
            return HeldConnection(session, conf_getter, log_getter, throttle)
        return session()

    return factory


def resolve_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return (host or "127.0.0.1").strip("[]"), int(port)


__all__ = ["PostfixSMTP", "PostfixHandler", "HeldConnection", "Throttle", "make_factory", "resolve_listen", "client_name", "socket"]
