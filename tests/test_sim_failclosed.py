"""The simulator never fails open, and fails like Postfix 3.7.11 where Postfix's smtpd dies at start.

The first half needs neither root nor Postfix: every decision point of the simulator (relay control, the
``encrypt`` gate, the TLS level, the certificate, the restriction lists, mynetworks) is listed in
``DECISION_POINTS`` with a configuration it does not understand or that is missing, and the test shows the
answer is a refusal. The second half starts the real Postfix and the simulator with the same bad main.cf
and compares what a client and a learner see: no banner, the same ``fatal:`` line and the master's
``bad command startup -- throttling`` in the lab log, and ``labsim status``'s problems.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time

import pytest

from labsim import lab
from labsim.backends import postfix as lab_postfix
from labsim.backends import sim as sim_backend
from labsim.sim import replies, restrictions
from labsim.maincf.model import MainCf
from labsim.sim.server import KNOWN_COMMANDS
from labsim.sim.simconfig import SimConfig
from tests.sim_fixtures import TLS, new_settings, play, remove_home, wait_for_log

pytestmark = pytest.mark.timeout(300)
RCPT = "student@lab.itpro.tv"
FOREIGN = "b@remote.example"


def _conf(text: str) -> SimConfig:
    return SimConfig.from_maincf(MainCf.from_text("compatibility_level = 3.6\n" + text))


def _rcpt(relay: str, recipient: str = "", client_in_mynetworks: bool = False, local: bool = False) -> str | None:
    req = restrictions.Request(address=RCPT if local else FOREIGN, authorized_destination=local,
                               in_mynetworks=client_in_mynetworks, tls=False)
    return restrictions.check_recipient(relay.split(), recipient.split(), {}, req)


# --- decision points and their defaults (no root, no Postfix) -----------------------------------------------
#: (decision point, what is missing/not understood, a check that returns True when the answer refuses)
DECISION_POINTS = [
    ("relay control", "no smtpd_relay_restrictions, no compatibility_level (3.7's empty default)",
     lambda: SimConfig.from_maincf(MainCf.from_text("mynetworks = 192.0.2.0/24\n")).fatal == restrictions.FATAL_REQUIRED),
    ("relay control", "smtpd_relay_restrictions empty",
     lambda: _conf("smtpd_relay_restrictions =\n").fatal == restrictions.FATAL_REQUIRED),
    ("relay control", "only permits", lambda: _conf("smtpd_relay_restrictions = permit_mynetworks, permit\n").fatal
     is not None),
    ("relay control", "a misspelt restriction", lambda: _conf("smtpd_relay_restrictions = reject_unauth_destinatoin\n")
     .fatal is not None),
    ("relay control", "the required word only behind warn_if_reject",
     lambda: _conf("smtpd_relay_restrictions = warn_if_reject reject_unauth_destination\n").fatal is not None),
    ("relay control", "an unknown restriction before the required one",
     lambda: _rcpt("permit_mynetworks foo_bar reject_unauth_destination") == replies.SERVER_ERROR),
    ("relay control", "an unknown restriction, even for the lab's own domain",
     lambda: _rcpt("foo_bar reject_unauth_destination", local=True) == replies.SERVER_ERROR),
    ("relay control", "a lookup table (not opened by the simulator)",
     lambda: _rcpt("check_client_access:hash:/x reject_unauth_destination") == replies.SERVER_ERROR),
    ("relay control", "a foreign recipient reaching the end of the lists",
     lambda: _rcpt("permit_sasl_authenticated reject_unauth_destination") == replies.RELAY_REJECTED.format(address=FOREIGN)),
    ("relay control", "defer_if_permit, then nothing refuses",
     lambda: (_rcpt("defer_if_permit reject_unauth_destination", local=True) or "").startswith("450 4.7.0")),
    ("relay control", "reject refuses the lab's own domain too",
     lambda: (_rcpt("reject", local=True) or "").startswith("554 5.7.1")),
    ("mynetworks", "an entry the simulator cannot read (hostname, table): not trusted",
     lambda: not _conf("mynetworks = lab.example hash:/etc/x\n").in_networks("127.0.0.1", _conf(
         "mynetworks = lab.example hash:/etc/x\n").mynetworks)),
    ("TLS level", "a misspelt level", lambda: _conf("smtpd_tls_security_level = encrpyt\n").fatal
     == 'Invalid TLS level "encrpyt"'),
    ("TLS level", "a client-only level (dane)", lambda: _conf("smtpd_tls_security_level = dane\n").fatal is not None),
    ("TLS level", "a stronger client level (secure) means encrypt, with Postfix's warning",
     lambda: _conf("smtpd_tls_security_level = secure\n").level == "encrypt"
     and any("unsupported TLS level" in w for w in _conf("smtpd_tls_security_level = secure\n").tls_warnings)),
    ("TLS level", "empty level, smtpd_enforce_tls = yes", lambda: _conf(
        "smtpd_tls_security_level =\nsmtpd_enforce_tls = yes\n").level == "encrypt"),
    ("encrypt gate", "every command not on Postfix's pre-TLS list",
     lambda: set(replies.ALLOWED_BEFORE_TLS) == {"HELO", "EHLO", "STARTTLS", "NOOP", "QUIT", "XCLIENT"}),
    ("certificate", "no certificate at may/encrypt: no TLS context (STARTTLS 454)",
     lambda: _conf("smtpd_tls_security_level = encrypt\nsmtpd_tls_cert_file =\n").tls is None),
    ("certificate", "a missing certificate file", lambda: _conf(
        "smtpd_tls_security_level = encrypt\nsmtpd_tls_cert_file = /nonexistent.pem\n").tls is None),
    ("parameters", "a bad boolean", lambda: _conf("disable_vrfy_command = maybe\n").fatal
     == "bad boolean configuration: disable_vrfy_command = maybe"),
    ("parameters", "a bad time", lambda: _conf("smtpd_timeout = abc\n").fatal
     == "parameter smtpd_timeout: bad time value or unit: abc"),
    ("parameters", "a bad number", lambda: _conf("smtpd_hard_error_limit = abc\n").fatal
     == "bad numerical configuration: smtpd_hard_error_limit = abc"),
    ("parameters", "a bad smtpd_forbid_bare_newline",
     lambda: _conf("smtpd_forbid_bare_newline = bogus\n").fatal == "bad parameter value: 'smtpd_forbid_bare_newline = bogus'"),
    ("parameters", "an undefined restriction class",
     lambda: _conf("smtpd_restriction_classes = foo\n").fatal == "restriction class `foo' needs a definition"),
]


@pytest.mark.parametrize("point,case,refuses", DECISION_POINTS, ids=[f"{p}: {c}" for p, c, _ in DECISION_POINTS])
def test_decision_point_default_refuses(point, case, refuses) -> None:
    assert refuses(), f"{point}: {case} does not refuse"


def test_every_restriction_word_is_decided_or_refused() -> None:
    """Every word the evaluator knows gives a definite answer; any other word refuses (never accepts)."""
    for word in ("permit", "reject", "defer", "defer_if_permit", "permit_mynetworks", "permit_auth_destination",
                 "reject_unauth_destination", "defer_unauth_destination", "check_relay_domains",
                 *restrictions.NEVER_MATCH):
        _rcpt(f"{word} reject_unauth_destination")  # no exception, no server error
        assert _rcpt(f"{word} reject_unauth_destination") != replies.SERVER_ERROR, word
    for word in ("reject_rbl_client", "check_policy_service", "permit_mx_backup", "sleep", "xyzzy", "hash:/x"):
        assert _rcpt(f"{word} reject_unauth_destination", local=True) == replies.SERVER_ERROR, word


def test_decision_points_cover_every_gate_command() -> None:
    """At encrypt, every known command outside the pre-TLS list is refused before TLS (checked live below)."""
    gated = [c for c in KNOWN_COMMANDS if c not in replies.ALLOWED_BEFORE_TLS]
    assert {"MAIL", "RCPT", "DATA", "BDAT", "VRFY", "ETRN", "AUTH", "RSET", "XFORWARD"} <= set(gated)


@pytest.fixture(scope="module")
def sim():
    s = new_settings()
    lab_postfix.create_config(s)
    sim_backend.start(s)
    yield s
    sim_backend.stop(s)
    remove_home(s)


def _set(s, *params: str) -> None:
    lab_postfix.postconf(s, "-e", *params, check=True)
    sim_backend.reload(s)
    time.sleep(0.2)


def test_encrypt_gate_refuses_every_command_but_the_pre_tls_ones(sim) -> None:
    _set(sim, "smtpd_tls_security_level=encrypt")
    try:
        for command in sorted(KNOWN_COMMANDS):
            if command in ("QUIT", "STARTTLS"):
                continue
            got = play(sim.smtp_port, ["EHLO h", f"{command} x"])[-1]
            if command in replies.ALLOWED_BEFORE_TLS:
                assert not got.startswith("< 530"), (command, got)
            else:
                assert got == f"< {replies.MUST_STARTTLS}", (command, got)
    finally:
        _set(sim, "smtpd_tls_security_level=may")


def test_open_relay_configuration_serves_no_one(sim) -> None:
    """The issue's open relay: no compatibility_level, mynetworks = 192.0.2.0/24. No 250 to RCPT, ever."""
    mark = sim.log_file.stat().st_size
    lab_postfix.postconf(sim, "-X", "compatibility_level", "smtpd_relay_restrictions", check=True)
    _set(sim, "mynetworks=192.0.2.0/24")
    try:
        with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=2) as c:
            c.sendall(b"EHLO h\r\nMAIL FROM:<a@b>\r\nRCPT TO:<b@remote.example>\r\n")
            with pytest.raises(socket.timeout):
                c.recv(100)  # no banner, no reply: smtpd is not running
        text = wait_for_log(sim, "throttling")[mark:]
        assert f"postfix/smtpd[" in text and f"fatal: {restrictions.FATAL_REQUIRED}" in text
        assert "bad command startup -- throttling" in text
    finally:
        lab_postfix.postconf(sim, "-e", "compatibility_level=3.6", "mynetworks=", check=True)
        sim_backend.stop(sim)
        sim_backend.start(sim)  # a restart ends the throttle, as with Postfix


def test_bdat_state_is_reset(sim) -> None:
    """Plaintext chunks never reach a message sent after RSET or STARTTLS (the issue's injection)."""
    _set(sim, "smtpd_tls_security_level=may")
    before = set(sim.mailbox.joinpath("new").glob("*"))
    plain = b"Subject: PLAIN-LEAKED\r\n\r\n"
    inner = b"Subject: inside\r\n\r\nhello\r\n"
    for reset in ("RSET", "STARTTLS"):
        dialog = ["EHLO h", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>", f"BDAT {len(plain)}".encode() + b"\r\n" + plain,
                  reset, TLS, "EHLO h", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>",
                  f"BDAT {len(inner)} LAST".encode() + b"\r\n" + inner, "QUIT"]
        got = play(sim.smtp_port, dialog)
        assert f"< 250 2.0.0 Ok: {len(plain)} bytes" in got
        assert any(line.startswith(f"< 250 2.0.0 Ok: {len(inner)} bytes queued as ") for line in got), got
    time.sleep(0.3)
    new = set(sim.mailbox.joinpath("new").glob("*")) - before
    assert len(new) == 2
    for path in new:
        text = path.read_text()
        assert "PLAIN-LEAKED" not in text and "Subject: inside" in text


def test_bdat_size_limit_and_replies(sim) -> None:
    _set(sim, "message_size_limit=1000")
    try:
        big = b"x" * 600 + b"\r\n"
        got = play(sim.smtp_port, ["EHLO h", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>",
                                   b"BDAT 602\r\n" + big, b"BDAT 602\r\n" + big, b"BDAT 602 LAST\r\n" + big, "QUIT"])
        assert got[-8:] == ["> " + repr((b"BDAT 602\r\n" + big)[:80]), "< 250 2.0.0 Ok: 602 bytes",
                           "> " + repr((b"BDAT 602\r\n" + big)[:80]), f"< {replies.BDAT_TOO_BIG}",
                           "> " + repr((b"BDAT 602 LAST\r\n" + big)[:80]), "< 551 5.0.0 Discarded 602 bytes after earlier error",
                           "> b'QUIT\\r\\n'", f"< {replies.BYE}"], got
    finally:
        _set(sim, "message_size_limit=10240000")


def test_message_id_logged_from_the_header(sim) -> None:
    mark = sim.log_file.stat().st_size
    play(sim.smtp_port, ["EHLO h", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>", "DATA",
                         b"Message-Id: <own.id@client.example>\r\nSubject: x\r\n\r\nbody\r\n.\r\n", "QUIT"])
    text = wait_for_log(sim, "own.id")[mark:]
    assert re.search(r"postfix/cleanup\[\d+\]: [0-9A-F]+: message-id=<own.id@client.example>", text), text


# --- the same bad main.cf on the real Postfix and on the simulator (root, Postfix) ---------------------------
FATAL_CASES = {
    "invalid-level": {"smtpd_tls_security_level": "encrpyt"},
    "dane-level": {"smtpd_tls_security_level": "dane"},
    "open-relay": {"compatibility_level": None, "smtpd_relay_restrictions": None, "mynetworks": "192.0.2.0/24"},
    "only-permit": {"smtpd_relay_restrictions": "permit_mynetworks, permit"},
    "bad-boolean": {"disable_vrfy_command": "maybe"},
    "bad-time": {"smtpd_timeout": "abc"},
    "bad-bare-newline": {"smtpd_forbid_bare_newline": "bogus"},
    "undefined-class": {"smtpd_restriction_classes": "foo"},
}

_needs_postfix = pytest.mark.skipif(shutil.which("postfix") is None, reason="the real Postfix is not installed")


def _normal(line: str) -> str:
    line = re.sub(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ ", "", line)
    return re.sub(r"\[\d+\]", "[PID]", re.sub(r"pid \d+", "pid N", line))


def _no_banner(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
        try:
            return repr(c.recv(100))
        except socket.timeout:
            return "no banner"


@pytest.fixture(scope="module")
def pair():
    from tests.sim_fixtures import Pair

    p = Pair()
    for s, backend in ((p.real, "postfix"), (p.sim, "sim")):
        s.state_file.write_text(json.dumps({"backend": backend}))  # what labsim up writes
    try:
        yield p
    finally:
        p.close()


@_needs_postfix
@pytest.mark.postfix
@pytest.mark.parametrize("case", list(FATAL_CASES))
def test_fatal_configuration_fails_like_postfix(pair, case: str) -> None:
    params = FATAL_CASES[case]
    marks = {name: s.log_file.stat().st_size for name, s in (("postfix", pair.real), ("sim", pair.sim))}
    pair.restart(**params)
    try:
        seen = {}
        for name, s in (("postfix", pair.real), ("sim", pair.sim)):
            mark = marks[name]
            banner = _no_banner(s.smtp_port)
            text = wait_for_log(s, "throttling", timeout=8)
            lines = [_normal(ln) for ln in text[mark:].splitlines() if "fatal:" in ln or "throttling" in ln
                     or "exit status" in ln]
            status = lab.status(s)
            problems = [_normal(ln) for ln in status["problems"]]
            seen[name] = (banner, lines, status["running"], status["banner"], problems)
        assert seen["postfix"][1], f"the real Postfix logged no fatal for {params}"
        assert seen["postfix"] == seen["sim"], json.dumps(seen, indent=1)
    finally:
        lab_cf = {"compatibility_level": "3.6", "mynetworks": "",  # what labsim.backends.postfix.create_config writes
                  "smtpd_relay_restrictions": "permit_mynetworks permit_sasl_authenticated defer_unauth_destination"}
        pair.restart(**{k: lab_cf.get(k) for k in params})
