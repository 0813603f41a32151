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


def test_the_simulator_scores_as_postfix_but_for_the_listed_lines(alab: Settings) -> None:
    """The same main.cf on both backends: every line the lesson reads is the same, but for audit.SIM_DIFFERS,
    which differ exactly as audit.apart says (Postfix offers TLS 1.0/1.1 and aNULL with the stock settings; the
    simulator does not). After smtpd_tls_protocols = >=TLSv1.2 only aNULL is left apart."""
    s = make_settings("sim")
    try:
        postfix.postconf(alab, "smtpd_tls_protocols=>=TLSv1", f"smtpd_tls_cert_file={alab.snakeoil_cert}",
                         f"smtpd_tls_key_file={alab.snakeoil_key}", check=True)
        postfix.reload(alab)
        lab.up(s, "sim")
        assert audit.apart(s) == audit.apart(alab) == dict.fromkeys(audit.SIM_DIFFERS, True)
        real, sim = audit.run(alab), audit.run(s)
        for k in audit.KEYS:
            if k not in audit.SIM_DIFFERS and not k.startswith("cert_"):
                assert (real[k].severity, real[k].finding) == (sim[k].severity, sim[k].finding), k
        assert real["cert_chain_of_trust"].finding == sim["cert_chain_of_trust"].finding == "failed (self signed)."
        assert real["cert_keySize"].finding == sim["cert_keySize"].finding == "RSA 2048 bits"
        assert [audit.offered(real[k]) for k in audit.SIM_DIFFERS] == [True, True, True]
        assert [audit.offered(sim[k]) for k in audit.SIM_DIFFERS] == [False, False, False]
        assert audit.as_expected(real, alab) and audit.as_expected(sim, s)
        assert not audit.as_expected(sim, alab)  # the simulator's findings are not the real Postfix's
        # the exercise's solve on both: TLS 1.0/1.1 gone from both, the step passes, aNULL still apart
        for x in (alab, s):
            assert not checks.run_check(x, "tls-protocols").ok
            checks.solve(x, "tls-protocols")
            assert checks.run_check(x, "tls-protocols").ok, checks.render([checks.run_check(x, "tls-protocols")])
            assert audit.apart(x) == {"cipherlist_aNULL": True}
            p = audit.run(x, checks=("protocols",))
            assert [p[k].finding for k in ("TLS1", "TLS1_1")] == ["not offered", "not offered"]
            assert "cipherlist_aNULL" not in p  # -p alone: no cipher categories
    finally:
        destroy(s)
