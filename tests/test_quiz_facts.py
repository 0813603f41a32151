"""Every answer the machine can show is checked against the real Postfix 3.7 on this machine.

Offline kinds (postconf -d defaults, parameter names, paths, manual pages, command output) run against
the installed package; smtp_reply blocks run real SMTP dialogs against the lab's private Postfix
(fixture ``postfix_lab``), grouped by TLS level so the instance is reloaded once per group.
A question whose right answer names a parameter, a reply, a Postfix path or command but carries no
verify block for it fails ``test_every_checkable_fact_is_verified``.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path

import pytest

from quizzes.bank import load_bank
from quizzes.model import Question, SmtpReply
from quizzes.verify import (
    check_offline,
    judge_reply,
    missing_verification,
    postconf_defaults,
    smtp_dialog,
)

BANK = load_bank()
OFFLINE = [q for q in BANK if any(v.kind != "smtp_reply" for v in q.verify)]


@pytest.mark.parametrize("q", OFFLINE, ids=[q.id for q in OFFLINE])
def test_offline_facts(q: Question):
    problems = [p for v in q.verify if v.kind != "smtp_reply" and (p := check_offline(v))]
    assert not problems, f"{q.source}:{q.line}: {q.id}: " + "; ".join(problems)


def test_every_checkable_fact_is_verified():
    params = set(postconf_defaults())
    assert "smtpd_tls_security_level" in params
    missing = {f"{q.source}:{q.line}: {q.id}": m for q in BANK if (m := missing_verification(q, params))}
    assert not missing, missing


def test_the_coverage_rule_catches_an_unverified_parameter():
    q = Question(id="x-q", type="fill", objectives=["lesson-2"], area="tls-config", difficulty=1, prompt="p",
                 answers=["smtpd_tls_loglevel"], explanation="e", references=["r"])
    assert missing_verification(q, set(postconf_defaults()))
    q2 = q.model_copy(update={"answers": ["530"], "tags": ["reply-codes"]})
    assert missing_verification(q2, set(postconf_defaults()))


def test_bank_has_live_checks():
    assert sum(isinstance(v, SmtpReply) for q in BANK for v in q.verify) >= 20


def _live_groups() -> dict[tuple, list[tuple[Question, SmtpReply]]]:
    groups: dict[tuple, list[tuple[Question, SmtpReply]]] = defaultdict(list)
    for q in BANK:
        for v in q.verify:
            if isinstance(v, SmtpReply):
                groups[(v.level, tuple(sorted(v.settings.items())))].append((q, v))
    return groups


def _run_one(settings, v: SmtpReply, since: int) -> str | None:
    """Run a dialog; retry briefly, since smtpd processes from before a reload may still answer once.

    A log line is looked for from ``since`` (the reload of this configuration) on: the warning about a
    broken certificate is logged once, by the first smtpd that reads main.cf, which an earlier dialog of
    the same configuration may have started (smtpd processes are reused)."""
    problem = None
    for _attempt in range(10):
        mark = since
        lines = smtp_dialog(settings.host, settings.smtp_port, v.dialog, domain=settings.domain)
        problem = judge_reply(v, lines)
        if problem is None and v.log_contains:
            problem = f"maillog never showed {v.log_contains!r}"
            for _ in range(20):
                with open(settings.log_file, "rb") as fh:
                    fh.seek(mark)
                    if v.log_contains in fh.read().decode("utf-8", "replace"):
                        problem = None
                        break
                time.sleep(0.1)
        if problem is None:
            return None
        time.sleep(0.3)
    return problem


@pytest.mark.postfix
def test_smtp_replies_against_real_postfix(postfix_lab):
    from labsim import lab
    from labsim.backends import postfix

    settings = postfix_lab
    main_cf = settings.config_dir / "main.cf"
    original = main_cf.read_text()
    failures: list[str] = []
    try:
        for (level, extra), items in sorted(_live_groups().items()):
            main_cf.write_text(original)
            edits = [f"smtpd_tls_security_level={level}"] + [f"{k}={val}" for k, val in extra]
            postfix.postconf(settings, "-e", *edits, check=True)
            since = settings.log_file.stat().st_size if settings.log_file.exists() else 0
            lab.reload(settings)
            time.sleep(0.3)
            for q, v in items:
                problem = _run_one(settings, v, since)
                if problem:
                    failures.append(f"{q.source}:{q.line}: {q.id} (level {level}, {v.dialog}): {problem}")
    finally:
        main_cf.write_text(original)
        lab.reload(settings)
    assert not failures, "\n".join(failures)


# --- facts the courseware once got wrong, checked live so they cannot come back (issue 14) -------------------
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_02 = ROOT / "notebooks" / "02-certificates.ipynb"
NOTEBOOK_03 = ROOT / "notebooks" / "03-configuring-postfix-tls.ipynb"
INSTRUCTOR_NOTEBOOKS = ROOT / "docs" / "instructor-notebooks.md"

CERTBOT_NO_ACTION = "Certificate not yet due for renewal; no action taken."
CERTBOT_KEY_TYPE_QUESTION = "Are you trying to change the key type of the certificate named lab.itpro.tv from {old} to {new}?"
# Postfix 3.7.11: a key of the same algorithm that belongs to another certificate (OpenSSL finds it) ...
SAME_ALGORITHM_LINES = ('warning: cannot get RSA private key from file "{key}": disabling TLS support',
                        "warning: TLS library problem: error:05800074:x509 certificate routines::key values mismatch")
# ... and a key of another algorithm than the certificate's (Postfix's own check)
OTHER_ALGORITHM_LINE = "warning: RSA private key in {key} does not match public key in {cert}: disabling TLS support"


def _markdown(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown")


def test_courseware_quotes_the_live_facts_and_not_the_old_mistakes():
    """The texts that the live tests below check, quoted where the lesson says them; the wrong claims gone."""
    nb02, nb03, notes = _markdown(NOTEBOOK_02), _markdown(NOTEBOOK_03), INSTRUCTOR_NOTEBOOKS.read_text()
    flat = lambda t: re.sub(r"\s+", " ", t)  # noqa: E731 - markdown wraps lines
    for text in (nb02, notes):
        assert CERTBOT_NO_ACTION in flat(text) and "exits 0" in flat(text)
        assert "now stops with the same question" not in flat(text) and "fails on purpose" not in flat(text)
    assert "90 days" in flat(nb02) and "nothing renews the lab's certificate by itself" in flat(nb02)
    key = "/var/lib/labsim/ssl/ssl-cert-snakeoil.key"
    assert SAME_ALGORITHM_LINES[0].format(key=key) in nb03 and SAME_ALGORITHM_LINES[1] in nb03
    assert "key values mismatch" in flat(notes) and "does not match public key" in flat(nb03)
    assert "(`... private key ... does not match public key" not in flat(nb03)
    bank_text = " ".join(f"{q.explanation} {' '.join(c.why for c in q.choices)}" for q in BANK)
    for wrong in ("whether it arrived over TLS", "and a usable certificate, Postfix lists STARTTLS",
                  "from a strict peer", "Postfix only needs a reload", "must use EHLO, because"):
        assert wrong not in bank_text, wrong
    config = (ROOT / "docs" / "config.md").read_text()
    assert "logs nothing about TLS" not in config and "must stay at `may`" not in config


def _certbot(settings, args):
    from labsim import acme

    proc = acme.certbot(settings, args, check=False)
    return proc.returncode, re.sub(r"\s+", " ", proc.stdout + proc.stderr)


def _key_kind(settings) -> str:
    from labsim import certs

    return certs.describe(settings.live_dir() / "fullchain.pem").key_type


@pytest.mark.postfix
def test_certbot_rerun_keeps_the_key_type(postfix_lab):
    """certbot 2.1: the lesson's command makes ECDSA; --key-type rsa needs --cert-name; a re-run of the lesson's
    command afterwards keeps RSA, says 'no action taken' and exits 0 (it does not stop with a question)."""
    from tests.conftest import LESSON_CERTBOT

    s = postfix_lab
    rsa = ["certonly", "--standalone", "--key-type", "rsa", "--rsa-key-size", "4096", "--agree-tos",
           "--preferred-challenges", "http", "-d", "lab.itpro.tv"]
    rc, out = _certbot(s, LESSON_CERTBOT)
    assert rc == 0 and "Successfully received certificate." in out, out
    assert "Certbot has set up a scheduled task to automatically renew" in out  # the lab has no such task
    assert _key_kind(s).startswith("EC"), _key_kind(s)
    rc, out = _certbot(s, rsa)
    assert rc == 1 and CERTBOT_KEY_TYPE_QUESTION.format(old="ECDSA", new="RSA") in out, out
    rc, out = _certbot(s, rsa + ["--cert-name", "lab.itpro.tv"])
    assert rc == 0 and _key_kind(s).startswith("RSA"), out
    rc, out = _certbot(s, LESSON_CERTBOT)
    assert rc == 0 and CERTBOT_NO_ACTION in out and "Are you trying" not in out, out
    assert _key_kind(s).startswith("RSA")
    assert "key_type = rsa" in (s.letsencrypt_dir / "renewal" / "lab.itpro.tv.conf").read_text()


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.mark.postfix
def test_key_mismatch_warning_lines_for_both_algorithms(postfix_lab, tmp_path):
    """What Postfix 3.7.11 logs when smtpd_tls_key_file does not fit smtpd_tls_cert_file, at loglevel 0."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    from labsim import certs, lab
    from labsim.backends import postfix

    s = postfix_lab
    keys = s.home / "quiz-keys"
    keys.mkdir(exist_ok=True)
    other_rsa, ec_key_file, ec_cert = keys / "other-rsa.key", keys / "ec.key", keys / "ec.pem"
    certs.write_private(other_rsa, _pem_key(rsa.generate_private_key(65537, 2048)))
    eck = ec.generate_private_key(ec.SECP256R1())
    certs.write_private(ec_key_file, _pem_key(eck))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, s.domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(eck.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(eck, hashes.SHA256()))
    from cryptography.hazmat.primitives import serialization

    ec_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    rsa_cert = s.snakeoil_cert  # the lab's RSA certificate
    cases = [
        ("RSA certificate, another RSA key", rsa_cert, other_rsa,
         [line.format(key=other_rsa) for line in SAME_ALGORITHM_LINES]),
        ("ECDSA certificate, an RSA key", ec_cert, other_rsa, [OTHER_ALGORITHM_LINE.format(key=other_rsa, cert=ec_cert)]),
        ("RSA certificate, an ECDSA key", rsa_cert, ec_key_file,
         [OTHER_ALGORITHM_LINE.format(key=ec_key_file, cert=rsa_cert)]),
    ]
    main_cf = s.config_dir / "main.cf"
    original = main_cf.read_text()
    failures = []
    try:
        for title, cert_file, key_file, expected in cases:
            main_cf.write_text(original)
            postfix.postconf(s, "-e", "smtpd_tls_security_level=may", "smtpd_tls_loglevel=0", "smtpd_tls_chain_files=",
                             f"smtpd_tls_cert_file={cert_file}", f"smtpd_tls_key_file={key_file}", check=True)
            lab.reload(s)
            seen = ""
            for _ in range(20):  # an smtpd from before the reload may still answer once
                mark = postfix.log_size(s)
                reply = smtp_dialog(s.host, s.smtp_port, ["EHLO client.example", "STARTTLS"], domain=s.domain)
                time.sleep(0.3)
                seen = postfix.log_since(s, mark)
                if "454 4.7.0 TLS not available due to local problem" in reply and all(e in seen for e in expected):
                    break
                time.sleep(0.3)
            else:
                failures.append(f"{title}: expected {expected}, log said {seen[-1500:]!r}")
    finally:
        main_cf.write_text(original)
        lab.reload(s)
    assert not failures, "\n".join(failures)


@pytest.mark.postfix
def test_received_header_says_esmtps_without_smtpd_tls_received_header(postfix_lab):
    from labsim import lab, mailbox
    from labsim.backends import postfix

    s = postfix_lab
    main_cf = s.config_dir / "main.cf"
    original = main_cf.read_text()
    try:
        for value in ("no", "yes"):
            main_cf.write_text(original)
            postfix.postconf(s, "-e", "smtpd_tls_security_level=may", f"smtpd_tls_received_header={value}", check=True)
            lab.reload(s)
            time.sleep(0.5)
            mailbox.clear(s)
            subject = f"quiz-received-{value}"
            reply = smtp_dialog(s.host, s.smtp_port, [
                "EHLO client.example", "STARTTLS", "EHLO client.example", f"MAIL FROM:<alice@{s.domain}>",
                f"RCPT TO:<student@{s.domain}>", "DATA", f"Subject: {subject}\r\n\r\nbody\r\n."], domain=s.domain)
            assert any(line.startswith("250 2.0.0 Ok: queued as") for line in reply), reply
            (msg,) = [m for m in mailbox.wait_for(s, 1) if m["Subject"] == subject]
            received = re.sub(r"\s+", " ", str(msg["Received"]))
            assert " with ESMTPS id " in received, received
            assert ("(using TLSv1" in received) == (value == "yes"), received
    finally:
        main_cf.write_text(original)
        lab.reload(s)


def _tls_key_kinds(settings, n: int) -> list[str]:
    """Open N STARTTLS sessions at once (so that new smtpd processes start) and name each server key's type."""
    import socket
    import ssl

    from cryptography import x509

    conns = []
    try:
        for _ in range(n):
            sock = socket.create_connection((settings.host, settings.smtp_port), timeout=10)
            f = sock.makefile("rb")

            def reply(f=f) -> bytes:
                while True:
                    line = f.readline()
                    if line[3:4] != b"-":
                        return line
            reply()
            sock.sendall(b"EHLO client.example\r\n")
            reply()
            sock.sendall(b"STARTTLS\r\n")
            assert reply().startswith(b"220 ")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            conns.append(ctx.wrap_socket(sock, server_hostname=settings.domain))
        return [type(x509.load_der_x509_certificate(c.getpeercert(binary_form=True)).public_key()).__name__[:2]
                for c in conns]
    finally:
        for c in conns:
            c.close()


@pytest.mark.postfix
def test_new_smtpd_processes_read_renewed_files_without_reload(postfix_lab):
    """After certbot renews the files in live/, smtpd processes started later present the new certificate
    without a reload; postfix reload makes the idle old ones give way (bank cert-live-symlinks, notebook 02)."""
    from labsim import acme, certs, lab
    from labsim.backends import postfix
    from tests.conftest import LESSON_CERTBOT

    s = postfix_lab
    if not acme.issued(s):
        acme.certbot(s, LESSON_CERTBOT)
    live = s.live_dir()
    before = "RS" if certs.describe(live / "fullchain.pem").key_type.startswith("RSA") else "EC"
    after, new_type = ("EC", "ecdsa") if before == "RS" else ("RS", "rsa")
    main_cf = s.config_dir / "main.cf"
    original = main_cf.read_text()
    try:
        postfix.postconf(s, "-e", "smtpd_tls_security_level=may", "smtpd_tls_chain_files=",
                         f"smtpd_tls_cert_file={live}/fullchain.pem", f"smtpd_tls_key_file={live}/privkey.pem", check=True)
        lab.reload(s)
        time.sleep(1)
        assert _tls_key_kinds(s, 2) == [before] * 2
        rc, out = _certbot(s, ["certonly", "--standalone", "--key-type", new_type, "--agree-tos", "--preferred-challenges",
                               "http", "-d", s.domain, "--cert-name", s.domain])
        assert rc == 0, out
        assert after in _tls_key_kinds(s, 4)  # no reload: the new smtpd processes read the renewed files
        lab.reload(s)
        time.sleep(1)
        assert _tls_key_kinds(s, 2) == [after] * 2
    finally:
        main_cf.write_text(original)
        lab.reload(s)
