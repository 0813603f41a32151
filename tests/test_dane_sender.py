"""DANE against the attacker, with real software on both ends: a real sending Postfix at
``smtp_tls_security_level = dane`` with ``smtp_dns_support_level = dnssec``, resolving through the lab's
validating unbound (in a private mount namespace where /etc/resolv.conf names it), delivering to the real
lab Postfix whose certificate the signed TLSA record pins. The log wording is Postfix 3.7.11's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim import dane, dns, lab, mailbox, sender
from labsim.backends import postfix
from labsim.mitm import Mitm
from labsim.settings import Settings
from tests.conftest import destroy, make_settings, need_postfix

pytestmark = pytest.mark.postfix
SYSTEM_RESOLV = Path("/etc/resolv.conf")


@pytest.fixture(scope="module")
def dlab() -> Iterator[Settings]:
    need_postfix()
    before = SYSTEM_RESOLV.read_bytes()
    s = make_settings("postfix")
    try:
        lab.up(s, "postfix", with_ca=False)
        dns.up(s)
        dane.up(s, "dane")
        yield s
    finally:
        destroy(s)
    assert SYSTEM_RESOLV.read_bytes() == before, "the system's /etc/resolv.conf changed"




def test_the_sender_resolves_through_the_lab_only(dlab: Settings) -> None:
    seen = dane.resolv_conf_seen_by_sender(dlab)
    assert f"nameserver {dns.resolver_address(dlab)}" in seen and "trust-ad" in seen
    assert dns.resolver_address(dlab) not in SYSTEM_RESOLV.read_text()  # only inside its namespace
    a = dns.dig(dlab.with_(host=dns.resolver_address(dlab)), dlab.domain, "A", port=53)
    assert a.secure, a.text  # the resolver the sender uses validates
    conf = postfix.get_many(sender.settings_for(dlab), "smtp_dns_support_level", "smtp_tls_security_level",
                            "relayhost")
    assert conf == {"smtp_dns_support_level": "dnssec", "smtp_tls_security_level": "dane",
                    "relayhost": f"[{dlab.domain}]:{dlab.smtp_port}"}


def test_dane_client_verifies_the_lab_server(dlab: Settings) -> None:
    t = uuid.uuid4().hex[:12]
    dane.configure(dlab, "dane", target_port=dlab.smtp_port)
    mark = dane.log_mark(dlab)
    d = dane.send_and_wait(dlab, f"dane {t}", f"hello ({t})")
    assert d.status == "sent", d.line
    assert d.relay == f"{dlab.domain}[127.0.0.1]:{dlab.smtp_port}"
    lines = dane.tls_lines_since(dlab, mark)
    assert any(f"Verified TLS connection established to {dlab.domain}[127.0.0.1]:{dlab.smtp_port}: TLSv1" in ln
               for ln in lines), lines
    assert mailbox.find(dlab, t)


def test_behind_the_stripper_dane_defers_while_may_is_fooled(dlab: Settings) -> None:
    t = uuid.uuid4().hex[:12]
    dane.configure(dlab, "dane", target_port=dlab.mitm_port)
    with Mitm(dlab, "strip") as m:
        d = dane.send_and_wait(dlab, f"dane strip {t}", f"pay account 1234 ({t})")
        m.wait_closed(1)
    reason = f"TLS is required, but was not offered by host {dlab.domain}[127.0.0.1]"
    assert d.status == "deferred" and d.reason == reason, d.line
    assert "dsn=4.7.4" in d.line
    assert f"({t})" not in m.text()  # the attacker saw no message
    assert d.queue_id in sender.queue_text(dlab)
    sender.clear_queue(dlab)
    # the same attacker, a client at may: sent in clear, read by the attacker
    u = uuid.uuid4().hex[:12]
    dane.configure(dlab, "may", target_port=dlab.mitm_port)
    try:
        with Mitm(dlab, "strip") as m:
            d = dane.send_and_wait(dlab, f"may strip {u}", f"pay account 1234 ({u})")
            m.wait_closed(1)
        assert d.status == "sent", d.line
        assert f"C: pay account 1234 ({u})" in m.text()
        assert mailbox.find(dlab, u)
    finally:
        dane.configure(dlab, "dane", target_port=dlab.smtp_port)


def test_a_wrong_tlsa_digest_makes_the_client_refuse_and_say_why(dlab: Settings) -> None:
    t = uuid.uuid4().hex[:12]
    wrong = "00" * 32
    dane.configure(dlab, "dane", target_port=dlab.smtp_port)
    try:
        dns.publish(dlab, dns.default_zone(dlab, wrong))
        assert dns.dig(dlab, dns.tlsa_name(dlab, dlab.smtp_port), "TLSA").secure  # validly signed, but wrong
        mark = dane.log_mark(dlab)
        d = dane.send_and_wait(dlab, f"wrong {t}", f"x ({t})")
        assert d.status == "deferred" and d.reason == "Server certificate not verified", d.line
        assert "dsn=4.7.5" in d.line
        log = postfix.log_since(sender.settings_for(dlab), mark)
        why = f"server certificate verification failed for {dlab.domain}[127.0.0.1]:{dlab.smtp_port}: " \
              "num=65:no matching DANE TLSA records"
        assert why in log, log
        assert not mailbox.find(dlab, t, timeout=1)
    finally:
        dns.publish(dlab, dns.default_zone(dlab))
        sender.clear_queue(dlab)
