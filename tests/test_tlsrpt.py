"""The lab's TLS-RPT reports (labsim.tlsrpt, a reconstruction: Postfix 3.7 writes none), made from real runs of
the sending Postfix against the real lab server, directly and behind the stripper, under the MTA-STS policy
(enforce, testing, a wrong mx pattern), DANE (a wrong digest) and no policy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from labsim import dane, dns, mtasts, sender, tlsrpt
from labsim.backends import postfix
from labsim.mitm import Mitm
from labsim.settings import Settings
from tests.conftest import mta_sts_lab

pytestmark = pytest.mark.postfix


@pytest.fixture(scope="module")
def rlab() -> Iterator[Settings]:
    yield from mta_sts_lab()


def stripped(s: Settings) -> sender.Delivery:
    t = uuid.uuid4().hex[:12]
    with Mitm(s, "strip") as m:
        d = dane.send_and_wait(s, "stripped", f"pay account 1234 ({t})")
        m.wait_closed(1)
    return d


def only_policy(rep: dict) -> dict:
    assert len(rep["policies"]) == 1
    return rep["policies"][0]


def test_enforce_report_counts_the_verified_session_and_the_stripped_one(rlab: Settings) -> None:
    mark = dane.log_mark(rlab)
    mtasts.configure_sender(rlab, target_port=rlab.smtp_port)
    assert dane.send_and_wait(rlab, "direct", "hello").status == "sent"
    mtasts.configure_sender(rlab, target_port=rlab.mitm_port)
    assert stripped(rlab).status == "deferred"
    sender.clear_queue(rlab)
    rep = tlsrpt.report(rlab, mark)
    assert set(rep) == {"organization-name", "date-range", "contact-info", "report-id", "policies"}
    assert "reconstruction" in rep["organization-name"]
    assert rep["date-range"]["start-datetime"].endswith("Z") and rep["date-range"]["end-datetime"].endswith("Z")
    p = only_policy(rep)
    assert p["policy"] == {"policy-type": "sts",
                           "policy-string": ["version: STSv1", "mode: enforce", f"mx: {rlab.domain}", "max_age: 86400"],
                           "policy-domain": rlab.domain, "mx-host": [rlab.domain]}
    assert p["summary"] == {"total-successful-session-count": 1, "total-failure-session-count": 1}
    assert p["failure-details"] == [{"result-type": "starttls-not-supported", "sending-mta-ip": rlab.host,
                                     "receiving-mx-hostname": rlab.domain, "receiving-ip": "127.0.0.1",
                                     "failed-session-count": 1}]
    path = tlsrpt.write(rlab, rep)
    assert path.name.startswith(f"sender.{rlab.domain}!{rlab.domain}!") and path.name.endswith(".json")
    assert json.loads(path.read_text()) == rep
    assert tlsrpt.rua(rlab) == f"mailto:tls-reports@{rlab.domain}"


def test_testing_mode_delivers_in_clear_logs_nothing_and_the_report_says_what_failed(rlab: Settings) -> None:
    try:
        mtasts.up(rlab, "testing")
        mtasts.configure_sender(rlab, target_port=rlab.mitm_port)
        mark = dane.log_mark(rlab)
        d = stripped(rlab)
        assert d.status == "sent", d.line  # testing: not enforced, read by the attacker
        log = postfix.log_since(sender.settings_for(rlab), mark)
        smtp = [ln for ln in log.splitlines() if "postfix/smtp[" in ln]
        assert smtp == [d.line], smtp  # Postfix's only word on it: the mail was sent
        p = only_policy(tlsrpt.report(rlab, mark))
        assert p["policy"]["policy-type"] == "sts" and "mode: testing" in p["policy"]["policy-string"]
        assert p["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 1}
        assert [f["result-type"] for f in p["failure-details"]] == ["starttls-not-supported"]
    finally:
        mtasts.up(rlab, "enforce")


def test_a_policy_for_another_mx_is_a_host_mismatch(rlab: Settings) -> None:
    try:
        mtasts.up(rlab, "enforce", mx="mail.example.net")
        mtasts.configure_sender(rlab, target_port=rlab.smtp_port)
        mark = dane.log_mark(rlab)
        d = dane.send_and_wait(rlab, "other mx", "x")
        assert d.status == "deferred" and d.reason == "Server certificate not verified", d.line
        p = only_policy(tlsrpt.report(rlab, mark))
        assert p["policy"]["mx-host"] == ["mail.example.net"]
        f = p["failure-details"]
        assert [(x["result-type"], x["failure-reason-code"]) for x in f] == [
            ("certificate-host-mismatch", "num=62:hostname mismatch")]
    finally:
        sender.clear_queue(rlab)
        mtasts.up(rlab, "enforce")


def test_dane_wrong_digest_is_tlsa_invalid_and_no_policy_strip_is_reported_too(rlab: Settings) -> None:
    mtasts.configure_sender(rlab, target_port=rlab.smtp_port, enabled=False)
    dane.configure(rlab, "dane", target_port=rlab.smtp_port)
    try:
        dns.publish(rlab, dns.default_zone(rlab, "00" * 32))
        mark = dane.log_mark(rlab)
        assert dane.send_and_wait(rlab, "wrong tlsa", "x").status == "deferred"
        p = only_policy(tlsrpt.report(rlab, mark))
        assert p["policy"] == {"policy-type": "tlsa", "policy-string": ["3 1 1 " + "00" * 32],
                               "policy-domain": rlab.domain, "mx-host": [rlab.domain]}
        assert [(x["result-type"], x["failure-reason-code"]) for x in p["failure-details"]] == [
            ("tlsa-invalid", "num=65:no matching DANE TLSA records")]
    finally:
        sender.clear_queue(rlab)
        dns.publish(rlab, dns.default_zone(rlab))
    # the right record again: the DANE session succeeds (fresh smtp processes: they cache TLSA answers)
    postfix.reload(sender.settings_for(rlab))
    mark = dane.log_mark(rlab)
    assert dane.send_and_wait(rlab, "right tlsa", "x").status == "sent"
    assert only_policy(tlsrpt.report(rlab, mark))["summary"] == {"total-successful-session-count": 1,
                                                                 "total-failure-session-count": 0}
    # no policy at all (may, no socketmap): the stripped session is still a failure a reporting sender sees
    dane.configure(rlab, "may", target_port=rlab.mitm_port)
    try:
        mark = dane.log_mark(rlab)
        assert stripped(rlab).status == "sent"
        p = only_policy(tlsrpt.report(rlab, mark))
        assert p["policy"] == {"policy-type": "no-policy-found", "policy-domain": rlab.domain}
        assert [x["result-type"] for x in p["failure-details"]] == ["starttls-not-supported"]
    finally:
        dane.configure(rlab, "dane", target_port=rlab.smtp_port)


def test_a_reused_connection_is_one_session(rlab: Settings) -> None:
    """Two messages over one connection (smtp_connection_cache_destinations = the lab domain, the relayhost's
    name without its port; in clear behind the stripper): the second delivery's log line says conn_use=2, and
    the report counts one session, not two (RFC 8460 counts sessions, not messages)."""
    s = sender.settings_for(rlab)
    try:
        mtasts.up(rlab, "testing")
        mtasts.configure_sender(rlab, target_port=rlab.mitm_port)
        postfix.postconf(s, f"smtp_connection_cache_destinations={rlab.domain}", "smtp_connection_cache_time_limit=10s",
                         check=True)
        postfix.reload(s)
        mark = dane.log_mark(rlab)
        with Mitm(rlab, "strip") as m:
            first = dane.send_and_wait(rlab, "first", "one")
            second = dane.send_and_wait(rlab, "second", "two")
        assert first.status == second.status == "sent", (first.line, second.line)
        assert "conn_use=" not in first.line and ", conn_use=2," in second.line, (first.line, second.line)
        assert m.text().count("C: MAIL FROM:") == 2  # both messages through the attacker, one connection
        p = only_policy(tlsrpt.report(rlab, mark))
        assert p["summary"] == {"total-successful-session-count": 0, "total-failure-session-count": 1}
        assert [(f["result-type"], f["failed-session-count"]) for f in p["failure-details"]] == [
            ("starttls-not-supported", 1)]
    finally:
        postfix.postconf(s, "-X", "smtp_connection_cache_destinations", "smtp_connection_cache_time_limit", check=True)
        postfix.reload(s)
        mtasts.up(rlab, "enforce")
