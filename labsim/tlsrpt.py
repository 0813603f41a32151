"""TLS-RPT (RFC 8460): what an aggregate report from the lab's sending Postfix would say.

**This is the lab's reconstruction, not Postfix output.** Postfix 3.7 writes no TLS-RPT reports (``postconf -d``
lists no TLS-RPT parameter). So this module reads what the sending Postfix (:mod:`labsim.sender`, at the levels
of :mod:`labsim.dane` and :mod:`labsim.mtasts`) wrote in its log, and the policy in force in the lab, and writes
the JSON report (``application/tlsrpt+json``, RFC 8460 section 4) a reporting sender would send to the
``rua=`` address of the lab zone's ``_smtp._tls`` record. The lab does not mail it; it is a file under
``<lab home>/tlsrpt/``, named as RFC 8460 names a report file (``sender!policy-domain!begin!end.json``).

The fields are RFC 8460's: ``organization-name``, ``date-range`` (``start-datetime``, ``end-datetime``),
``contact-info``, ``report-id``, and ``policies[]``, each with ``policy`` (``policy-type`` sts, tlsa or
no-policy-found, ``policy-string``, ``policy-domain``, ``mx-host``), ``summary``
(``total-successful-session-count``, ``total-failure-session-count``) and ``failure-details[]``
(``result-type``, ``sending-mta-ip``, ``receiving-mx-hostname``, ``receiving-ip``, ``failed-session-count``,
``failure-reason-code``). The result types used are the registered ones: ``starttls-not-supported``,
``certificate-host-mismatch``, ``certificate-expired``, ``certificate-not-trusted``, ``tlsa-invalid``,
``validation-failure``.

How a session is judged (one TLS session = one connection; a delivery over a reused connection,
``conn_use=2`` and up, is not a new session):

* ``TLS is required, but was not offered by host ...`` (the attacker stripped STARTTLS): starttls-not-supported.
* ``server certificate verification failed for ...: num=N:TEXT``: ``no matching DANE TLSA records`` is
  tlsa-invalid, ``hostname mismatch`` certificate-host-mismatch, ``certificate has expired``
  certificate-expired, anything else certificate-not-trusted; Postfix's ``num=N:TEXT`` is the
  failure-reason-code.
* A delivery with no ``TLS connection established`` line went in clear: under a policy, starttls-not-supported.
  This is what ``mode: testing`` is for: postfix-mta-sts-resolver gives Postfix no policy then, the mail goes
  (in clear, behind the stripper) and Postfix logs nothing about it; the report says what would have failed.
* Under an sts policy in testing mode (Postfix at ``may``): ``Untrusted`` is certificate-not-trusted; ``Trusted``
  (the chain verified; ``may`` does not check the name) counts as a success when the MX host matches the
  policy's mx patterns, else certificate-host-mismatch. ``Verified`` is a success.
* Connections that never reached TLS for other reasons (``connect to ...: Connection refused``) are not counted.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import dates, dns, mtasts, sender
from .backends import postfix
from .settings import Settings

#: the registered result types this reconstruction can give (IANA "STARTTLS Validation Result Types")
RESULT_TYPES = ("starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
                "certificate-not-trusted", "tlsa-invalid", "validation-failure")

_LINE_RE = re.compile(r"^(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ postfix/smtp\[(?P<pid>\d+)\]: (?P<msg>.*)$")
_TLS_RE = re.compile(r"^(?P<kind>Verified|Trusted|Untrusted|Anonymous) TLS connection established to ")
_VERIFY_RE = re.compile(r"^server certificate verification failed for [^:]+:\d+: (?P<why>.*)$")
_STATUS_RE = re.compile(r"^(?P<qid>[0-9A-F]+): to=<[^>]*>, (?:orig_to=<[^>]*>, )?relay=(?P<host>[^\[,]+)"
                        r"\[(?P<ip>[^\]]+)\]:(?P<port>\d+), (?:conn_use=(?P<use>\d+), )?.*?"
                        r"status=(?P<status>\w+) \((?P<reason>.*)\)$")


@dataclass(frozen=True)
class Session:
    """One connection of the sending Postfix to a receiving MX, as its log tells it."""

    when: float
    queue_id: str
    mx_host: str
    ip: str
    port: int
    status: str  # sent | deferred | bounced
    reason: str
    tls: str | None  # Verified | Trusted | Untrusted | Anonymous | None (in clear)
    verify_failure: str | None  # Postfix's "num=N:TEXT"


def sessions(log_text: str) -> list[Session]:
    """The TLS sessions in ``log_text`` (the sending Postfix's smtp lines), in log order. Lines are grouped
    per smtp process: its TLS lines belong to its next delivery status line."""
    pending: dict[str, dict[str, str | None]] = {}
    out: list[Session] = []
    for line in log_text.splitlines():
        m = _LINE_RE.match(line)
        if not m:
            continue
        pid, msg = m["pid"], m["msg"]
        state = pending.setdefault(pid, {"tls": None, "verify": None})
        if t := _TLS_RE.match(msg):
            state["tls"] = t["kind"]
        elif v := _VERIFY_RE.match(msg):
            state["verify"] = v["why"]
        elif s := _STATUS_RE.match(msg):
            pending.pop(pid, None)
            if s["use"] and int(s["use"]) > 1:
                continue  # a reused connection: the session was counted at its first delivery
            if s["reason"].startswith("connect to ") and state["tls"] is None:
                continue  # no connection, no TLS session
            out.append(Session(dates.parse_log_stamp(m["stamp"]), s["qid"], s["host"], s["ip"], int(s["port"]),
                               s["status"], s["reason"], state["tls"], state["verify"]))
    return out


@dataclass
class Policy:
    """The policy a sender applies to the lab domain (RFC 8460 section 4.4's ``policy`` object)."""

    type: str  # sts | tlsa | no-policy-found
    domain: str
    strings: list[str] = field(default_factory=list)
    mx_host: list[str] = field(default_factory=list)
    mode: str = ""  # sts only: enforce | testing

    def as_json(self) -> dict:
        d: dict = {"policy-type": self.type}
        if self.strings:
            d["policy-string"] = self.strings
        d["policy-domain"] = self.domain
        if self.mx_host:
            d["mx-host"] = self.mx_host
        return d


def policy_in_force(lab: Settings) -> Policy:
    """What the sending Postfix applies now. In the order Postfix decides: an MTA-STS policy in enforce mode
    through its ``smtp_tls_policy_maps`` socketmap (it overrides the level); else DANE (level ``dane`` or
    ``dane-only`` with ``smtp_dns_support_level = dnssec``) when the lab zone publishes TLSA records; else an
    MTA-STS policy in testing mode (reported, not applied); else no-policy-found."""
    s = sender.settings_for(lab)
    conf = postfix.get_many(s, "smtp_tls_policy_maps", "smtp_tls_security_level", "smtp_dns_support_level")
    sts: Policy | None = None
    if f":{lab.mta_sts_port}:" in conf.get("smtp_tls_policy_maps", "") and mtasts.policy_file(lab).exists():
        text = mtasts.policy_file(lab).read_text()
        pol = mtasts.parse_policy(text)
        if pol.get("mode") in ("enforce", "testing"):
            sts = Policy("sts", lab.domain, [ln.strip() for ln in text.splitlines() if ln.strip()],
                         [str(p) for p in pol["mx"]], str(pol["mode"]))  # type: ignore[union-attr]
    if sts and sts.mode == "enforce":
        return sts
    if conf.get("smtp_tls_security_level") in ("dane", "dane-only") and conf.get("smtp_dns_support_level") == "dnssec":
        tlsa = dns.current_zone(lab).tlsa
        if tlsa:
            return Policy("tlsa", lab.domain, [f"3 1 1 {d}" for d in sorted(set(tlsa.values()))], [lab.domain])
    return sts or Policy("no-policy-found", lab.domain)


def judge(session: Session, policy: Policy) -> tuple[str, str] | None:
    """(result-type, failure-reason-code) of a failed session under ``policy``; None for a success."""
    why = session.verify_failure or ""
    if "TLS is required, but was not offered" in session.reason:
        return "starttls-not-supported", ""
    if why:
        if "no matching DANE TLSA records" in why:
            return "tlsa-invalid", why
        if "hostname mismatch" in why:
            return "certificate-host-mismatch", why
        if "expired" in why:
            return "certificate-expired", why
        return "certificate-not-trusted", why
    if session.status != "sent":
        if "certificate" in session.reason.lower() or "TLS" in session.reason:
            return "validation-failure", session.reason
        return None  # not a TLS failure (the receiving server's own answer)
    if policy.type == "no-policy-found":
        return ("starttls-not-supported", "") if session.tls is None else None
    if session.tls is None:
        return "starttls-not-supported", ""
    if session.tls in ("Untrusted", "Anonymous"):
        return "certificate-not-trusted", f"{session.tls} TLS connection"
    if policy.type == "sts" and not any(mtasts.mx_matches(p, session.mx_host) for p in policy.mx_host):
        return "certificate-host-mismatch", f"{session.mx_host} matches no mx pattern of the policy"
    return None


def _rfc3339(when: float) -> str:
    return _dt.datetime.fromtimestamp(int(when), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(lab: Settings, since: int = 0, *, policy: Policy | None = None) -> dict:
    """The RFC 8460 aggregate report of the sending Postfix's sessions to the lab domain logged after byte
    ``since`` of its log, judged against ``policy`` (default: :func:`policy_in_force`)."""
    policy = policy or policy_in_force(lab)
    mine = [x for x in sessions(postfix.log_since(sender.settings_for(lab), since))
            if x.mx_host.lower().rstrip(".") == lab.domain]
    failures: dict[tuple[str, str, str, str], int] = {}
    ok = 0
    for x in mine:
        verdict = judge(x, policy)
        if verdict is None:
            ok += 1
        else:
            key = (verdict[0], x.mx_host, x.ip, verdict[1])
            failures[key] = failures.get(key, 0) + 1
    start = min((x.when for x in mine), default=0.0)
    end = max((x.when for x in mine), default=0.0)
    details = []
    for (rtype, mx, ip, code), n in failures.items():
        d = {"result-type": rtype, "sending-mta-ip": lab.host, "receiving-mx-hostname": mx, "receiving-ip": ip,
             "failed-session-count": n}
        if code:
            d["failure-reason-code"] = code
        details.append(d)
    item: dict = {"policy": policy.as_json(),
                  "summary": {"total-successful-session-count": ok,
                              "total-failure-session-count": sum(failures.values())}}
    if details:
        item["failure-details"] = details
    me = f"sender.{lab.domain}"
    return {
        "organization-name": f"{me} (postfix-tls-lab's reconstruction from the Postfix log)",
        "date-range": {"start-datetime": _rfc3339(start), "end-datetime": _rfc3339(end)},
        "contact-info": f"postmaster@{me}",
        "report-id": f"{_rfc3339(start)}_{lab.domain}",
        "policies": [item],
    }


def write(lab: Settings, rep: dict) -> Path:
    """Store ``rep`` as ``<lab home>/tlsrpt/<sender>!<policy domain>!<begin>!<end>.json`` (RFC 8460's
    file name, uncompressed)."""
    def epoch(text: str) -> int:
        return int(_dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc).timestamp())

    domain = rep["policies"][0]["policy"]["policy-domain"]
    rng = rep["date-range"]
    out = lab.home / "tlsrpt" / f"sender.{lab.domain}!{domain}!{epoch(rng['start-datetime'])}!{epoch(rng['end-datetime'])}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rep, indent=2) + "\n")
    return out


def rua(lab: Settings) -> str | None:
    """Where the lab domain asks for reports: the ``rua=`` of its validated ``_smtp._tls`` TXT record."""
    ans = dns.dig(lab, f"_smtp._tls.{lab.domain}", "TXT")
    m = re.search(r"rua=([^;\"]+)", " ".join(ans.records))
    return m[1].strip() if m and ans.secure else None


def policies_only(rep: dict) -> str:
    """The report's ``policies`` as indented JSON (what a notebook shows; dates and the id vary per run)."""
    return json.dumps(rep["policies"], indent=2)
