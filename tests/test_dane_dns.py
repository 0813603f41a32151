"""The lab zone, signed with DNSSEC at run time, served by NSD, validated by unbound (and by delv on its
own), with the TLSA 3 1 1 record of the certificate the lab's smtpd really serves. Real daemons, real
queries; the digest is checked against openssl's, computed independently from the served certificate."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim import dns, lab, procs
from labsim.backends import postfix
from labsim.ports import is_free
from labsim.settings import Settings
from tests.conftest import destroy, make_settings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dlab() -> Iterator[Settings]:
    if not dns.installed():
        pytest.fail("nsd, unbound, ldnsutils and bind9-dnsutils are needed: run scripts/setup.sh")
    backend = "postfix" if postfix.installed() and os.geteuid() == 0 else "sim"
    s = make_settings(backend)
    try:
        lab.up(s, backend, with_ca=False)
        dns.up(s)
        yield s
    finally:
        destroy(s)


def openssl_tlsa_311(s: Settings) -> str:
    """The lesson's way: the served certificate, its public key in DER, SHA-256 (openssl only)."""
    sh = (f"openssl s_client -connect {s.host}:{s.smtp_port} -starttls smtp -servername {s.domain} "
          "</dev/null 2>/dev/null | openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER "
          "| openssl dgst -sha256 -r")
    out = subprocess.run(["sh", "-c", sh], capture_output=True, text=True, timeout=60).stdout
    return out.split()[0]


def test_tlsa_record_is_the_served_certificates_key_and_validated(dlab: Settings) -> None:
    digest = openssl_tlsa_311(dlab)
    assert len(digest) == 64
    assert dns.tlsa_311(dns.served_certificate(dlab)) == digest
    ans = dns.dig(dlab, dns.tlsa_name(dlab, dlab.smtp_port), "TLSA")
    assert ans.status == "NOERROR" and "ad" in ans.flags, ans.text
    assert ans.secure
    assert len(ans.records) == 1 and ans.records[0].split()[3:7] == ["TLSA", "3", "1", "1"]
    assert "".join(ans.records[0].split()[7:]).lower() == digest
    assert ans.signatures and ans.signatures[0].split()[4] == "TLSA"
    out = dns.delv(dlab, dns.tlsa_name(dlab, dlab.smtp_port), "TLSA")
    assert out.startswith("; fully validated"), out
    assert digest.upper()[:20] in out.replace(" ", "")


def test_a_and_mx_are_secure_and_the_resolver_is_offline(dlab: Settings) -> None:
    a = dns.dig(dlab, dlab.domain, "A")
    assert a.secure and a.records[0].split()[-1] == "127.0.0.1", a.text
    mx = dns.dig(dlab, dlab.domain, "MX")
    assert mx.secure and mx.records[0].split()[-2:] == ["10", f"{dlab.domain}."]
    # a name that does not exist in the lab zone: a validated denial (NSEC), still AD
    nx = dns.dig(dlab, f"nothing-here.{dlab.domain}", "A")
    assert nx.status == "NXDOMAIN" and "ad" in nx.flags, nx.text
    # the internet is never asked: outside the lab zone the resolver refuses
    assert dns.dig(dlab, "example.com", "A").status == "REFUSED"
    rpt = dns.dig(dlab, f"_smtp._tls.{dlab.domain}", "TXT")
    assert rpt.secure and "v=TLSRPTv1; rua=mailto:tls-reports@" in rpt.records[0]


def test_keys_made_at_run_time_private_0600_under_the_lab_home(dlab: Settings) -> None:
    ksk, zsk = dns.keys(dlab)
    assert ksk != zsk
    for base in (ksk, zsk):
        priv = dns.key_dir(dlab) / f"{base}.private"
        assert priv.exists() and (priv.stat().st_mode & 0o777) == 0o600
        assert str(priv).startswith(str(dlab.home))
    assert (dns.key_dir(dlab).stat().st_mode & 0o777) == 0o700
    assert "257 3 13" in (dns.key_dir(dlab) / f"{ksk}.key").read_text()  # the KSK (SEP flag)
    assert "256 3 13" in (dns.key_dir(dlab) / f"{zsk}.key").read_text()
    ds = dns.trust_anchor_file(dlab).read_text().split()
    assert ds[3] == "DS" and ds[5:7] == ["13", "2"]  # ECDSA P-256, SHA-256 digest
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True).stdout
    assert ".private" not in tracked and "Klab.itpro.tv" not in tracked


def test_a_tampered_zone_is_bogus_not_believed(dlab: Settings) -> None:
    """Change the TLSA digest in the signed zone without signing again: the signature no longer matches,
    the validating resolver answers SERVFAIL (no forged record reaches a client), delv refuses it."""
    signed = dns.signed_zone_file(dlab)
    good = signed.read_text()
    digest = dns.current_zone(dlab).tlsa[dlab.smtp_port]
    forged = "ab" * 32
    assert digest.upper() in good.upper()
    text = "\n".join(ln.replace(digest, forged).replace(digest.upper(), forged.upper())
                     if f"_{dlab.smtp_port}._tcp" in ln and "TLSA" in ln and "RRSIG" not in ln else ln
                     for ln in good.splitlines()) + "\n"
    assert text != good
    try:
        signed.write_text(text)
        dns.stop(dlab)
        dns._start_nsd(dlab)
        dns._start_unbound(dlab)
        ans = dns.dig(dlab, dns.tlsa_name(dlab, dlab.smtp_port), "TLSA")
        assert ans.status == "SERVFAIL" and not ans.secure, ans.text
        assert "fully validated" not in dns.delv(dlab, dns.tlsa_name(dlab, dlab.smtp_port), "TLSA")
    finally:
        dns.publish(dlab, dns.default_zone(dlab))
    assert dns.dig(dlab, dns.tlsa_name(dlab, dlab.smtp_port), "TLSA").secure


def test_down_stops_every_dns_daemon_and_leaves_nothing() -> None:
    s = make_settings("sim")
    try:
        lab.up(s, "sim", with_ca=False)
        dns.up(s)
        assert dns.is_running(s) and not is_free(s.dns_auth_port) and not is_free(s.resolver_port)
        pids = [dns.nsd_pid(s), dns.unbound_pid(s)]
        lab.down(s)
        assert not dns.is_running(s)
        assert all(not procs.alive(p) for p in pids if p)
        assert is_free(s.dns_auth_port) and is_free(s.resolver_port)
        assert [ln for ln in procs.mentioning(str(s.home))] == []
    finally:
        destroy(s)


def test_bad_port_setting_is_a_clear_error() -> None:
    from labsim.errors import LabError

    with pytest.raises(LabError, match="LABSIM_RESOLVER_PORT"):
        Settings.from_env({"LABSIM_RESOLVER_PORT": "53x"})
    assert Settings.from_env({"LABSIM_DNS_AUTH_PORT": "9153"}).dns_auth_port == 9153
    assert "LABSIM_RESOLVER_PORT" in Settings().env()
    assert shutil.which("unshare")  # the sender's private mount namespace (tests/test_dane_sender.py)


def test_check_tlsa_passes_after_solve_and_names_what_is_wrong(dlab: Settings) -> None:
    """The "tlsa" step of lesson 6: solve then check passes; a wrong digest (validly signed) fails only the
    match; a record changed after signing is published but not validated; without the DNS, one line says so."""
    def failing() -> dict[str, str]:
        return {c.id: c.message for c in dns.check_tlsa(dlab) if not c.ok}

    try:
        dns.solve_tlsa(dlab)
        conds = dns.check_tlsa(dlab)
        assert [c.id for c in conds] == ["dns-up", "tlsa-published", "tlsa-validated", "tlsa-matches"]
        assert failing() == {}
        dns.publish(dlab, dns.default_zone(dlab, "00" * 32))
        assert failing() == {"tlsa-matches": "the record's digest is not the SHA-256 of the served certificate's "
                                             "public key"}
        # tampered after signing: NSD serves it (with the old RRSIG), unbound answers SERVFAIL
        signed = dns.signed_zone_file(dlab)
        dns.solve_tlsa(dlab)
        digest = dns.current_zone(dlab).tlsa[dlab.smtp_port]
        signed.write_text("\n".join(ln.replace(digest, "ab" * 32).replace(digest.upper(), "AB" * 32)
                                    if "TLSA" in ln and "RRSIG" not in ln else ln
                                    for ln in signed.read_text().splitlines()) + "\n")
        dns.stop(dlab)
        dns._start_nsd(dlab)
        dns._start_unbound(dlab)
        bad = failing()
        assert set(bad) == {"tlsa-validated", "tlsa-matches"} and "SERVFAIL" in bad["tlsa-validated"], bad
        dns.stop(dlab)
        assert [(c.id, c.ok) for c in dns.check_tlsa(dlab)] == [("dns-up", False)]
    finally:
        dns.solve_tlsa(dlab)
    assert failing() == {}


def test_the_mta_sts_records_need_no_root(dlab: Settings) -> None:
    """Notebook 08's DNS half (labsim.mtasts.publish): the _mta-sts TXT record with the id given and the policy
    host's A record, signed and validated, also for a learner without root (the policy server needs port 443)."""
    from labsim import mtasts

    before = dns.current_zone(dlab)
    try:
        assert mtasts.publish(dlab, "lab1") == "v=STSv1; id=lab1"
        txt = dns.dig(dlab, f"_mta-sts.{dlab.domain}", "TXT")
        assert txt.secure and txt.records and txt.records[0].endswith('"v=STSv1; id=lab1"'), txt
        assert mtasts.policy_address(dlab) == dns.resolver_address(dlab)
        assert dns.dig(dlab, mtasts.policy_host(dlab), "A").secure
        assert dns.current_zone(dlab).tlsa == before.tlsa  # the TLSA records are kept
    finally:
        dns.publish(dlab, before)
