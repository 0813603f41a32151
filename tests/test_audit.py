"""testssl.sh against the real lab Postfix: what the stock (snakeoil) state scores, what a smtpd_tls_protocols
change does, and the certbot state with the lab CA added to testssl's trust."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labsim import audit, lab, notebook
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
