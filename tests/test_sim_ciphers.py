"""smtpd's protocol and cipher settings on both backends, judged by handshakes: the same main.cf, the same
clients (one protocol or one cipher class each, at OpenSSL security level 0 as testssl.sh's are), and what
was negotiated must be the same on the real Postfix and on the simulator. A cipher grade or exclusion Postfix
refuses: the same 220, warning and hang-up on both. See FACTS.md, "The server's ciphers"."""

from __future__ import annotations

import ssl
import time
import warnings
from collections.abc import Iterator

import pytest

from labsim import lab
from labsim.backends import postfix
from labsim.settings import Settings
from labsim.smtpprobe import Conn
from tests.conftest import destroy, make_settings, need_postfix

#: (name, lowest and highest protocol, OpenSSL cipher string) of each probing client
CLIENTS = [
    ("tls1.0", ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1, "ALL:@SECLEVEL=0"),
    ("tls1.1", ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0"),
    ("adh", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "ADH:@SECLEVEL=0"),
    ("aecdh", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "AECDH:@SECLEVEL=0"),
    ("krsa", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "kRSA:@SECLEVEL=0"),
    ("enull", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "eNULL:@SECLEVEL=0"),
    ("ecdhe-sha1", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"),
    ("default", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, "DEFAULT"),
]

#: main.cf settings the lesson and notebook 7 touch; each row is applied on top of the lab's stock main.cf
SETTINGS = [
    {},  # the stock ones: medium grade, >=TLSv1, nothing excluded
    {"smtpd_tls_protocols": ">=TLSv1.2"},
    {"smtpd_tls_ciphers": "high"},
    {"smtpd_tls_exclude_ciphers": "aNULL"},
    {"smtpd_tls_exclude_ciphers": "aNULL, kRSA"},
    {"smtpd_tls_exclude_ciphers": "kRSA+AESGCM ADH"},  # "+": only the suites with both properties
    {"smtpd_tls_ciphers": "null"},
    {"tls_medium_cipherlist": "HIGH:!aNULL"},
    {"smtpd_tls_security_level": "encrypt", "smtpd_tls_ciphers": "export",
     "smtpd_tls_mandatory_ciphers": "high", "smtpd_tls_mandatory_exclude_ciphers": "aNULL"},
    {"smtpd_tls_security_level": "encrypt", "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
     "smtpd_tls_protocols": ">=TLSv1"},
]
DEFAULTS = ["smtpd_tls_security_level=may", "smtpd_tls_protocols=>=TLSv1", "smtpd_tls_mandatory_protocols=>=TLSv1",
            "smtpd_tls_ciphers=medium", "smtpd_tls_mandatory_ciphers=medium", "smtpd_tls_exclude_ciphers=",
            "smtpd_tls_mandatory_exclude_ciphers=", "tls_medium_cipherlist=aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Settings, Settings]]:
    need_postfix()
    real, sim = make_settings("postfix"), make_settings("sim")
    try:
        lab.up(real, "postfix", with_ca=False)
        lab.up(sim, "sim", with_ca=False)
        yield real, sim
    finally:
        destroy(real)
        destroy(sim)


def negotiated(s: Settings, low: ssl.TLSVersion, high: ssl.TLSVersion, ciphers: str) -> str:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # Python deprecates TLSVersion.TLSv1/1_1: these probes need them
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version, ctx.maximum_version = low, high
    try:
        with Conn(s.host, s.smtp_port) as c:
            c.cmd("EHLO probe.example")
            t = c.starttls(s.domain, context=ctx)
            return f"{t.version()} {t.cipher()[0]}"
    except (ssl.SSLError, OSError, ConnectionError):
        return "refused"


def session_lines(s: Settings, mark: int) -> list[str]:
    """smtpd's lines since ``mark`` (without stamp and pid), once the session's disconnect line is there."""
    deadline, lines = time.monotonic() + 10, []
    while time.monotonic() < deadline:
        lines = [ln.split(": ", 1)[1] for ln in postfix.log_since(s, mark).splitlines() if "smtpd[" in ln]
        if any(ln.startswith("disconnect") for ln in lines):
            break
        time.sleep(0.2)
    return lines


def configure(s: Settings, extra: dict[str, str]) -> None:
    postfix.postconf(s, *DEFAULTS, *(f"{k}={v}" for k, v in extra.items()), check=True)
    lab.reload(s)


@pytest.mark.parametrize("extra", SETTINGS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "stock")
def test_the_same_handshakes_as_postfix(pair: tuple[Settings, Settings], extra: dict[str, str]) -> None:
    real, sim = pair
    for s in pair:
        configure(s, extra)
    time.sleep(0.5)
    got = {name: (negotiated(real, lo, hi, c), negotiated(sim, lo, hi, c)) for name, lo, hi, c in CLIENTS}
    assert {k: v for k, v in got.items() if v[0] != v[1]} == {}, got
    # the rows are not all alike: each setting changes what a client gets (a test that cannot fail would not)
    assert len({r for r, _s in got.values()}) > 1


@pytest.mark.parametrize("extra", [{"smtpd_tls_ciphers": "bogus"}, {"smtpd_tls_exclude_ciphers": "!aNULL"},
                                   {"smtpd_tls_security_level": "encrypt", "smtpd_tls_mandatory_ciphers": "bogus"}],
                         ids=["bad-grade", "bad-exclusion", "bad-mandatory-grade"])
def test_a_cipher_setting_postfix_refuses(pair: tuple[Settings, Settings], extra: dict[str, str]) -> None:
    """smtpd still serves: STARTTLS gets 220, then a warning naming the client and a closed connection."""
    logs = []
    for s in pair:
        configure(s, extra)
        mark = postfix.log_size(s)
        assert negotiated(s, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3, "DEFAULT") == "refused"
        logs.append(session_lines(s, mark))
    assert logs[0] == logs[1], logs
    assert any("invalid" in ln and ln.startswith("warning: localhost[127.0.0.1]: ") for ln in logs[0]), logs[0]
    assert "lost connection after STARTTLS from localhost[127.0.0.1]" in logs[0]


def _garbage_after_starttls(s: Settings) -> None:
    import socket

    with socket.create_connection((s.host, s.smtp_port), timeout=10) as c:
        f = c.makefile("rb")
        f.readline()
        for command in (b"EHLO probe.example\r\n", b"STARTTLS\r\n"):
            c.sendall(command)
            while f.readline()[3:4] == b"-":
                pass
        c.sendall(b"HELLO, THIS IS NOT TLS\r\n")
        try:
            c.recv(100)  # the server's TLS alert, or a reset
        except ConnectionResetError:
            pass


@pytest.mark.parametrize("extra,client", [
    ({"smtpd_tls_exclude_ciphers": "aNULL"}, ("adh", ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "ADH:@SECLEVEL=0")),
    ({"smtpd_tls_protocols": ">=TLSv1.2"}, ("tls1.1", ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0")),
    ({}, None),  # not TLS at all after 220 Ready to start TLS
], ids=["no-shared-cipher", "unsupported-protocol", "wrong-version-number"])
def test_a_failed_handshake_logs_as_postfix(pair: tuple[Settings, Settings], extra: dict[str, str], client) -> None:
    """SSL_accept error, then OpenSSL's own reason as Postfix logs it (``warning: TLS library problem: ...``)."""
    logs = []
    for s in pair:
        configure(s, extra)
        mark = postfix.log_size(s)
        if client:
            assert negotiated(s, *client[1:]) == "refused"
        else:
            _garbage_after_starttls(s)
        logs.append(session_lines(s, mark))
    assert logs[0] == logs[1], logs
    assert any(ln.startswith("warning: TLS library problem: error:") for ln in logs[0]), logs[0]
