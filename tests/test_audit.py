"""testssl.sh against the real lab Postfix: what the stock (snakeoil) state scores, what a smtpd_tls_protocols
change does, and the certbot state with the lab CA added to testssl's trust."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labsim import audit, checks, lab, notebook
from labsim.backends import postfix
from labsim.settings import Settings
from tests.conftest import destroy, make_settings, need_postfix

pytestmark = pytest.mark.postfix


@pytest.fixture(scope="module")
def alab() -> Iterator[Settings]:
    need_postfix()
    if not audit.installed():
        pytest.fail("testssl.sh is not installed: run scripts/setup.sh --test")
    s = make_settings("postfix")
    try:
        lab.up(s, "postfix")
        yield s
    finally:
        destroy(s)


def test_snakeoil_state_then_protocols_then_certbot(alab: Settings) -> None:
    f = audit.run(alab)
    assert f["SSLv2"].finding == "not offered" and f["SSLv3"].finding == "not offered"
    assert f["TLS1_2"].finding.startswith("offered") and f["TLS1_3"].finding.startswith("offered")
    assert "self signed" in f["cert_chain_of_trust"].finding and f["cert_chain_of_trust"].severity == "CRITICAL"
    old = [f["TLS1"].finding, f["TLS1_1"].finding]
    assert any(x.startswith("offered") for x in old), old  # the stock smtpd_tls_protocols still allow them
    assert any(ln.startswith("TLS1 ") for ln in audit.summary(f))
    postfix.postconf(alab, "smtpd_tls_protocols=>=TLSv1.2", check=True)
    postfix.reload(alab)
    g = audit.run(alab)
    assert g["TLS1"].finding == "not offered" and g["TLS1_1"].finding == "not offered"
    assert g["TLS1_2"].finding.startswith("offered")
    notebook._solve_certificate(alab)
    notebook._solve_postfix_tls(alab)
    h = audit.run(alab, cafile=alab.lab_ca)
    assert "self signed" not in h["cert_chain_of_trust"].finding
    assert h["cert_chain_of_trust"].severity == "OK", h["cert_chain_of_trust"]
    assert h["cert_keySize"].finding.startswith("RSA 4096")


def test_the_simulator_scores_as_postfix(alab: Settings) -> None:
    """The same main.cf on both backends: every line the lesson reads is the same (TLS 1.0/1.1 and the anonymous
    suites too, which Postfix 3.7 offers with the stock settings), before and after the exercise's solve, and
    after smtpd_tls_exclude_ciphers = aNULL."""
    s = make_settings("sim")
    try:
        postfix.postconf(alab, "smtpd_tls_protocols=>=TLSv1", "smtpd_tls_exclude_ciphers=",
                         f"smtpd_tls_cert_file={alab.snakeoil_cert}", f"smtpd_tls_key_file={alab.snakeoil_key}",
                         check=True)
        postfix.reload(alab)
        lab.up(s, "sim")
        real, sim = audit.run(alab), audit.run(s)
        assert audit.summary(real) == audit.summary(sim)
        assert len(audit.summary(real)) == len(audit.KEYS)
        assert [audit.offered(real[k]) for k in ("TLS1", "TLS1_1", "cipherlist_aNULL")] == [True, True, True]
        assert real["cert_chain_of_trust"].finding == "failed (self signed)."
        # the exercise's solve on both: TLS 1.0/1.1 gone from both, the step passes
        for x in (alab, s):
            assert not checks.run_check(x, "tls-protocols").ok
            checks.solve(x, "tls-protocols")
            assert checks.run_check(x, "tls-protocols").ok, checks.render([checks.run_check(x, "tls-protocols")])
        p, q = audit.run(alab, checks=("protocols",)), audit.run(s, checks=("protocols",))
        assert audit.summary(p) == audit.summary(q)
        assert [p[k].finding for k in ("TLS1", "TLS1_1")] == ["not offered", "not offered"]
        assert "cipherlist_aNULL" not in p  # -p alone: no cipher categories
        # a cipher change: the anonymous suites excluded, on both
        for x in (alab, s):
            postfix.postconf(x, "smtpd_tls_exclude_ciphers=aNULL", check=True)
            lab.reload(x)
        c, d = audit.run(alab, checks=("ciphers",)), audit.run(s, checks=("ciphers",))
        assert audit.summary(c) == audit.summary(d)
        assert c["cipherlist_aNULL"].finding == "not offered"
    finally:
        destroy(s)
