"""MTA-STS with real parts: the lab zone's _mta-sts record, the policy over HTTPS with a certificate the lab CA
issued (certbot), postfix-mta-sts-resolver as the sending Postfix's smtp_tls_policy_maps socketmap, and the
attacker who strips STARTTLS. The log wording is Postfix 3.7.11's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from labsim import dane, dns, mtasts, sender
from labsim.backends import postfix
from labsim.mitm import Mitm
from labsim.settings import Settings
from tests.conftest import mta_sts_lab

pytestmark = pytest.mark.postfix


@pytest.fixture(scope="module")
def slab() -> Iterator[Settings]:
    yield from mta_sts_lab()


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


def failing(conds) -> dict[str, str]:
    return {c.id: c.message for c in conds if not c.ok}


def test_check_mtasts_passes_after_solve_and_names_what_is_wrong(slab: Settings) -> None:
    """The "mta-sts" step of lesson 6: solve, then check; then one wrong thing at a time, each failing only
    its own condition (wrong mx pattern, testing mode, no id in the record, the policy server down)."""
    from labsim.procs import stop_pidfile

    try:
        mtasts.solve_mtasts(slab)
        conds = mtasts.check_mtasts(slab)
        assert failing(conds) == {}, failing(conds)
        assert [c.id for c in conds] == ["dns-up", "mtasts-record", "mtasts-https", "mtasts-version", "mtasts-mode",
                                         "mtasts-max-age", "mtasts-mx"]
        # a policy for another MX host: served and valid, but it does not cover the lab's MX
        mtasts.up(slab, "enforce", mx="mail.example.net")
        bad = failing(mtasts.check_mtasts(slab))
        assert list(bad) == ["mtasts-mx"] and "mail.example.net" in bad["mtasts-mx"], bad
        assert slab.domain in bad["mtasts-mx"]
        # a wildcard stands for exactly one label: *.<domain> does not cover <domain> itself
        mtasts.up(slab, "enforce", mx=f"*.{slab.domain}")
        assert list(failing(mtasts.check_mtasts(slab))) == ["mtasts-mx"]
        mtasts.up(slab, "testing")
        bad = failing(mtasts.check_mtasts(slab))
        assert list(bad) == ["mtasts-mode"] and "testing" in bad["mtasts-mode"], bad
        # the record without an id: senders ignore it
        zone = dns.current_zone(slab)
        zone.txt["_mta-sts"] = "v=STSv1;"
        dns.publish(slab, zone)
        assert "mtasts-record" in failing(mtasts.check_mtasts(slab))
        # the policy server down: the record is there, the policy is not reachable
        mtasts.solve_mtasts(slab)
        stop_pidfile(mtasts.home(slab) / "https.pid")
        bad = failing(mtasts.check_mtasts(slab))
        assert list(bad) == ["mtasts-https"] and "does not answer" in bad["mtasts-https"], bad
    finally:
        mtasts.solve_mtasts(slab)
    assert failing(mtasts.check_mtasts(slab)) == {}


def test_the_policy_fetch_verifies_the_certificate_for_the_policy_host(slab: Settings) -> None:
    from labsim.errors import LabError

    status, ctype, body = mtasts.fetch_policy(slab)
    assert (status, ctype) == (200, "text/plain") and body == mtasts.policy_text(slab, "enforce")
    with pytest.raises(LabError, match="does not verify"):
        mtasts.fetch_policy(slab, cafile=slab.snakeoil_cert)  # another CA: refused


def test_mx_patterns_as_rfc_8461_matches_them() -> None:
    assert mtasts.mx_matches("lab.itpro.tv", "LAB.itpro.tv.")
    assert mtasts.mx_matches("*.itpro.tv", "lab.itpro.tv")
    assert not mtasts.mx_matches("*.itpro.tv", "a.lab.itpro.tv")  # one label only
    assert not mtasts.mx_matches("*.lab.itpro.tv", "lab.itpro.tv")
    assert mtasts.parse_record("v=STSv1; id=20261203") == {"v": "STSv1", "id": "20261203"}
    assert mtasts.parse_record("id=1; v=STSv1") == {}  # v= must come first
