"""Helpers for the simulator's tests: a scripted raw-socket SMTP client, lab homes, a running simulator.

The client controls every byte (pipelining, bare LFs, STARTTLS followed by plaintext) and records the
replies, so the same dialog can be played against the real Postfix and the simulator and compared.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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
    """A main.cf like the lab's (for tests that do not need labsim.backends.postfix.create_config)."""
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
        from labsim.backends import postfix as real
        from labsim.backends import sim as sim_backend

        self.real = new_settings()
        self.sim = new_settings()
        for s in (self.real, self.sim):
            real.create_config(s)
            certs.self_signed(s.ssl_dir / "other.pem", s.ssl_dir / "other.key", ["other.example"])
        real.start(self.real)
        sim_backend.start(self.sim)
        self.current: dict[str, str] = {}

    def configure(self, **params: str) -> None:
        """Set parameters in both main.cf files (``{ssl}`` is each lab's ssl dir) and reload both."""
        from labsim.backends import postfix as real
        from labsim.backends import sim as sim_backend

        if all(self.current.get(k) == v for k, v in params.items()):
            return
        for s in (self.real, self.sim):
            args = [f"{k}={v.format(ssl=s.ssl_dir)}" for k, v in params.items()]
            real.postconf(s, "-e", *args, check=True)
        real.reload(self.real)
        sim_backend.reload(self.sim)
        self.current.update(params)
        time.sleep(1.2)  # Postfix's master restarts its smtpd processes; the simulator re-reads at once

    def restart(self, **params: str | None) -> None:
        """Set parameters (None removes one, postconf -X) and restart both: the way out of a fatal's throttle."""
        from labsim.backends import postfix as real
        from labsim.backends import sim as sim_backend

        for s in (self.real, self.sim):
            edits = [f"{k}={v.format(ssl=s.ssl_dir)}" for k, v in params.items() if v is not None]
            if edits:
                real.postconf(s, "-e", *edits, check=True)
            removed = [k for k, v in params.items() if v is None]
            if removed:
                real.postconf(s, "-X", *removed, check=True)
        real.stop(self.real)
        sim_backend.stop(self.sim)
        real.start(self.real)
        sim_backend.start(self.sim)
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
        from labsim.backends import postfix as real
        from labsim.backends import sim as sim_backend

        sim_backend.stop(self.sim)
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


# --- sessions from the SMTP command grammar, for differential testing against the real Postfix ---------
# A session is a list of JSON-able steps, so a failing one can be kept in tests/corpus/ and replayed:
#   ["cmd", text]                one command line (CRLF added), one reply
#   ["raw", text]                bytes as they are (latin-1), one reply (bare LF, no line end ...)
#   ["pipe", [text, ...]]        several commands in one write (PIPELINING), one reply each
#   ["data", body]               DATA; the body (ending "\r\n.\r\n" added) only after a 354
#   ["bdat", chunk, last]        BDAT len(chunk) [LAST]; the chunk only if no early reply (the encrypt gate)
#   ["starttls"]                 STARTTLS, and the TLS handshake after a 220
SESSION_TIMEOUT = 3.0


def _tls_wrap(sock: socket.socket) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(sock)


def play_session(port: int, steps: list, bdat_wait: float = 0.15) -> list[str]:
    """Run a generated session; the transcript has ``> step`` and ``< reply`` entries, ``[closed]`` at EOF."""
    out: list[str] = []
    sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=SESSION_TIMEOUT)
    buf = bytearray()

    def reply(timeout: float = SESSION_TIMEOUT) -> str | None:
        r = read_reply(sock, buf, timeout)
        out.append(f"< {r}" if r is not None else "[closed]")
        return r

    def send(data: bytes) -> bool:
        try:
            sock.sendall(data)
            return True
        except OSError:
            out.append("[closed]")
            return False

    try:
        if reply() is None:
            return out
        for kind, *args in steps:
            out.append(f"> {kind} {json.dumps(args)[:100]}")
            if kind in ("cmd", "raw"):
                data = args[0].encode("latin-1") + (b"\r\n" if kind == "cmd" else b"")
                if not send(data) or reply() is None:
                    return out
            elif kind == "pipe":
                if not send(b"".join(c.encode("latin-1") + b"\r\n" for c in args[0])):
                    return out
                for _ in args[0]:
                    if reply() is None:
                        return out
            elif kind == "data":
                if not send(b"DATA\r\n"):
                    return out
                r = reply()
                if r is None:
                    return out
                if r.startswith("354") and (not send(args[0].encode("latin-1") + b"\r\n.\r\n") or reply() is None):
                    return out
            elif kind == "bdat":
                chunk, last = args[0].encode("latin-1"), args[1]
                if not send(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode()):
                    return out
                early = read_reply(sock, buf, bdat_wait)
                if early is not None:
                    out.append(f"< {early}")
                    continue
                if not send(chunk) or reply() is None:
                    return out
            elif kind == "starttls":
                if not send(b"STARTTLS\r\n"):
                    return out
                r = reply()
                if r is None:
                    return out
                if r.startswith("220"):
                    try:
                        sock = _tls_wrap(sock)
                    except (ssl.SSLError, OSError) as e:
                        out.append(f"[TLS failed {type(e).__name__}]")
                        return out
                    buf.clear()
                    out.append(f"[TLS {sock.version()}]")
            else:
                raise ValueError(f"unknown step {kind!r}")
    finally:
        sock.close()
    return out


def session_strategy():
    """A hypothesis strategy of sessions from the command grammar (see ``play_session`` for the steps)."""
    from hypothesis import strategies as st

    local = "student@lab.itpro.tv"
    addresses = st.sampled_from([
        f"<{local}>", "<Student@LAB.ITPRO.TV>", "<b@remote.example>", "<postmaster>", "<student>", "<>",
        local, "<a b@x>", "<bad", '<"q u"@lab.itpro.tv>', "<x@lab.itpro.tv.>", "<@route:x@remote.example>",
        '<"a b"@remote.example>', '<"student"@lab.itpro.tv>', '"q u"@lab.itpro.tv', '<"a"b@lab.itpro.tv>',
    ])
    senders = st.sampled_from(["<>", "<alice@example.org>", "<bad", "alice@example.org", "<a@b>", '<"a b"@example.org>',
                               '<"alice"@example.org>'])
    mail_params = st.lists(st.sampled_from(["SIZE=100", "SIZE=99999999999", "SIZE=abc", "BODY=8BITMIME",
                                            "BODY=7BIT", "BODY=BINARYMIME", "SMTPUTF8", "FOO=1", "RET=HDRS",
                                            "ENVID=x", "AUTH=<>"]), max_size=2)
    rcpt_params = st.lists(st.sampled_from(["NOTIFY=NEVER", "ORCPT=rfc822;x@y", "FOO=bar"]), max_size=1)
    verb_case = st.sampled_from([str.upper, str.lower, str.title])

    def mail(case, sender, params):
        return ["cmd", " ".join([case("MAIL") + " FROM:" + sender, *params])]

    def rcpt(case, address, params):
        return ["cmd", " ".join([case("RCPT") + " TO:" + address, *params])]

    line = st.sampled_from(["Subject: generated", "From: <a@b>", "", "hello", ".dot", "..two dots", "x" * 1100,
                            "tab\there", "caf\xe9", "Message-Id: <gen@client.example>", " folded"])
    ending = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"])
    body = st.lists(st.tuples(line, ending), max_size=6).map(lambda ls: "".join(a + b for a, b in ls))
    chunk = st.lists(st.tuples(line, ending), min_size=0, max_size=3).map(lambda ls: "".join(a + b for a, b in ls))

    simple = st.one_of(
        st.builds(lambda c, h: ["cmd", f"{c('EHLO')} {h}".strip()], verb_case, st.sampled_from(["client.example", "", "[127.0.0.1]"])),
        st.builds(lambda c, h: ["cmd", f"{c('HELO')} {h}".strip()], verb_case, st.sampled_from(["client.example", ""])),
        st.builds(mail, verb_case, senders, mail_params),
        st.builds(rcpt, verb_case, addresses, rcpt_params),
        st.sampled_from([["cmd", "RSET"], ["cmd", "RSET x"], ["cmd", "NOOP"], ["cmd", "NOOP hello"],
                         ["cmd", "VRFY student"], ["cmd", "VRFY <b@remote.example>"], ["cmd", "VRFY"],
                         ["cmd", "ETRN lab.itpro.tv"], ["cmd", "ETRN"], ["cmd", "XCLIENT NAME=x"], ["cmd", "XCLIENT"],
                         ["cmd", "XFORWARD NAME=x"], ["cmd", "XFORWARD"], ["cmd", "AUTH PLAIN AGVhAGU="],
                         ["cmd", "AUTH"], ["cmd", "EXPN x"], ["cmd", "HELP"], ["cmd", "FOO bar"], ["cmd", ""],
                         ["cmd", "DATA x"], ["cmd", "STARTTLS x"], ["cmd", "NOOP " + "y" * 3000],
                         ["cmd", "MAIL FROM:<" + "a" * 3000 + "@b>"], ["raw", "NOOP\n"], ["raw", "RSET\r\r\n"],
                         ["cmd", "BDAT"], ["cmd", "BDAT x"], ["cmd", "BDAT 1 MORE"], ["cmd", " NOOP"],
                         ["cmd", "MAIL  FROM:<a@b>"], ["cmd", "RCPT TO: <student@lab.itpro.tv>"]]),
    )
    steps = st.one_of(
        simple, simple, simple,
        st.builds(lambda b: ["data", b], body),
        st.builds(lambda c, last: ["bdat", c, last], chunk, st.booleans()),
        st.just(["starttls"]),
        st.lists(st.sampled_from(["NOOP", "RSET", "MAIL FROM:<a@b>", f"RCPT TO:<{local}>", "VRFY student",
                                  "RCPT TO:<b@remote.example>"]), min_size=2, max_size=4).map(lambda cs: ["pipe", cs]),
    )
    opening = st.sampled_from([[["cmd", "EHLO client.example"]], [["cmd", "HELO client.example"]], [],
                               [["cmd", "EHLO client.example"], ["starttls"], ["cmd", "EHLO client.example"]]])
    transaction = st.builds(
        lambda s, r, d: [["cmd", f"MAIL FROM:{s}"], ["cmd", f"RCPT TO:{r}"], d], senders, addresses,
        st.one_of(st.builds(lambda b: ["data", b], body),
                  st.builds(lambda a, b: [["bdat", a, False], ["bdat", b, True]], chunk, chunk)))

    def flatten(parts):
        out = []
        for p in parts:
            if p and isinstance(p[0], list):
                out.extend(flatten(p))
            else:
                out.append(p)
        return out

    body_steps = st.lists(st.one_of(steps, steps, transaction), min_size=1, max_size=7)
    return st.builds(lambda o, b, q: flatten([*o, *b, *q]), opening, body_steps,
                     st.sampled_from([[["cmd", "QUIT"]], []]))


def normalise_session(transcript: list[str]) -> list[str]:
    return [QUEUE_ID.sub("<QID>", line) for line in transcript]


def smtpd_log_lines(text: str) -> list[str]:
    """The smtpd lines, then the cleanup lines, of a stretch of lab log (no stamps, pids, queue ids)."""
    from labsim.dates import MASKS
    from labsim.sim.known_differences import PROCESS_START_LINES

    out = []
    matches = [m for m in (re.match(MASKS["log"].pattern + r" \S+ postfix/(smtpd|cleanup)\[\d+\]: (.*)", line)
                           for line in text.splitlines()) if m]
    ours = {q for m in matches if m.group(1) == "smtpd" for q in QUEUE_ID.findall(m.group(2))}
    cut = {q for m in matches if m.group(1) == "smtpd" and ("queue file size limit exceeded" in m.group(2)
                                                             or "reject: END-OF-MESSAGE" in m.group(2))
           for q in QUEUE_ID.findall(m.group(2))}
    for m in matches:
        if m.group(1) == "cleanup" and not set(QUEUE_ID.findall(m.group(2))) & ours:
            continue  # another message's (a bounce, a notice to the postmaster): not this session's
        if m.group(1) == "cleanup" and set(QUEUE_ID.findall(m.group(2))) & cut and "message-id=" in m.group(2):
            # a message cut at the size limit or refused at its end (a bare <LF>): whether cleanup got its
            # headers before smtpd dropped the stream is timing (3.7.11 logs the message-id in some runs and not
            # in others; seen for both)
            continue
        if PROCESS_START_LINES.match(m.group(2)):
            continue  # a new smtpd process's start-up warnings: not per session (known_differences)
        text = re.sub(r"<\d{14}\.", "<STAMP.", QUEUE_ID.sub("<QID>", m.group(2)))  # an added Message-Id
        out.append(f"{m.group(1)}: {text}")
    # smtpd and cleanup are separate processes writing when they get to it: compare each one's lines in
    # order, not how the two interleave
    return [ln for ln in out if ln.startswith("smtpd:")] + [ln for ln in out if ln.startswith("cleanup:")]


def _log_since(settings: Settings, mark: int) -> str:
    with open(settings.log_file, "rb") as f:
        f.seek(mark)
        return f.read().decode("utf-8", errors="replace")


QUEUED = re.compile(r"queued as ([0-9A-F]{8,12})\b")


def normalise_message(raw: bytes) -> str:
    """A delivered message with what varies by run masked: queue ids, dates, the Message-Id stamp."""
    from labsim.dates import MASKS

    text = raw.decode("utf-8", errors="backslashreplace")
    text = MASKS["header"].sub("<DATE>", QUEUE_ID.sub("<QID>", text))
    return re.sub(r"<\d{14}\.<QID>@", "<STAMP.<QID>@", text)


def _first_received_id(raw: bytes) -> str | None:
    """The queue id in a message's first Received: header (smtpd's, for the message it received)."""
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", errors="replace")
    m = re.search(r"^Received:.*?(?=^\S|\Z)", head, re.MULTILINE | re.DOTALL)
    found = m and re.search(r"\bid ([0-9A-F]{8,12})\b", m.group(0))
    return found.group(1) if found else None


def delivered_messages(settings: Settings, qids: list[str], timeout: float = 10.0) -> list[str]:
    """The messages the session's queue ids delivered into the lab mailbox, normalised, in queue-id order
    (within one message: sorted, as Postfix's deliveries of one message may finish in any order).

    Waits for each id's ``removed`` log line (qmgr's, when every delivery is done; Postfix delivers after
    the reply, the simulator before it). Bounces and notices (another queue id) are not this session's."""
    from labsim import mailbox

    deadline = time.monotonic() + timeout
    while qids and time.monotonic() < deadline:
        text = settings.log_file.read_text(errors="replace")
        if all(f"{q}: removed" in text for q in qids):
            break
        time.sleep(0.02)
    by_id: dict[str, list[str]] = {q: [] for q in qids}
    for path in mailbox.files(settings):
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        qid = _first_received_id(raw)
        if qid in by_id:
            by_id[qid].append(normalise_message(raw))
    return [m for q in qids for m in sorted(by_id[q])]


def run_both(pair: "Pair", steps: list, logs: bool = True, messages: bool = True
             ) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """One generated session against the real Postfix and the simulator:
    {backend: (replies, log lines, delivered messages)}, each normalised."""
    from labsim import mailbox

    out = {}
    for name, s in (("postfix", pair.real), ("sim", pair.sim)):
        if messages:
            mailbox.clear(s)
        mark = s.log_file.stat().st_size
        raw_transcript = play_session(s.smtp_port, steps)
        transcript = normalise_session(raw_transcript)
        lines: list[str] = []
        if logs:
            deadline = time.monotonic() + 3
            text = ""
            while time.monotonic() < deadline:
                # only whole lines: the logger may be caught half-way through writing the disconnect line
                raw = _log_since(s, mark)
                text = raw[: raw.rfind("\n") + 1]
                if "disconnect from" in text:
                    break
                time.sleep(0.01)
            lines = smtpd_log_lines(text)
            crashed = re.search(r"warning: process \S+/smtpd pid \d+ killed by signal \d+", text)
            if crashed and name == "postfix":
                # 3.7.11's smtpd can crash (known_differences: bdat-error-keeps-recipients); the master may
                # then throttle smtpd for 60 s, and every later session would time out: say so, start over
                pair.restart()
                raise AssertionError(f"Postfix's smtpd crashed ({crashed.group(0)}) in this session")
        delivered: list[str] = []
        if messages:
            qids = [q for line in raw_transcript for q in QUEUED.findall(line)]
            delivered = delivered_messages(s, qids)
        out[name] = (transcript, lines, delivered)
    return out


@pytest.fixture(scope="module", name="pair")
def pair_fixture():
    """A real Postfix and the simulator side by side for one module (import this fixture to use it)."""
    p = Pair()
    try:
        yield p
    finally:
        p.close()
