"""MTA-STS with real parts: the lab zone's _mta-sts record, the policy over HTTPS with a certificate the lab CA
issued (certbot), postfix-mta-sts-resolver as the sending Postfix's smtp_tls_policy_maps socketmap, and the
attacker who strips STARTTLS. The log wording is Postfix 3.7.11's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from labsim import dane, dns, lab, mtasts, notebook, postfix, procs, sender
from labsim.mitm import Mitm
from labsim.settings import Settings
from tests.conftest import destroy, make_settings, need_postfix

pytestmark = pytest.mark.postfix


@pytest.fixture(scope="module")
def slab() -> Iterator[Settings]:
    need_postfix()
    s = make_settings("postfix")
    try:
        lab.up(s, "postfix")
        notebook._solve_certificate(s)  # the lab server serves the lab CA's certificate for lab.itpro.tv
        notebook._solve_postfix_tls(s)
        dns.up(s)
        mtasts.up(s, "enforce")
        dane.up(s, "may")
        yield s
    finally:
        home = str(s.home)
        destroy(s)
        assert procs.mentioning(home) == []


def test_policy_is_published_and_fetched_over_verified_https(slab: Settings) -> None:
    txt = dns.dig(slab, f"_mta-sts.{slab.domain}", "TXT")
    assert txt.secure and '"v=STSv1; id=' in txt.records[0]
    out = mtasts.query(slab)
    assert out.startswith("(<STSFetchResult.VALID: 1>"), out
    assert "'mode': 'enforce'" in out and f"'mx': ['{slab.domain}']" in out
    # the same fetch trusting another CA (the snakeoil certificate) fails: the HTTPS certificate is checked
    bad = mtasts.query(slab, cafile=slab.snakeoil_cert)
    assert "VALID: 1" not in bad, bad


def test_enforce_verifies_and_defers_behind_the_stripper_while_without_it_may_is_fooled(slab: Settings) -> None:
    s = sender.settings_for(slab)
    mtasts.configure_sender(slab, target_port=slab.smtp_port)
    assert postfix.get(s, "smtp_tls_policy_maps") == f"socketmap:inet:{slab.host}:{slab.mta_sts_port}:postfix"
    mark = dane.log_mark(slab)
    d = dane.send_and_wait(slab, "sts", "hello")
    assert d.status == "sent", d.line
    assert any(f"Verified TLS connection established to {slab.domain}[127.0.0.1]:{slab.smtp_port}" in ln
               for ln in dane.tls_lines_since(slab, mark))  # "secure" from the policy, not may's "Trusted"
    t = uuid.uuid4().hex[:12]
    mtasts.configure_sender(slab, target_port=slab.mitm_port)
    with Mitm(slab, "strip") as m:
        d = dane.send_and_wait(slab, "sts strip", f"pay account 1234 ({t})")
        m.wait_closed(1)
    assert d.status == "deferred", d.line
    assert d.reason == f"TLS is required, but was not offered by host {slab.domain}[127.0.0.1]"
    assert f"({t})" not in m.text()
    sender.clear_queue(slab)
    u = uuid.uuid4().hex[:12]
    mtasts.configure_sender(slab, target_port=slab.mitm_port, enabled=False)
    with Mitm(slab, "strip") as m:
        d = dane.send_and_wait(slab, "may strip", f"pay account 1234 ({u})")
        m.wait_closed(1)
    assert d.status == "sent" and f"C: pay account 1234 ({u})" in m.text()


def test_testing_mode_is_not_enforced(slab: Settings) -> None:
    """postfix-mta-sts-resolver answers NOTFOUND for a policy in testing mode (strict_testing: false), so the
    stripped session is delivered at may (Postfix 3.7 logs nothing about what would have failed)."""
    try:
        mtasts.up(slab, "testing")
        assert "'mode': 'testing'" in mtasts.query(slab)
        mtasts.configure_sender(slab, target_port=slab.mitm_port)
        with Mitm(slab, "strip"):
            d = dane.send_and_wait(slab, "testing strip", "read by the attacker")
        assert d.status == "sent", d.line
    finally:
        mtasts.up(slab, "enforce")
