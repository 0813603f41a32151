"""Where the simulator is known to differ from the real Postfix 3.7.11: the one list, with the reasons.

Differential testing (``tests/test_sim_differential.py``, ``bench/bench_sim_differential.py``) runs
generated sessions on both with the same main.cf. Every difference it found was fixed in the simulator or
is listed in ``DIFFERENCES`` below, with why it is left, and a test that pins it
(``tests/test_sim_known_differences.py`` shows each one still differs exactly as described, so the list
cannot go stale). ``excluded`` keeps the generator away from them, so the rest is compared strictly.

This module also holds the configuration matrix both runs draw from (``config_matrix``).
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from typing import Callable

#: The lab's own relay setting (labsim.backends.postfix.create_config) and alternatives a learner might write.
RELAY_SETTINGS = {
    "lab": {"smtpd_relay_restrictions": "permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
            "smtpd_recipient_restrictions": "", "mynetworks": ""},
    "reject": {"smtpd_relay_restrictions": "reject_unauth_destination", "smtpd_recipient_restrictions": "",
               "mynetworks": ""},
    "trusted-loopback": {"smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
                         "smtpd_recipient_restrictions": "", "mynetworks": "127.0.0.0/8"},
    "recipient-list": {"smtpd_relay_restrictions": "",
                       "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
                       "mynetworks": ""},
    "defer-if-permit": {"smtpd_relay_restrictions": "defer_if_permit, reject_unauth_destination",
                        "smtpd_recipient_restrictions": "", "mynetworks": ""},
}
CERTS = {
    "ok": ("{ssl}/ssl-cert-snakeoil.pem", "{ssl}/ssl-cert-snakeoil.key"),
    "missing": ("{ssl}/no-such-cert.pem", "{ssl}/ssl-cert-snakeoil.key"),
    "mismatch": ("{ssl}/ssl-cert-snakeoil.pem", "{ssl}/other.key"),
}
LEVELS = ("none", "may", "encrypt")
SIZES = ("10240000", "2000")
BARE_NEWLINE = ("no", "yes", "reject")


def config(level: str, cert: str, relay: str, size: str, bare: str) -> dict[str, str]:
    cert_file, key_file = CERTS[cert]
    return {"smtpd_tls_security_level": level, "smtpd_tls_cert_file": cert_file, "smtpd_tls_key_file": key_file,
            **RELAY_SETTINGS[relay], "message_size_limit": size, "smtpd_forbid_bare_newline": bare,
            # Postfix sleeps 1 s a reply past the soft limit; the simulator does not (listed below).
            "smtpd_soft_error_limit": "100"}


def config_matrix(limit: int | None = None, seed: int = 11) -> list[dict[str, str]]:
    """Every combination (270), or ``limit`` of them: always the lab's own three levels and
    ``smtpd_forbid_bare_newline = reject``, then a sample."""
    combos = list(itertools.product(LEVELS, CERTS, RELAY_SETTINGS, SIZES, BARE_NEWLINE))
    first = [("may", "ok", "lab", "10240000", "no"), ("encrypt", "ok", "lab", "10240000", "no"),
             ("none", "ok", "lab", "10240000", "no"), ("may", "ok", "lab", "10240000", "reject")]
    rest = [c for c in combos if c not in first]
    random.Random(seed).shuffle(rest)
    chosen = first + rest
    if limit is not None:
        chosen = chosen[:limit]
    return [config(*c) for c in chosen]


def config_id(conf: dict[str, str]) -> str:
    cert = next(k for k, (c, key) in CERTS.items() if conf["smtpd_tls_cert_file"] == c and conf["smtpd_tls_key_file"] == key)
    relay = next(k for k, v in RELAY_SETTINGS.items() if all(conf.get(p) == x for p, x in v.items()))
    return (f"{conf['smtpd_tls_security_level']}-{cert}-{relay}-size{conf['message_size_limit']}"
            f"-bare{conf['smtpd_forbid_bare_newline']}")


@dataclass(frozen=True)
class Difference:
    name: str
    what: str  # what differs, as a learner would see it
    why: str  # why the simulator does not do what Postfix does
    applies: Callable[[dict[str, str], list], bool]  # does this generated session meet it?


#: Postfix's message_size_limit counts the queue file; measured on 3.7.11 with the lab's main.cf and
#: limit 2000: a one-line body of 1065 bytes passes, 1066 does not (the simulator: 1998). The envelope
#: sender is stored twice, the Received: header and other records make up the rest.
SIZE_MARGIN = 1200


def _message_bytes(steps: list) -> list[int]:
    """The size of each message a session sends (DATA bodies; BDAT chunks up to LAST)."""
    sizes, current = [], 0
    for kind, *args in steps:
        if kind == "data":
            sizes.append(len(args[0]) + 2)
        elif kind == "bdat":
            current += len(args[0])
            if args[1]:
                sizes.append(current)
                current = 0
        elif kind in ("cmd", "pipe") and "RSET" in str(args).upper():
            current = 0
    return sizes + ([current] if current else [])


def _near_size_limit(conf: dict[str, str], steps: list) -> bool:
    limit = int(conf.get("message_size_limit") or 0)
    return bool(limit) and any(limit - SIZE_MARGIN <= n <= limit for n in _message_bytes(steps))


def _has(steps: list, pred: Callable[[list], bool]) -> bool:
    return any(pred(s) for s in steps)


#: An address header continued by a word with no domain: cleanup qualifies and rewrites it.
_UNQUALIFIED_IN_HEADER = re.compile(r"(?im)^(from|to|cc|bcc|reply-to|sender|resent-[a-z]+|errors-to|"
                                    r"return-receipt-to):[^\n]*\n[ \t]+[^@\s]+\r?$")


def _header_address_rewrite(conf: dict[str, str], steps: list) -> bool:
    """A message (a DATA body, or BDAT chunks put together) with such a header."""
    text, chunks = [], ""
    for kind, *args in steps:
        if kind == "data":
            text.append(args[0])
        elif kind == "bdat":
            chunks += args[0]
            if args[1]:
                text.append(chunks)
                chunks = ""
    return any(_UNQUALIFIED_IN_HEADER.search(t) for t in [*text, chunks])


_RESET_VERBS = ("RSET", "HELO", "EHLO")  # rcpt_reset in smtpd.c (with their argument right; RSET with none)


def _bdat_error_keeps_recipients(conf: dict[str, str], steps: list) -> bool:
    """A BDAT transaction that may end in a refused ``BDAT ... LAST`` (skip_bdat: an earlier chunk failed,
    or the chunks pass the size limit), then, before RSET, HELO/EHLO or STARTTLS, a step that meets what
    3.7.11 keeps of it: MAIL (a reject line names the old ``to=``), DATA or BDAT (with a recipient, a
    Received: header for two; without, smtpd crashes), a raw line (a bare-LF reject names the old ``to=``)."""
    limit = int(conf.get("message_size_limit") or 0)
    failed = kept = False
    total = 0
    for kind, *args in steps:
        if kind == "bdat":
            if kept:
                return True
            chunk, last = args
            total += len(chunk)
            # (a bare <LF> refused inside a chunk ends the transaction in full: seen on 3.7.11)
            if chunk == "" and not last or (limit and total > limit - SIZE_MARGIN):
                failed = True
            if last:
                kept, failed, total = failed, False, 0
        elif kind in ("data", "raw"):
            if kept:
                return True
        elif kind == "starttls":
            kept = failed = False
            total = 0
        elif kind in ("cmd", "pipe"):
            for line in [args[0]] if kind == "cmd" else args[0]:
                words = line.split()
                verb = words[0].upper() if words else ""
                if kept and verb in ("MAIL", "DATA", "BDAT"):
                    return True
                if verb in _RESET_VERBS and (len(words) == 1) == (verb == "RSET"):
                    kept = failed = False
                    total = 0
    return False


DIFFERENCES: list[Difference] = [
    Difference(
        "soft-error-sleep",
        "Past smtpd_soft_error_limit (10) errors Postfix waits smtpd_error_sleep_time (1 s) before each reply; "
        "the simulator answers at once.",
        "Only the timing differs; the replies are the same. The differential runs set the limit to 100.",
        lambda conf, steps: False,
    ),
    Difference(
        "size-limit-overhead",
        "A message a little under message_size_limit (within about 1 KB) is refused by Postfix with "
        "`552 5.3.4 Error: message file too big` and accepted by the simulator.",
        "Postfix's cleanup compares the limit with the queue file it writes (envelope records, the sender "
        "twice, the Received: header it adds), not with the message; the simulator counts the message as "
        "received (what smtpd itself counts for SIZE= and BDAT). Modelling the queue file byte for byte is "
        "not worth it for a lesson on TLS.",
        _near_size_limit,
    ),
    Difference(
        "tls-library-problem",
        "With an unreadable or mismatched certificate/key, Postfix's smtpd also logs OpenSSL's error queue "
        "(`warning: TLS library problem: error:8000000D:system library::Permission denied:...bss_file.c:297:`) "
        "before its `cannot get RSA certificate ... disabling TLS support`; the simulator logs only the latter.",
        "Python's ssl module reports one summary error, not OpenSSL's queue with its source file and line "
        "numbers; the line that explains the problem to a learner (`disabling TLS support`) is the same. (A failed "
        "handshake's reason is logged as Postfix logs it for the reasons the lesson meets: no shared cipher, "
        "unsupported protocol, wrong version number; `replies.TLS_LIBRARY_ERRORS`, "
        "`tests/test_sim_ciphers.py::test_a_failed_handshake_logs_as_postfix`.)",
        lambda conf, steps: False,  # process start-up lines are not compared per session (PROCESS_START_LINES)
    ),
    Difference(
        "bdat-error-keeps-recipients",
        "After a BDAT transaction whose `BDAT ... LAST` was refused (an earlier chunk failed: `551 5.7.1 Null "
        "BDAT request`, `551 5.0.0 Discarded N bytes after earlier error`, a chunk over the size limit), "
        "3.7.11's smtpd still counts that transaction's recipients: `MAIL` then `DATA` (or `BDAT`) without a "
        "new RCPT crashes smtpd (`warning: process /usr/lib/postfix/sbin/smtpd pid N killed by signal 11`; "
        "if it was the process's first session, `bad command startup -- throttling` follows: no banner for "
        "60 s), a new message's Received: header "
        "reads as if for two recipients, and a later reject line names the old recipient in `to=<>`. The "
        "simulator forgets them, as Postfix does since 3.7.22.",
        "A bug in Postfix 3.4 to 3.7.21 (skip_bdat calls mail_reset but not rcpt_reset; HISTORY: \"missing "
        "SMTP server reset of RCPT TO state after a BDAT command error ... crash a Postfix SMTP daemon "
        "process with a null pointer read error\", reported by OpenAI Security, fixed in 3.7.22). The "
        "simulator teaches the protocol, not a crash that a Debian security update removes; it is the cause of "
        "the long differential run's rare timeouts after such a session (the throttled smtpd gives the next "
        "sessions no banner).",
        _bdat_error_keeps_recipients,
    ),
    Difference(
        "header-address-rewrite",
        "cleanup rewrites the address headers of a message from a client it trusts for that "
        "(local_header_rewrite_clients = permit_inet_interfaces: the lab's 127.0.0.1): an address without a "
        "domain gets @$myorigin and a changed header is written again on one line, so `From: <a@b>` continued "
        "by ` folded` is delivered as `From: <a@b>, folded@lab.itpro.tv` (`To: x, y@z` as `To: "
        "x@lab.itpro.tv, y@z`); the simulator delivers the headers as sent.",
        "Postfix's header rewriting parses every address header with its RFC 822 parser (phrases, comments, "
        "groups, missing commas) and re-folds it; the lesson's messages carry full addresses, and the "
        "difference is in a delivered header only, never in what is accepted.",
        _header_address_rewrite,
    ),
    Difference(
        "append-dot-mydomain",
        "With `append_dot_mydomain = yes` (the default below compatibility_level 1; the lab's main.cf, like "
        "Debian's, sets `no`) Postfix rewrites a domain without a dot, `student@lab`, to "
        "`student@lab.$mydomain` (and the sender `a@b` to `a@b.$mydomain`): it accepts and delivers what the "
        "simulator refuses with `454 4.7.1 <student@lab>: Relay access denied`.",
        "trivial-rewrite's canonicalisation also rewrites the sender and the message's address headers "
        "(local_header_rewrite_clients); the simulator models only append_at_myorigin. It refuses where Postfix "
        "accepts (never the other way round), and only in a main.cf the lab's configuration matrix never "
        "writes. The rest of the backwards-compatible defaults (the stand-in relay restrictions, "
        "smtpd_relay_before_recipient_restrictions = no, smtputf8_enable = no, and the notes Postfix logs for "
        "them) is modelled: tests/test_sim_differential.py::test_backwards_compatible_defaults_match_postfix.",
        lambda conf, steps: conf.get("append_dot_mydomain", "no") == "yes",
    ),
]


#: smtpd lines a new smtpd *process* logs when it starts (Postfix reuses a process for up to 100 sessions,
#: so they come with some sessions and not others); the simulator logs them once per (re)load. Per-session
#: comparisons leave them out; ``tests/test_sim_parity.py::test_certificate_warning_matches_postfix``
#: compares them after a reload instead.
PROCESS_START_LINES = re.compile(r"warning: (TLS library problem: |.*disabling TLS support|"
                                 r"smtpd_tls_security_level: unsupported TLS level|need a server certificate)")


def excluded(conf: dict[str, str], steps: list) -> bool:
    """True when a generated session meets a listed difference (the generator then draws another)."""
    return any(d.applies(conf, steps) for d in DIFFERENCES)
