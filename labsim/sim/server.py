"""The simulated Postfix 3.7 smtpd: aiosmtpd, extended where Postfix behaves differently.

What comes from aiosmtpd unchanged: the asyncio protocol, the STARTTLS upgrade (``SMTP.smtp_STARTTLS``'s
machinery, including 1.4.6's fix that discards plaintext pipelined behind STARTTLS, CVE-2024-34083),
HELO/EHLO argument checks, idle timeouts, connection teardown.

The difference from aiosmtpd, as a list (texts and rules are data in ``replies.py``):

1. ``_handle_client``: Postfix's command loop: lines end at LF (a CR before it is dropped), commands
   longer than ``line_length_limit`` are cut there, verbs are split on any whitespace, the ``encrypt``
   gate uses ``replies.ALLOWED_BEFORE_TLS``, ``smtpd_hard_error_limit`` ends the session with 421, and
   every session ends with Postfix's ``disconnect from ... commands=N`` log line.
2. ``smtp_STARTTLS``: level ``none`` (502), TLS already active (554), unusable certificate (454), then
   aiosmtpd's upgrade; the session starts over afterwards (RFC 3207), as in Postfix.
3. ``smtp_MAIL``, ``smtp_RCPT``, ``smtp_VRFY``: Postfix's address and parameter syntax and replies.
4. ``smtp_DATA``: Postfix's reading of the message, including bare-LF handling and
   ``smtpd_forbid_bare_newline`` (SMTP smuggling, CVE-2023-51764), and its size limit.
5. ``smtp_RSET``, ``smtp_QUIT``, ``smtp_ETRN``, ``smtp_AUTH``, ``smtp_XCLIENT``, ``smtp_BDAT``: Postfix's replies.
6. Handler hooks (``PostfixHandler``): ``handle_EHLO`` (keywords in Postfix's order), ``handle_HELO``,
   ``handle_NOOP``, ``handle_RCPT`` (relay control), ``handle_DATA`` (queue id, delivery, logs).
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, TLSSetupException

from . import delivery, replies, restrictions
from . import tls as tlsmod
from .maillog import MailLog
from .simconfig import SimConfig

#: aiosmtpd texts that its own STARTTLS machinery sends, in Postfix's words.
_REWRITES = {"220 Ready to start TLS": replies.READY_TLS}

#: Commands Postfix knows (anything else: ``replies.UNKNOWN_COMMAND``).
KNOWN_COMMANDS = ("HELO", "EHLO", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "BDAT",
                  "RSET", "NOOP", "VRFY", "ETRN", "QUIT")

_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+:")
_ADDRESS_BAD = re.compile(r'[\x00-\x1f\x7f<>]')


def client_name(address: str) -> str:
    """Postfix's verified client name: ``localhost`` for loopback (as /etc/hosts says), else ``unknown``."""
    return "localhost" if address in ("127.0.0.1", "::1") else "unknown"


def split_address(text: str) -> tuple[str | None, list[str]]:
    """``<addr> PARAM...`` or ``addr PARAM...`` to (address, params); None when the syntax is bad."""
    text = text.strip()
    if text.startswith("<"):
        quoted, end = False, -1
        for i, c in enumerate(text[1:], 1):
            if c == '"':
                quoted = not quoted
            elif c == ">" and not quoted:
                end = i
                break
        if end < 0:
            return None, []
        address, rest = text[1:end], text[end + 1 :]
        if rest and not rest[0].isspace():
            return None, []
    else:
        address, _, rest = text.partition(" ")
    if _ADDRESS_BAD.search(address) or address.count('"') % 2:
        return None, []
    unquoted = re.sub(r'"[^"]*"', "", address)
    if any(c.isspace() for c in unquoted):
        return None, []
    return address, rest.split()


def header_value(content: bytes, name: bytes) -> str | None:
    """The value of the first ``name:`` header of a message (what cleanup logs as ``message-id=``)."""
    for line in content.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            return None  # end of the headers
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name:
            return value.strip().decode("utf-8", errors="backslashreplace")
    return None


class PostfixHandler:
    """Postfix's policy and delivery, at aiosmtpd's handler hooks."""

    def __init__(self, conf: SimConfig, log: MailLog, mailbox_fallback: Any) -> None:
        self.conf = conf
        self.log = log
        self.mailbox_fallback = mailbox_fallback

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
            address=address,
            authorized_destination=delivery.route(target, self.conf) != "foreign",
            in_mynetworks=self.conf.in_networks(server.client_addr, self.conf.mynetworks),
            tls=server.tls_active,
        )
        first, second = self.conf.rcpt_lists
        refused = restrictions.check_recipient(first, second, self.conf.restriction_classes, request)
        for line in request.warnings:
            self.log.smtpd(line)
        return refused or replies.RCPT_OK

    async def handle_DATA(self, server: "PostfixSMTP", session: Session, envelope: Envelope) -> str:
        qid = server.queue_id or delivery.queue_id()
        now = time.time()
        proto = ("ESMTP" if session.extended_smtp else "SMTP") + ("S" if server.tls_active else "")
        recipients = [delivery.canonical(r, self.conf) for r in envelope.rcpt_tos]
        received = delivery.received_header(
            self.conf, session.host_name, server.client_name, server.client_addr, proto, qid, recipients,
            server.tls_info, now,
        )
        content = envelope.original_content or b""
        sender = envelope.mail_from or ""
        message_id = header_value(content, b"message-id") or (
            f"<{time.strftime('%Y%m%d%H%M%S', time.localtime(now))}.{qid}@{self.conf.myhostname}>")
        self.log.log("cleanup", f"{qid}: message-id={message_id}")
        self.log.log("qmgr", f"{qid}: from=<{sender}>, size={len(content) + len(received) + 100}, nrcpt={len(recipients)} (queue active)")
        for rcpt in recipients:
            text = delivery.compose(content, sender, rcpt, received, self.conf, qid, now)
            box = delivery.mailbox_for(rcpt, self.conf, self.mailbox_fallback)
            delay = time.time() - server.mail_time
            stamp = f"delay={delay:.2g}, delays={delay:.2g}/0/0/0"
            if box is None or delivery.route(rcpt, self.conf) == "foreign":
                self.log.log("qmgr", f"{qid}: to=<{rcpt}>, relay=none, {stamp}, dsn=5.4.4, status=bounced "
                             "(the lab has no route to the internet)")
                continue
            try:
                delivery.deliver(box, text)
            except OSError as e:
                self.log.log("virtual", f"{qid}: to=<{rcpt}>, relay=virtual, {stamp}, dsn=4.2.0, status=deferred "
                             f"(maildir delivery failed: {e.strerror})")
                continue
            self.log.log("virtual", f"{qid}: to=<{rcpt}>, relay=virtual, {stamp}, dsn=2.0.0, status=sent "
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
            status = _REWRITES.get(status, status)
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

    def _set_post_data_state(self) -> None:
        super()._set_post_data_state()
        self.bdat_state = "none"
        self.bdat_lines, self.bdat_partial, self.bdat_size, self.bdat_error = [], b"", 0, False

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
        parts.append(f"commands={ok}" if ok == total else f"commands={ok}/{total}")
        return replies.LOG_DISCONNECT.format(client=self.client, counts=" ".join(parts))

    def _end(self, why: str | None) -> None:
        """Log how the session ended, once: ``lost connection``/``timeout``/``too many errors``, then disconnect."""
        if self._ended:
            return
        self._ended = True
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
                line = raw.rstrip(b"\n").rstrip(b"\r").decode("utf-8", errors="surrogateescape")
                self._reset_timeout()
                if self.errors >= self.conf.hard_error_limit:
                    await self.push(replies.TOO_MANY_ERRORS.format(myhostname=self.conf.myhostname))
                    why = replies.LOG_TOO_MANY_ERRORS
                    break
                verb, _, arg = line.strip().partition(" ") if " " in line.strip() else (line.strip(), "", "")
                if "\t" in verb:
                    verb, _, rest = verb.partition("\t")
                    arg = f"{rest} {arg}".strip()
                command = verb.upper()
                if not verb:
                    ok = False
                    self.last_command = "UNKNOWN"
                    await self.push(replies.BAD_SYNTAX)
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
                    break
                elif command not in KNOWN_COMMANDS:
                    ok = False
                    self.last_command = "UNKNOWN"
                    await self.push(replies.UNKNOWN_COMMAND)
                    command = "UNKNOWN"
                elif self.conf.level == "encrypt" and not self.tls_active and command not in replies.ALLOWED_BEFORE_TLS:
                    ok = False
                    self.last_command = command
                    await self.push(replies.MUST_STARTTLS)
                else:
                    self.last_command = command
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

    # --- commands -------------------------------------------------------------------------------------
    async def smtp_HELO(self, hostname: str | None) -> bool:
        await super().smtp_HELO(hostname or "")
        self.queue_id = None
        return bool(hostname)

    async def smtp_EHLO(self, hostname: str | None) -> bool:
        await super().smtp_EHLO(hostname or "")
        self.queue_id = None
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
        else:
            self._reset_timeout(self.conf.starttls_timeout)
            try:
                await super().smtp_STARTTLS("")
            except TLSSetupException:
                self.maillog.smtpd(replies.LOG_TLS_ACCEPT_ERROR.format(client=self.client))
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
        if self.envelope.mail_from is not None:
            await self.push(replies.NESTED_MAIL)
            return False
        m = re.match(r"FROM:", arg or "", re.IGNORECASE)
        rest = (arg or "")[m.end():] if m else ""
        if not m or not rest.strip():
            await self.push(replies.SYNTAX_MAIL)
            return False
        address, params = split_address(rest)
        if address is None:
            await self.push(replies.BAD_SENDER)
            return False
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
            elif key not in replies.MAIL_PARAMETERS or key == "BODY":
                await self.push(replies.UNSUPPORTED_OPTION.format(option=param))
                return False
        if self.conf.message_size_limit and self.msg_size > self.conf.message_size_limit:
            await self.push(replies.TOO_BIG)
            return False
        self.envelope.mail_from = address
        self.envelope.mail_options = params
        self.mail_time = time.time()
        await self.push(replies.MAIL_OK)
        return True

    async def smtp_RCPT(self, arg: str | None) -> bool:
        if self.envelope.mail_from is None:
            await self.push(replies.NEED_MAIL)
            return False
        m = re.match(r"TO:", arg or "", re.IGNORECASE)
        rest = (arg or "")[m.end():] if m else ""
        if not m or not rest.strip():
            await self.push(replies.SYNTAX_RCPT)
            return False
        address, params = split_address(rest)
        if not address:
            await self.push(replies.BAD_RECIPIENT)
            return False
        for param in params:
            if param.partition("=")[0].upper() not in replies.RCPT_PARAMETERS:
                await self.push(replies.UNSUPPORTED_OPTION.format(option=param))
                return False
        status = await self._call_handler_hook("RCPT", address, params)
        if status.startswith("2"):
            if self.queue_id is None:
                self.queue_id = delivery.queue_id()
                self.maillog.smtpd(replies.LOG_CLIENT.format(queue_id=self.queue_id, client=self.client))
            self.envelope.rcpt_tos.append(address)
        else:
            self.maillog.smtpd(replies.LOG_REJECT.format(
                queue_id=self.queue_id or "NOQUEUE", command="RCPT", client=self.client, reply=status,
                sender=self.envelope.mail_from, recipient=address,
                proto="ESMTP" if self.session.extended_smtp else "SMTP", helo=self.session.host_name or "",
            ))
        await self.push(status)
        return status.startswith("2")

    async def smtp_VRFY(self, arg: str | None) -> bool:
        if not arg:
            await self.push(replies.SYNTAX_VRFY)
            return False
        address, _params = split_address(arg)
        if not address:
            await self.push(replies.BAD_RECIPIENT)
            return False
        status = await self._call_handler_hook("RCPT", address, [])
        if status.startswith("2"):
            status = replies.VRFY_OK.format(address=arg.strip())
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
        while True:
            raw = await self._data_line()
            if raw is None:
                raise ConnectionResetError("lost connection during DATA")
            crlf = raw.endswith(b"\r\n")
            line = raw[:-2] if crlf else raw.rstrip(b"\n")
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
                too_big = True
                lines.clear()
                continue
            if not too_big:
                lines.append(line)
        if too_big:
            self._set_post_data_state()
            self.queue_id = None
            await self.push(replies.DATA_TOO_BIG)
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
        await self.push(replies.ETRN_UNAVAILABLE.format(domain=arg) if arg else replies.SYNTAX_ETRN)
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
        lines = data.split(b"\n")
        self.bdat_partial = lines.pop()  # an unfinished line waits for the next chunk
        if last and self.bdat_partial:
            lines.append(self.bdat_partial)
            self.bdat_partial = b""
        for line in lines:
            line = line[:-1] if line.endswith(b"\r") else line
            if self.bdat_error:
                continue
            if limit and limit - self.bdat_size < len(line) + 2:
                self.bdat_error = True
                self.maillog.smtpd(f"warning: {self.queue_id or 'NOQUEUE'}: queue file size limit exceeded")
                continue
            self.bdat_size += len(line) + 2
            self.bdat_lines.append(line)
        if not last and not self.bdat_error:
            await self.push(replies.BDAT_CHUNK.format(size=size))
            return True
        if self.bdat_error:
            self._set_rset_state()
            await self.push(replies.DATA_TOO_BIG)
            if not last:
                self.bdat_state = "error"
            return False
        self.envelope.original_content = b"".join(line + b"\r\n" for line in self.bdat_lines)
        self.envelope.content = self.envelope.original_content
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
