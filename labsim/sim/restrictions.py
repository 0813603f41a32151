"""Postfix 3.7's recipient restrictions, as smtpd_check.c evaluates them, and its start-up check of them.

``required_missing`` is smtpd's ``has_required``/``fail_required``: when neither
``smtpd_relay_restrictions`` nor ``smtpd_recipient_restrictions`` lists a restriction that refuses by
default, smtpd exits with a fatal error (the simulator then refuses to serve, like Postfix: see
``simconfig.SimConfig.fatal``). ``check_recipient`` runs the two lists for one ``RCPT TO``: the relay list
first, then the recipient list, each until a restriction decides. ``Compat`` is what
``compatibility_level`` keeps of older defaults (the stand-in relay list below level 1, the notes Postfix
logs for them, smtputf8_enable = no); ``reject_text`` is smtpd_check_reject's cut and printable() of a reply.

Never fail open: a restriction the simulator does not implement (a lookup table, a policy service, an
RBL, a name it does not know) answers ``451 4.3.5 Server configuration error``, which is what Postfix says
for a restriction it cannot evaluate, so an unknown word refuses mail instead of letting it through
(``known_differences.py`` lists the restrictions Postfix knows but the simulator only refuses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


#: smtpd_check.c's stand-in for an unset smtpd_relay_restrictions below compatibility level 1
#: (FAKE_RELAY_CHECKS, mail_params.h): evaluated only to log what the 3.7 default would have refused.
FAKE_RELAY = ["permit_mynetworks", "permit_sasl_authenticated", "permit_auth_destination"]
#: The info lines smtpd logs for those backwards-compatible defaults (seen on 3.7.11; FACTS.md).
COMPAT_RELAY_EMPTY = ('using backwards-compatible default setting "smtpd_relay_restrictions = (empty)" to avoid '
                      '"Relay access denied" error for recipient "{recipient}" from client "{client}"')
COMPAT_RECIPIENT_FIRST = ("using backwards-compatible default setting smtpd_relay_before_recipient_restrictions=no "
                          'to reject recipient "{recipient}" from client "{client}"')

COMPAT_NON_ASCII = ('using backwards-compatible default setting smtputf8_enable=no to accept non-ASCII {kind} '
                    'address "{address}" from {client}')


def non_ascii_note(compat: "Compat", kind: str, address: str, client: str) -> str | None:
    """smtpd.c's note for a non-ASCII sender or recipient accepted below level 1 (its bytes logged as
    ``?``: msg_output's printable() without SMTPUTF8)."""
    if not compat.smtputf8_note or address.isascii():
        return None
    shown = "".join(chr(b) if b < 128 else "?" for b in address.encode("utf-8", errors="surrogateescape"))
    return COMPAT_NON_ASCII.format(kind=kind, address=shown, client=client)


def printable(text: str, replacement: str, utf8: bool) -> str:
    """Postfix's printable(): printable ASCII stays, and valid UTF-8 with SMTPUTF8 on; every other byte (a
    control character, a byte that was no UTF-8, any non-ASCII one without SMTPUTF8) becomes ``replacement``."""
    out = []
    for ch in text:
        code = ord(ch)
        if 32 <= code < 127 or (utf8 and code >= 128 and not 0xDC80 <= code <= 0xDCFF):
            out.append(ch)
        else:
            out.append(replacement * len(ch.encode("utf-8", errors="surrogateescape")))
    return "".join(out)


def reject_text(reply: str, compat: "Compat") -> str:
    """smtpd_check_reject's reply: cut at 510 bytes, unprintable bytes as spaces (seen on 3.7.11)."""
    cut = reply.encode("utf-8", errors="surrogateescape")[:510].decode("utf-8", errors="surrogateescape")
    return printable(cut, " ", compat.smtputf8)


def _below(level: str, than: tuple[int, ...]) -> bool:
    try:
        return tuple(int(p) for p in level.strip().split(".")) < than
    except ValueError:
        return True  # compat_level_from_string: not a level (Postfix dies on it; the check is elsewhere)


@dataclass(frozen=True)
class Compat:
    """What ``compatibility_level`` keeps of older defaults (mail_params.c ``warn_compat_*``): each flag is
    on only when the level is below the change and main.cf does not set the parameter itself."""

    fake_relay: bool = False  # < 1, no smtpd_relay_restrictions: recipient list first, FAKE_RELAY after it
    recipient_first_note: bool = False  # < 3.6, no smtpd_relay_before_recipient_restrictions
    smtputf8: bool = True  # smtputf8_enable (its default is no below level 1)
    smtputf8_note: bool = False  # < 1, no smtputf8_enable: a non-ASCII address gets COMPAT_NON_ASCII

    @classmethod
    def of(cls, source: Any) -> "Compat":
        """From a ``labsim.maincf.MainCf`` (None: the 3.7 defaults)."""
        if source is None:
            return cls()
        level = source.get("compatibility_level")
        return cls(fake_relay=_below(level, (1,)) and "smtpd_relay_restrictions" not in source.params,
                   recipient_first_note=(_below(level, (3, 6))
                                         and "smtpd_relay_before_recipient_restrictions" not in source.params),
                   smtputf8=source.get_bool("smtputf8_enable"),
                   smtputf8_note=_below(level, (1,)) and "smtputf8_enable" not in source.params)


@dataclass
class Request:
    """What one RCPT TO decision needs to know."""

    address: str  # internal form (address.internal_form): what smtpd_check quotes in its replies
    authorized_destination: bool  # mydestination, virtual or relay_domains (permit_auth_destination)
    in_mynetworks: bool
    tls: bool
    client: str = "unknown[unknown]"  # state->namaddr, for the compatibility notes
    compat: Compat = field(default_factory=Compat)
    #: what to log before the verdict, in order: ("line", an smtpd line) or ("reject_warning", a reply that
    #: warn_if_reject turned into a log line)
    notes: list[tuple[str, str]] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # smtpd lines to log after the verdict's reject line


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
                req.notes.append(("line", 'warning: support for restriction "check_relay_domains" will be removed '
                                  'from Postfix; use "reject_unauth_destination" instead'))
            result = "OK" if req.authorized_destination else CHECK_RELAY_REJECTED
        elif name in NEVER_MATCH:
            result = None
        elif raw in classes and depth < 20:
            result = _evaluate(classes[raw], req, classes, state, depth + 1)
        else:
            # Not understood: refuse (Postfix's answer for a restriction it cannot evaluate).
            if ":" in raw:
                req.notes.append(("line", f'warning: the simulator does not open lookup table "{raw}"'))
            else:
                req.notes.append(("line", f'warning: unknown smtpd restriction: "{raw}"'))
            return SERVER_ERROR
        if result is not None and result != "OK" and warn:
            req.notes.append(("reject_warning", reject_text(result.format(address=req.address), req.compat)))
            continue  # warn_if_reject: Postfix logs reject_warning and goes on (seen on 3.7.11)
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
    lists = [first, second]
    if req.compat.fake_relay:  # below level 1: the recipient list, then the stand-in (never refuses)
        lists = [first or second, FAKE_RELAY]  # (the relay list is empty: its default below level 1)
    for n, items in enumerate(lists):
        result = _evaluate(items, req, classes, state)
        if n == 1 and req.compat.fake_relay and result is None:
            req.notes.append(("line", COMPAT_RELAY_EMPTY.format(recipient=req.address, client=req.client)))
        if result is not None and result != "OK":
            if n == 0 and req.compat.recipient_first_note:
                req.after.append(COMPAT_RECIPIENT_FIRST.format(recipient=req.address, client=req.client))
            return reject_text(result.format(address=req.address), req.compat)
    if state.get("defer_if_permit"):
        return reject_text(DEFER_IF_PERMIT.format(address=req.address), req.compat)
    return None
