"""The lesson's whole path on the real, private Postfix, with a real certificate from the lab CA."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from labsim import acme, certs, lab, procs
from labsim.backends import postfix
from labsim.errors import LabError
from labsim.smtpprobe import dialog, starttls_handshake

from .conftest import LESSON_CERTBOT

pytestmark = pytest.mark.postfix


def sh(settings, command: str) -> subprocess.CompletedProcess[str]:
    """Run a command line as a student types it, with the lab's environment (MAIL_CONFIG)."""
    env = {**os.environ, **settings.env()}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120)


def test_starts_like_a_stock_debian_install(postfix_lab):
    s = postfix_lab
    out = sh(s, "postconf | grep 'smtpd_tls_cert\\|smtpd_tls_key'").stdout
    assert f"smtpd_tls_cert_file = {s.snakeoil_cert}" in out
    assert f"smtpd_tls_key_file = {s.snakeoil_key}" in out
    assert sh(s, "postconf smtpd_tls_security_level").stdout.strip() == "smtpd_tls_security_level = may"
    # postconf -d shows the compiled-in default: empty, as FACTS.md says.
    assert sh(s, "postconf -d smtpd_tls_security_level").stdout.strip() == "smtpd_tls_security_level ="
    banner = dialog(s.host, s.smtp_port, [])[0]
    assert banner == f"220 {s.domain} ESMTP Postfix (Debian/GNU)"
    # The stock certificate is self-signed: it encrypts, but a verifying client refuses it.
    with pytest.raises(LabError, match="self-signed"):
        certs.verify_chain(s.snakeoil_cert, s.lab_ca, s.domain)
    hs = starttls_handshake(s.host, s.smtp_port, s.domain, s.lab_ca)
    assert not hs.ok and "certificate verification failed" in hs.error
    unverified = starttls_handshake(s.host, s.smtp_port, s.domain, None, verify=False)
    assert unverified.ok and unverified.protocol.startswith("TLSv1")


def test_may_accepts_plaintext_mail(postfix_lab):
    s = postfix_lab
    replies = dialog(s.host, s.smtp_port, ["EHLO client.example", "MAIL FROM:<a@example.org>",
                                          f"RCPT TO:<student@{s.domain}>", "RCPT TO:<x@example.com>"])
    assert "250-STARTTLS" in replies[1]
    assert replies[2] == "250 2.1.0 Ok"
    assert replies[3] == "250 2.1.5 Ok"
    assert replies[4] == "454 4.7.1 <x@example.com>: Relay access denied"  # never an open relay


def test_lesson_certbot_postconf_restart_verify(postfix_lab):
    s = postfix_lab
    proc = sh(s, "labsim certbot " + " ".join(LESSON_CERTBOT))
    assert proc.returncode == 0, proc.stderr
    live = s.live_dir("lab.itpro.tv")
    full, key = live / "fullchain.pem", live / "privkey.pem"
    assert full.exists() and key.exists()
    assert stat.S_IMODE(key.resolve().stat().st_mode) == 0o600
    assert len(certs.load_chain(full)) >= 2  # the certificate and pebble's intermediate
    certs.verify_chain(full, s.lab_ca, "lab.itpro.tv")  # raises when it does not verify

    # The lesson's commands, as typed, aimed at the lab by MAIL_CONFIG.
    assert sh(s, f"postconf -e 'smtpd_tls_cert_file={full}'").returncode == 0
    assert sh(s, f"postconf -e 'smtpd_tls_key_file={key}'").returncode == 0
    lab.restart(s)

    st = lab.status(s)
    assert (st["cert_file"], st["key_file"]) == (str(full), str(key))
    assert st["banner"] and st["problems"] == []
    hs = starttls_handshake(s.host, s.smtp_port, "lab.itpro.tv", s.lab_ca)
    assert hs.ok, hs.error
    assert hs.protocol == "TLSv1.3"
    assert "lab.itpro.tv" in hs.subject
    assert "STARTTLS" not in hs.ehlo_after  # never offered again inside TLS
    # ... and with the wrong name, verification fails: the name check is real.
    wrong = starttls_handshake(s.host, s.smtp_port, "mail.example.com", s.lab_ca)
    assert not wrong.ok and "verification failed" in wrong.error


def test_encrypt_refuses_plaintext_mail(postfix_lab):
    s = postfix_lab
    postfix.postconf(s, "-e", "smtpd_tls_security_level=encrypt", check=True)
    lab.reload(s)
    try:
        replies = dialog(s.host, s.smtp_port, ["EHLO client.example", "MAIL FROM:<a@example.org>", "NOOP"])
        assert replies[1].startswith("250-")  # EHLO is still accepted
        assert replies[2] == "530 5.7.0 Must issue a STARTTLS command first"
        assert replies[3] == "250 2.0.0 Ok"
        assert lab.status(s)["tls_security_level"] == "encrypt"
    finally:
        postfix.postconf(s, "-e", "smtpd_tls_security_level=may", check=True)
        lab.reload(s)


def test_status_reports_mismatched_key_from_the_log(postfix_lab):
    s = postfix_lab
    before = postfix.get(s, "smtpd_tls_key_file")
    cert = postfix.get(s, "smtpd_tls_cert_file")
    other = s.home / "other.key"
    certs.self_signed(s.home / "other.pem", other, ["other.example"])
    postfix.postconf(s, "-e", f"smtpd_tls_key_file={other}", check=True)
    lab.reload(s)
    try:
        st = lab.status(s)
        assert any("does not match public key" in line for line in st["problems"]), st["problems"]
        replies = dialog(s.host, s.smtp_port, ["EHLO x", "STARTTLS"])
        assert replies[2] == "454 4.7.0 TLS not available due to local problem"
        findings = lab.doctor(s)
        bad = [f for f in findings if not f.ok]
        assert any(f"private key {other} does not belong to certificate {cert}" in f.what for f in bad)
    finally:
        postfix.postconf(s, "-e", f"smtpd_tls_key_file={before}", check=True)
        lab.restart(s)


def test_invalid_level_is_explained_by_status(lab_settings):
    s = lab_settings
    lab.up(s, "postfix", with_ca=False)
    postfix.postconf(s, "-e", "smtpd_tls_security_level=encrpyt", check=True)
    lab.reload(s)
    st = lab.status(s)
    assert st["banner"] is None  # smtpd dies at start: no greeting
    assert any('fatal: Invalid TLS level "encrpyt"' in line for line in st["problems"])
    hints = [f.hint for f in lab.doctor(s) if not f.ok]
    assert any("none, may or encrypt" in h for h in hints)


def test_down_leaves_no_process(lab_settings):
    s = lab_settings
    lab.up(s, "postfix")
    assert lab.status(s)["running"] and acme.is_running(s)
    lab.down(s)
    left = procs.mentioning(str(s.home))
    assert left == []
    assert not postfix.is_running(s) and not acme.is_running(s)


def test_certbot_failure_quotes_the_ca(postfix_lab):
    s = postfix_lab
    with pytest.raises(LabError) as e:
        acme.certbot(s, ["certonly", "--standalone", "--agree-tos", "-d", "bad_name.itpro.tv"])
    text = str(e.value)
    assert "certbot failed" in text
    assert "illegal character" in text  # the CA's own refusal of the name
