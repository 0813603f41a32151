"""Postfix 3.7's recipient restrictions, as smtpd_check.c evaluates them, and its start-up check of them.

``required_missing`` is smtpd's ``has_required``/``fail_required``: when neither
``smtpd_relay_restrictions`` nor ``smtpd_recipient_restrictions`` lists a restriction that refuses by
default, smtpd exits with a fatal error (the simulator then refuses to serve, like Postfix: see
``simconfig.SimConfig.fatal``). ``check_recipient`` runs the two lists for one ``RCPT TO``: the relay list
first, then the recipient list, each until a restriction decides.

Never fail open: a restriction the simulator does not implement (a lookup table, a policy service, an
RBL, a name it does not know) answers ``451 4.3.5 Server configuration error``, which is what Postfix says
for a restriction it cannot evaluate, so an unknown word refuses mail instead of letting it through
(``known_differences.py`` lists the restrictions Postfix knows but the simulator only refuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from . import replies

#: What smtpd requires in one of the two lists (smtpd_check.c ``rcpt_required``, in its order).
REQUIRED = ("reject_unauth_destination", "defer_unauth_destination", "reject", "defer", "defer_if_permit",
            "check_relay_domains")

#: The fatal line, word for word (seen on 3.7.11).
FATAL_REQUIRED = ("in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least "
                  "one working instance of: " + ", ".join(REQUIRED[:-1]) + " or " + REQUIRED[-1])

#: Restrictions that never match in the lab (no SASL, no client certificates): Postfix goes on to the next.
NEVER_MATCH = frozenset({"permit_sasl_authenticated", "permit_tls_clientcerts", "permit_tls_all_clientcerts",
                         "reject_unauth_pipelining", "dunno"})

SERVER_ERROR = replies.SERVER_ERROR
REJECT_ALL, DEFER_ALL, DEFER_IF_PERMIT = replies.REJECT_ALL, replies.DEFER_ALL, replies.DEFER_IF_PERMIT
RELAY_REJECTED, RELAY_DEFERRED = replies.RELAY_REJECTED, replies.RELAY_DEFERRED
CHECK_RELAY_REJECTED = replies.CHECK_RELAY_REJECTED


def required_missing(relay: list[str], recipient: list[str], classes: dict[str, list[str]]) -> str | None:
    """Postfix's start-up check: the fatal message when no list has a restriction that refuses by default."""

    def has_required(items: list[str], depth: int = 0) -> bool:
        i = 0
        while i < len(items):
            name = items[i].lower()
            if name == "warn_if_reject" and i + 1 < len(items):
                i += 2
                continue
            if name == "permit":
                return False
            if name in REQUIRED:
                return True
            if items[i] in classes and depth < 20 and has_required(classes[items[i]], depth + 1):
                return True
            i += 1
        return False

    if has_required(recipient) or has_required(relay):
        return None
    return FATAL_REQUIRED


@dataclass
class Request:
    """What one RCPT TO decision needs to know."""

    address: str  # as the client wrote it (Postfix quotes it so in its replies)
    authorized_destination: bool  # mydestination, virtual or relay_domains (permit_auth_destination)
    in_mynetworks: bool
    tls: bool
    warnings: list[str] = field(default_factory=list)  # smtpd warning lines to log


def _evaluate(items: list[str], req: Request, classes: dict[str, list[str]], state: dict, depth: int = 0) -> str | None:
    """None (no decision: go on), ``"OK"`` (permit) or a reply (refuse)."""
    i = 0
    while i < len(items):
        raw = items[i]
        name = raw.lower()
        i += 1
        if name == "warn_if_reject":
            state["warn"] = True
            continue
        warn, state["warn"] = state.get("warn", False), False
        result: str | None
        if name == "permit":
            result = "OK"
        elif name == "reject":
            result = REJECT_ALL
        elif name == "defer":
            result = DEFER_ALL
        elif name == "defer_if_permit":
            state["defer_if_permit"] = True
            result = None
        elif name == "permit_mynetworks":
            result = "OK" if req.in_mynetworks else None
        elif name == "permit_auth_destination":
            result = "OK" if req.authorized_destination else None
        elif name == "reject_unauth_destination":
            result = None if req.authorized_destination else RELAY_REJECTED
        elif name == "defer_unauth_destination":
            result = None if req.authorized_destination else RELAY_DEFERRED
        elif name == "check_relay_domains":
            if not state.get("check_relay_domains_warned"):
                state["check_relay_domains_warned"] = True
                req.warnings.append('warning: support for restriction "check_relay_domains" will be removed '
                                    'from Postfix; use "reject_unauth_destination" instead')
            result = "OK" if req.authorized_destination else CHECK_RELAY_REJECTED
        elif name in NEVER_MATCH:
            result = None
        elif raw in classes and depth < 20:
            result = _evaluate(classes[raw], req, classes, state, depth + 1)
        else:
            # Not understood: refuse (Postfix's answer for a restriction it cannot evaluate).
            if ":" in raw:
                req.warnings.append(f'warning: the simulator does not open lookup table "{raw}"')
            else:
                req.warnings.append(f'warning: unknown smtpd restriction: "{raw}"')
            return SERVER_ERROR
        if result is not None and result != "OK" and warn:
            continue  # warn_if_reject: Postfix logs reject_warning and goes on
        if result is not None:
            return result
    return None


def check_recipient(first: list[str], second: list[str], classes: dict[str, list[str]], req: Request) -> str | None:
    """The reply refusing this recipient, or None when both lists let it through.

    As ``smtpd_check_rcpt``: both lists run (a permit in the first does not skip the second), a refusal
    ends it, and a ``defer_if_permit`` seen on the way defers what would otherwise be accepted. ``first``
    is the relay list when ``smtpd_relay_before_recipient_restrictions = yes`` (3.6+), else the recipient
    list. A bare ``postmaster`` is always accepted (RFC 5321 4.5.1).
    """
    if req.address.lower() == "postmaster":
        return None
    state: dict = {}
    for items in (first, second):
        result = _evaluate(items, req, classes, state)
        if result is not None and result != "OK":
            return result.format(address=req.address)
    if state.get("defer_if_permit"):
        return DEFER_IF_PERMIT.format(address=req.address)
    return None
