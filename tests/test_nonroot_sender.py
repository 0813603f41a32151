"""Parity: the sending Postfix's work-alike (labsim.sender_alike, what a learner without root gets) against
the real sending Postfix, side by side, with the same main.cf settings, against the same real Postfix lab:
every smtp(8) log line (TLS verdict, delivery status, dsn, reason), the queue and ``postqueue -p`` must
match, queue ids, pids, dates, sizes and delays masked.

Scenarios: client levels none/may/encrypt/verify/secure against the stock self-signed certificate;
through the attacker that strips STARTTLS (may, encrypt); a refused connection; TLS off against a server
at encrypt (bounce); the lab CA's RSA 4096 certificate (Trusted; verify and secure fail the name check).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim import lab as labmod
from labsim import notebook, sender, sender_alike
from labsim.backends import postfix
from labsim.mitm import Mitm
from labsim.ports import free_ports
from labsim.settings import Settings
from tests.conftest import destroy, make_settings, need_postfix

pytestmark = [pytest.mark.postfix, pytest.mark.timeout(400)]

MASKS = [
    (re.compile(r"\b[0-9A-F]{10,12}\b"), "QID"),
    (re.compile(r"delay=[\d.]+, delays=[\d./]+"), "delay=D, delays=D"),
    (re.compile(r"^(\S+) +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d", re.M), r"\1 SIZE ARRIVAL"),
]


def mask(text: str) -> str:
    for rx, rep in MASKS:
        text = rx.sub(rep, text)
    return text


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Settings, Settings]]:
    """A real Postfix lab (with its CA), and a second view of it whose sender is the work-alike: same
    server ports, its own home (so its own sender), the same lab CA file."""
    need_postfix()
    s = make_settings("postfix")
    view = s.with_(home=s.home / "client-view")
    try:
        labmod.up(s, "postfix")
        view.lab_ca.parent.mkdir(parents=True, exist_ok=True)
        yield s, view
    finally:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LABSIM_SENDER", "postfix")
            sender.down(s)
        destroy(s)


def attempt(lab: Settings, kind: str, level: str, port: int, strip: bool, mp: pytest.MonkeyPatch) -> dict:
    mp.setenv("LABSIM_SENDER", kind)
    sender.up(lab, level, target_port=port)
    sender.clear_queue(lab)
    mark = len(sender.log(lab))
    if strip:
        with Mitm(lab, "strip") as m:
            mid = sender.send(lab, subject=f"{kind} {level}")
            d = sender.wait_delivery(lab, mid)
            m.wait_closed(1)
    else:
        mid = sender.send(lab, subject=f"{kind} {level}")
        d = sender.wait_delivery(lab, mid)
    time.sleep(0.4)  # the real Postfix logs asynchronously (postlogd)
    lines = [ln.split("]: ", 1)[1] for ln in sender.log(lab)[mark:].splitlines() if "postfix/smtp[" in ln]
    out = {"status": d.status, "smtp": mask("\n".join(lines)),
           "queue": [(q.queue, q.recipients) for q in sender.queue(lab)], "mailq": mask(sender.queue_text(lab))}
    sender.clear_queue(lab)
    return out


def compare(pair: tuple[Settings, Settings], level: str, port_of, strip: bool = False) -> dict:
    real, view = pair
    with pytest.MonkeyPatch.context() as mp:
        r = attempt(real, "postfix", level, port_of(real), strip, mp)
        c = attempt(view, "client", level, port_of(view), strip, mp)
    assert c == r, f"work-alike differs from the real sending Postfix at {level}:\nreal:\n{r}\nwork-alike:\n{c}"
    return r


def test_levels_against_the_stock_self_signed_certificate(pair) -> None:
    real, view = pair
    shutil.copy(real.lab_ca, view.lab_ca)
    seen = {level: compare(pair, level, lambda s: s.smtp_port) for level in sender.LEVELS}
    assert seen["none"]["status"] == seen["may"]["status"] == seen["encrypt"]["status"] == "sent"
    assert "Untrusted TLS connection established" in seen["encrypt"]["smtp"]
    assert "TLS connection" not in seen["none"]["smtp"]
    for level in ("verify", "secure"):
        assert "certificate verification failed for" in seen[level]["smtp"]
        assert "dsn=4.7.5, status=deferred (Server certificate not verified)" in seen[level]["smtp"]
        assert "(Server certificate not verified)" in seen[level]["mailq"]


def test_through_the_stripper_and_a_refused_connection(pair) -> None:
    may = compare(pair, "may", lambda s: s.mitm_port, strip=True)
    assert may["status"] == "sent" and "TLS connection" not in may["smtp"]
    enc = compare(pair, "encrypt", lambda s: s.mitm_port, strip=True)
    assert "dsn=4.7.4, status=deferred (TLS is required, but was not offered by host 127.0.0.1[127.0.0.1])" \
        in enc["smtp"]
    closed = free_ports(1)[0]
    refused = compare(pair, "may", lambda s: closed)
    assert "relay=none" in refused["smtp"] and "Connection refused" in refused["smtp"]


def test_tls_off_against_an_encrypt_server_bounces(pair) -> None:
    real, _view = pair
    postfix.postconf(real, "smtpd_tls_security_level=encrypt", check=True)
    labmod.reload(real)
    try:
        r = compare(pair, "none", lambda s: s.smtp_port)
    finally:
        postfix.postconf(real, "smtpd_tls_security_level=may", check=True)
        labmod.reload(real)
    assert r["status"] == "bounced"
    assert ("dsn=5.7.0, status=bounced (host 127.0.0.1[127.0.0.1] said: 530 5.7.0 Must issue a STARTTLS "
            "command first (in reply to MAIL FROM command))") in r["smtp"]


def test_the_lab_ca_certificate_trusted_and_the_name_checks(pair) -> None:
    real, view = pair
    notebook._solve_certificate(real)  # the lab CA's RSA 4096 certificate, as notebook 02 leaves it
    notebook._solve_postfix_tls(real)
    shutil.copy(real.lab_ca, view.lab_ca)  # the roots of this pebble run
    enc = compare(pair, "encrypt", lambda s: s.smtp_port)
    assert "Trusted TLS connection established" in enc["smtp"] and "RSA-PSS (4096 bits)" in enc["smtp"]
    assert "num=64:IP address mismatch" in compare(pair, "verify", lambda s: s.smtp_port)["smtp"]
    assert "num=62:hostname mismatch" in compare(pair, "secure", lambda s: s.smtp_port)["smtp"]


def test_work_alike_reads_the_chain_python_3_11_gives_only_privately(sim_lab: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The one private method the work-alike uses (SSLSocket._sslobj.get_unverified_chain, public from
    Python 3.13): without it there is no Trusted/Untrusted verdict."""
    monkeypatch.setenv("LABSIM_SENDER", "client")
    sender.up(sim_lab, "encrypt")
    d = sender.wait_delivery(sim_lab, sender.send(sim_lab, subject="chain"))
    assert d.status == "sent", d.line
    assert any("Untrusted TLS connection established" in ln for ln in sender.tls_lines(sim_lab))
    assert not sender.queue(sim_lab) and sender.queue_text(sim_lab) == "Mail queue is empty\n"
    assert sender_alike.queue_dir(sender.settings_for(sim_lab)).is_dir()
    monkeypatch.setenv("LABSIM_SENDER", "bogus")
    with pytest.raises(Exception, match="LABSIM_SENDER"):
        sender.uses_postfix()
    assert Path(sender.settings_for(sim_lab).home).is_dir()


def test_an_ecdsa_certificate_is_described_alike(pair) -> None:
    """certbot 2.x's default key (ECDSA P-256): the TLS line's server-signature part."""
    from labsim import acme

    real, view = pair
    acme.certbot(real, ["certonly", "--standalone", "--agree-tos", "--preferred-challenges", "http",
                        "-d", real.domain, "--cert-name", "lab-ecdsa"])
    live = real.letsencrypt_dir / "live" / "lab-ecdsa"
    postfix.postconf(real, f"smtpd_tls_cert_file={live}/fullchain.pem", f"smtpd_tls_key_file={live}/privkey.pem",
                     check=True)
    labmod.reload(real)
    shutil.copy(real.lab_ca, view.lab_ca)
    enc = compare(pair, "encrypt", lambda s: s.smtp_port)
    assert "Trusted TLS connection established" in enc["smtp"] and "server-signature ECDSA" in enc["smtp"], enc
