"""Parity: the same scripted dialogs against the real lab Postfix 3.7 and the simulator, same main.cf.

Every reply code, enhanced code and text must match (queue ids normalised), for levels none/may/encrypt
with the certificate present, missing and mismatched, plus SMTP smuggling with smtpd_forbid_bare_newline
no/yes/reject, the log lines and the Received: header. Needs root and the Debian postfix package.
"""

from __future__ import annotations

import re
import shutil
import time

import pytest

from labsim import dates
from tests.sim_fixtures import pair_fixture  # noqa: F401  (the 'pair' fixture)
from tests.sim_fixtures import TLS, Pair, diff, run_both, step, wait_for_log

pytestmark = [pytest.mark.postfix, pytest.mark.timeout(240)]

if shutil.which("postfix") is None or shutil.which("postconf") is None:
    pytest.skip("the real Postfix is not installed", allow_module_level=True)

RCPT = "student@lab.itpro.tv"

DIALOGS = {
    "session": [
        "EHLO client.example", "STARTTLS", TLS, "EHLO client.example", "STARTTLS",
        "MAIL FROM:<alice@example.org>", f"RCPT TO:<{RCPT}>", "RCPT TO:<bob@example.com>", "DATA",
        b"Subject: parity\r\n\r\nhello\r\n..dot-stuffed\r\n.\r\n", "QUIT",
    ],
    "helo": [
        "HELO plain.example", "NOOP", "noop ignored", "RSET", "VRFY student", f"VRFY {RCPT}",
        "VRFY x@example.com", "MAIL FROM:<>", "RCPT TO:<x@example.com>", f"RCPT TO:{RCPT}", "RCPT TO:<student>",
        "DATA", b"no header line\r\n.\r\n", "QUIT please",
    ],
    "errors": [
        "FOO", "", "HELP", "EXPN x", "MAIL", "RCPT TO:<x@y>", "DATA", "STARTTLS now", "HELO", "QUIT",
    ],  # at most 10 errors a dialog: past smtpd_soft_error_limit Postfix sleeps 1 s a reply
    "errors-2": [
        "EHLO", "MAIL FROM:<bad", "MAIL FROM:<a@b> SIZE=abc", "MAIL FROM:<a@b> FOO=1", "RSET x", "AUTH PLAIN",
        "ETRN", "NOOP " + "x" * 3000, "MAIL FROM:<" + "a" * 3000 + "@b>", "QUIT",
    ],
    "errors-in-transaction": [
        "EHLO h", "MAIL FROM:<a@b>", "RCPT", "RCPT TO:", "RCPT TO:<>", "RCPT TO:<a b@x>",
        f"RCPT TO:<{RCPT}> FOO=bar", f"RCPT TO:<{RCPT}> NOTIFY=NEVER", "DATA now", "DATA",
        b"x" * 5000 + b"\r\n.\r\n", "MAIL FROM:<a@b> SIZE=99999999999", "MAIL FROM:<a@b> BODY=8BITMIME",
        "RSET", "MAIL FROM:<a@b> BODY=8BITMIME", "QUIT",
    ],
    "forbidden": ["EHLO h", "GET / HTTP/1.0", "NOOP"],
    "forbidden-dot": ["EHLO h", ".", "NOOP"],
    "forbidden-header": ["EHLO h", "Subject: not a command", "NOOP"],
    "gate": [
        "EHLO h", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>", "DATA", "RSET", "VRFY x", "ETRN x", "AUTH PLAIN",
        "BDAT 1", "NOOP", "HELO x", "FOO", "QUIT",
    ],
    "bare-lf-commands": [step(b"EHLO h\nNOOP\n", 2), step(b"MAIL FROM:<a@b>\r\nRCPT TO:<student@lab.itpro.tv>\r\n", 2), "QUIT"],
}

#: STARTTLS with plaintext pipelined behind it (CVE-2011-0411): the NOOP must never be answered.
PIPELINED_STARTTLS = [step(b"EHLO h\r\nSTARTTLS\r\nNOOP\r\n", 2), TLS, "NOOP", "QUIT"]

SMUGGLING = [
    "EHLO h", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>", "DATA",
    step(b"Subject: outer\r\n\r\nbody\n.\r\nMAIL FROM:<evil@b>\r\nRCPT TO:<student@lab.itpro.tv>\r\nDATA\r\n"
         b"Subject: smuggled\r\n\r\nx\r\n.\r\n", None),
    "QUIT",
]

SCENARIOS = [
    ("none", "ok"), ("may", "ok"), ("may", "missing"), ("may", "mismatch"),
    ("encrypt", "ok"), ("encrypt", "missing"), ("encrypt", "mismatch"),
]


@pytest.mark.parametrize("level,cert", SCENARIOS, ids=[f"{lv}-{c}" for lv, c in SCENARIOS])
def test_dialogs_match_postfix(pair: Pair, level: str, cert: str) -> None:
    pair.scenario(level, cert, smtpd_forbid_bare_newline="no")
    problems = []
    dialogs = dict(DIALOGS)
    if cert == "ok" and level != "none":
        dialogs["pipelined-starttls"] = PIPELINED_STARTTLS
    if (level, cert) == ("may", "ok"):  # slow on Postfix (1 s per error past smtpd_soft_error_limit)
        dialogs["too-many-errors"] = ["EHLO h", *["FOO"] * 20, "NOOP", "NOOP"]
    for name, dialog in dialogs.items():
        want, got = pair.both(dialog)
        assert len(want) > 2, f"the real Postfix did not answer dialog {name!r}: {want}"
        if want != got:
            problems.append(diff(name, want, got))
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("forbid", ["no", "yes"])
def test_smuggling_matches_postfix(pair: Pair, forbid: str) -> None:
    pair.scenario("may", "ok", smtpd_forbid_bare_newline=forbid)
    want, got = pair.both(SMUGGLING)
    queued = sum("queued as" in line for line in want)
    assert queued == (2 if forbid == "no" else 1), want  # FACTS.md: 3.7.11's behaviour
    assert want == got, diff("smuggling", want, got)


_TX = [["cmd", "EHLO c"], ["cmd", "MAIL FROM:<a@b>"], ["cmd", f"RCPT TO:<{RCPT}>"]]
BARE_LF_REJECT = {
    # a command with a bare <LF>: 550 where the session is, then the end of it
    "command": [["cmd", "EHLO c"], ["raw", "NOOP\n"], ["cmd", "NOOP"]],
    "first-command": [["raw", "NOOP\n"]],
    "after-starttls": [["cmd", "EHLO c"], ["starttls"], ["raw", "NOOP\n"]],
    "pipelined": [["pipe", ["EHLO c", "NOOP"]], ["raw", "NOOP\r\nNOOP\n"], ["cmd", "NOOP"]],
    "in-transaction": [*_TX, ["raw", "NOOP\n"]],
    # message content: DATA is read to <CR><LF>.<CR><LF> and refused; the session goes on
    "data": [*_TX, ["cmd", "RCPT TO:<student>"], ["data", "Subject: x\r\n\r\nhello\nbare\r\nmore"], ["cmd", "NOOP"],
             ["cmd", "QUIT"]],
    "data-in-headers": [*_TX, ["data", "Subject: x\nMore: y\r\n\r\nbody"], ["cmd", "QUIT"]],
    "data-dot-line": [*_TX, ["data", "hello\r\n.\nmore"], ["cmd", "QUIT"]],
    "data-clean": [*_TX, ["data", "Subject: x\r\n\r\nall CRLF"], ["cmd", "QUIT"]],
    # BDAT: the chunk with the bare <LF> is refused; LAST ends the transaction, an earlier one discards the rest
    "bdat-last": [*_TX, ["bdat", "hello\r\n", False], ["bdat", "bare\n", True], ["cmd", "MAIL FROM:<a@b>"],
                  ["cmd", f"RCPT TO:<{RCPT}>"], ["bdat", "fine\r\n", True], ["cmd", "QUIT"]],
    "bdat-chunk": [*_TX, ["bdat", "Subject: x\r\n\r\nhello\nbare\r\n", False], ["bdat", "x\r\n", True],
                   ["cmd", "RSET"], ["cmd", "QUIT"]],
    "bdat-in-headers": [*_TX, ["bdat", "hello\nx", True], ["cmd", "QUIT"]],
}


@pytest.mark.parametrize("extra", [{}, {"smtpd_forbid_bare_newline_reject_code": "521"},
                                   {"mynetworks": "127.0.0.0/8"}], ids=["550", "521", "excluded"])
@pytest.mark.parametrize("name", list(BARE_LF_REJECT))
def test_bare_newline_reject_matches_postfix(pair: Pair, name: str, extra: dict) -> None:
    """smtpd_forbid_bare_newline = reject (Postfix >= 3.7.10): replies, smtpd/cleanup lines, deliveries."""
    pair.configure(smtpd_tls_security_level="may", smtpd_forbid_bare_newline="reject",
                   smtpd_forbid_bare_newline_reject_code=extra.get("smtpd_forbid_bare_newline_reject_code", "550"),
                   mynetworks=extra.get("mynetworks", ""))
    got = run_both(pair, BARE_LF_REJECT[name])
    (want_r, want_l, want_m), (sim_r, sim_l, sim_m) = got["postfix"], got["sim"]
    refused = [line for line in want_r if "Error: bare <LF> received" in line]
    if name == "data-clean" or extra.get("mynetworks"):
        assert not refused, want_r  # only a bare <LF> is refused; smtpd_forbid_bare_newline_exclusions = $mynetworks
    else:
        code = extra.get("smtpd_forbid_bare_newline_reject_code", "550")
        assert refused and refused[0] == f"< {code} 5.5.2 lab.itpro.tv Error: bare <LF> received", want_r
        assert any("bare <LF> received; " in line for line in want_l), want_l
    assert want_r == sim_r, diff(name, want_r, sim_r)
    assert want_l == sim_l, diff(name + " log", want_l, sim_l)
    assert want_m == sim_m, diff(name + " delivered", want_m, sim_m)


def _smtpd_lines(settings, after: int) -> list[str]:
    text = settings.log_file.read_text(errors="replace")[after:]
    out = []
    for line in text.splitlines():
        m = re.match(rf"{dates.MASKS['log'].pattern} (\S+) postfix/smtpd\[\d+\]: (.*)", line)
        if m and not m.group(2).startswith("warning:"):
            out.append(f"{m.group(1)} {re.sub(r'[0-9A-F]{8,12}', '<QID>', m.group(2))}")
    return out


def test_log_lines_and_received_header_match_postfix(pair: Pair) -> None:
    pair.scenario("may", "ok", smtpd_tls_loglevel="1", smtpd_tls_received_header="yes",
                  smtpd_forbid_bare_newline="no")
    marks = [len(s.log_file.read_text(errors="replace")) for s in (pair.real, pair.sim)]
    before = [set(s.mailbox.joinpath("new").glob("*")) for s in (pair.real, pair.sim)]
    want, got = pair.both(DIALOGS["session"])
    assert want == got, diff("session", want, got)
    logs = []
    for s, mark in zip((pair.real, pair.sim), marks):
        wait_for_log(s, "disconnect from")
        time.sleep(0.3)
        logs.append(_smtpd_lines(s, mark))
    assert logs[0] == logs[1], "\n".join(["Postfix:", *logs[0], "simulator:", *logs[1]])
    assert any("Anonymous TLS connection established" in line for line in logs[1])
    headers = []
    for s, old in zip((pair.real, pair.sim), before):
        deadline = time.monotonic() + 10
        new: list = []
        while time.monotonic() < deadline and not new:
            new = sorted(set(s.mailbox.joinpath("new").glob("*")) - old)
            time.sleep(0.1)
        assert new, f"nothing delivered into {s.mailbox}"
        text = new[-1].read_text()
        head = text.split("\n\n", 1)[0]
        head = re.sub(r"[0-9A-F]{8,12}", "<QID>", head)
        head = dates.mask(head)  # Received:/Date: on any day: Postfix pads days 1-9 with a space
        head = re.sub(r"<\d{14}\.", "<STAMP.", head)
        headers.append(head)
    assert headers[0] == headers[1], "\n".join(["Postfix:", headers[0], "simulator:", headers[1]])


def _ecdsa_cert(path) -> None:
    """A self-signed ECDSA certificate (what certbot 2.x issues by default), to pair with an RSA key."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab.itpro.tv")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("cert", ["mismatch", "missing", "cross-algorithm"])
def test_certificate_warning_matches_postfix(pair: Pair, cert: str) -> None:
    """The log line that explains a broken certificate/key pair reads the same (paths normalised)."""
    marks = [s.log_file.stat().st_size for s in (pair.real, pair.sim)]
    if cert == "cross-algorithm":  # an ECDSA certificate with the RSA snakeoil key
        for s in (pair.real, pair.sim):
            _ecdsa_cert(s.ssl_dir / "ecdsa.pem")
        pair.configure(smtpd_tls_security_level="may", smtpd_tls_cert_file="{ssl}/ecdsa.pem",
                       smtpd_tls_key_file="{ssl}/ssl-cert-snakeoil.key")
    else:
        pair.scenario("may", cert)
    pair.both(["EHLO h", "QUIT"])  # a new smtpd reads main.cf and logs what it dislikes
    time.sleep(0.5)
    found = []
    for s, mark in zip((pair.real, pair.sim), marks):
        text = s.log_file.read_text(errors="replace")[mark:].replace(str(s.ssl_dir), "{ssl}")
        warnings = sorted({m.group(1) for m in re.finditer(r"postfix/smtpd\[\d+\]: (warning: .*disabling TLS.*)", text)})
        found.append(warnings)
    assert found[0], "the real Postfix logged no certificate warning"
    assert found[0] == found[1], found
