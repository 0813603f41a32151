"""A real sending Postfix (``smtp_tls_security_level``) against a real Postfix lab, with and without the
attacker that strips STARTTLS in between. The log wording asserted here is Postfix 3.7.11's own."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim import mailbox, sender
from labsim.backends import postfix
from labsim.mitm import Mitm
from labsim.ports import free_ports
from labsim.settings import Settings

pytestmark = pytest.mark.postfix


@pytest.fixture(scope="module")
def lab() -> Iterator[Settings]:
    """A real Postfix lab at may, and the sending Postfix relaying to the attacker's port."""
    if not postfix.installed() or os.geteuid() != 0:
        pytest.skip("needs root and Debian's postfix package")
    home = Path(tempfile.mkdtemp(prefix="labsim-sender-", dir="/tmp"))
    os.chmod(home, 0o711)  # the postfix user must pass through
    smtp, mitm = free_ports(2)
    s = Settings(home=home / "lab", smtp_port=smtp, mitm_port=mitm, backend="postfix")
    postfix.create_config(s)
    postfix.start(s)
    try:
        sender.up(s, "may", target_port=s.mitm_port)
        yield s
    finally:
        sender.down(s)
        postfix.stop(s)
        shutil.rmtree(home, ignore_errors=True)




def test_may_client_is_fooled_by_the_stripper(lab: Settings) -> None:
    t = uuid.uuid4().hex[:12]
    sender.configure(lab, "may", target_port=lab.mitm_port)
    with Mitm(lab, "strip") as m:
        mid = sender.send(lab, subject=f"may {t}", body=f"pay account 1234 ({t})")
        d = sender.wait_delivery(lab, mid)
        m.wait_closed(1)
    assert d.status == "sent", d.line
    assert d.relay == f"{lab.host}[{lab.host}]:{lab.mitm_port}"
    assert d.reason.startswith("250 2.0.0 Ok: queued as ")
    assert f"C: pay account 1234 ({t})" in m.text()  # the attacker read it
    assert mailbox.find(lab, t)


def test_encrypt_client_defers_then_delivers_without_the_attacker(lab: Settings) -> None:
    t = uuid.uuid4().hex[:12]
    sender.configure(lab, "encrypt", target_port=lab.mitm_port)
    with Mitm(lab, "strip") as m:
        mid = sender.send(lab, subject=f"encrypt {t}", body=f"pay account 1234 ({t})")
        d = sender.wait_delivery(lab, mid)
        m.wait_closed(1)
    reason = f"TLS is required, but was not offered by host {lab.host}[{lab.host}]"
    assert d.status == "deferred" and d.reason == reason, d.line
    assert "dsn=4.7.4" in d.line
    queued = [q.recipients for q in sender.queue(lab) if q.queue_id == d.queue_id]
    assert queued == [[(f"student@{lab.domain}", reason)]]
    assert f"({reason})" in sender.queue_text(lab) and d.queue_id in sender.queue_text(lab)
    assert "C: MAIL FROM" not in m.text() and t not in m.text()  # it quit after EHLO
    assert not mailbox.find(lab, t, timeout=0.5)

    # Without the attacker, the same queued message leaves encrypted on the next try.
    sender.configure(lab, target_port=lab.smtp_port)
    sender.flush(lab)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sender.deliveries(lab, mid)[-1].status != "sent":
        time.sleep(0.1)
    assert sender.deliveries(lab, mid)[-1].status == "sent"
    assert any(f"Untrusted TLS connection established to {lab.host}[{lab.host}]:{lab.smtp_port}: TLSv1.3" in ln
               for ln in sender.tls_lines(lab))
    assert mailbox.find(lab, t)
    assert all(q.queue_id != d.queue_id for q in sender.queue(lab))


def test_tls_off_client_against_encrypt_server_bounces(lab: Settings) -> None:
    """smtpd at encrypt answers MAIL FROM with a 5xx: Postfix's client bounces the message (it does not
    defer it), and the reason quotes the server."""
    t = uuid.uuid4().hex[:12]
    postfix.postconf(lab, "smtpd_tls_security_level=encrypt", check=True)
    postfix.reload(lab)
    try:
        sender.configure(lab, "none", target_port=lab.smtp_port)
        mid = sender.send(lab, subject=f"none {t}", body=t)
        d = sender.wait_delivery(lab, mid)
    finally:
        postfix.postconf(lab, "smtpd_tls_security_level=may", check=True)
        postfix.reload(lab)
    assert d.status == "bounced", d.line
    assert d.reason == (f"host {lab.host}[{lab.host}] said: 530 5.7.0 Must issue a STARTTLS command first "
                        "(in reply to MAIL FROM command)")
    assert not mailbox.find(lab, t, timeout=0.5)
