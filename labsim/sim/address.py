"""Envelope addresses as Postfix 3.7's smtpd reads, checks and logs them.

Three forms (FACTS.md, "Envelope addresses"):

- as given: what the client wrote after ``FROM:``/``TO:`` (``split_address`` finds it, as smtpd_token.c
  and extract_addr do); VRFY's ``252`` and cleanup's duplicate filter use it;
- internal (``internal_form``, tok822_internalize): quotes gone, ``\\`` escapes resolved; every
  restriction's reply text (smtpd_check.c's ``<%s>: ...``) quotes this form, so
  ``RCPT TO:<"a b"@x>`` is refused as ``<a b@x>``;
- external (``external_form``, quote_822_local): the internal form with the local part quoted again only
  where RFC 822 needs it; the ``from=<>``/``to=<>`` of smtpd's log lines (info_log_address_format =
  external) use it, so ``"a b"@x`` logs as ``"a b"@x`` and ``"ab"@x`` as ``ab@x``.
"""

from __future__ import annotations

import re

_ADDRESS_BAD = re.compile(r'[\x00-\x1f\x7f<>]')
#: tok822's operators (RFC 822 specials and ``|%!``); ``\\`` starts an atom instead.
_OPERATORS = '()<>@,;:".[]|%!'
#: What makes a local part not an RFC 822 dot-string (quote_822_local.c is_822_dot_string; 8-bit is clean).
_NOT_DOT_STRING = re.compile(r'[\x00-\x1f\x7f ()<>@,;:\\"\[\]]|\.\.|^\.|\.$|^$')


def _token_end(text: str, start: int) -> int:
    """Where an unbracketed address ends: at white space outside a quoted string (smtpd_token.c)."""
    quoted, i = False, start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 1
        elif c == '"':
            quoted = not quoted
        elif c.isspace() and not quoted:
            break
        i += 1
    return i


def split_address(text: str) -> tuple[str | None, list[str]]:
    """``<addr> PARAM...`` or ``addr PARAM...`` to (address as given, params); None when the syntax is bad."""
    text = text.strip()
    if text.startswith("<"):
        quoted, escaped, end = False, False, -1
        for i, c in enumerate(text[1:], 1):
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = not quoted
            elif c == ">" and not quoted:
                end = i
                break
        if end < 0:
            return None, []
        address, rest = text[1:end], text[end + 1 :]
        if rest and not rest[0].isspace():
            return None, []
    else:
        end = _token_end(text, 0)
        address, rest = text[:end], text[end:]
    if _ADDRESS_BAD.search(address) or len(re.findall(r'(?<!\\)"', address)) % 2 or _two_addresses(address):
        return None, []
    if address.startswith("@") and ":" in address:  # a source route (@a,@b:user@c): Postfix drops it
        address = address.partition(":")[2]
    return address, rest.split()


def _words(address: str) -> list[tuple[bool, str]]:
    """tok822_scan, as far as an envelope address needs it: (is a word, text) for each atom, quoted
    string (its quotes gone, ``\\x`` read as ``x``) and operator; white space separates."""
    out: list[tuple[bool, str]] = []
    i = 0
    while i < len(address):
        c = address[i]
        if c.isspace():
            i += 1
            continue
        if c in _OPERATORS and c != '"':
            out.append((False, c))
            i += 1
            continue
        word: list[str] = []
        if c == '"':
            i += 1
            while i < len(address) and address[i] != '"':
                if address[i] == "\\" and i + 1 < len(address):
                    i += 1
                word.append(address[i])
                i += 1
            i += 1  # the closing quote
        else:
            while i < len(address) and not address[i].isspace() and (
                    address[i] not in _OPERATORS or address[i] == "\\"):
                if address[i] == "\\" and i + 1 < len(address):
                    i += 1
                word.append(address[i])
                i += 1
        out.append((True, "".join(word)))
    return out


def _two_addresses(address: str) -> bool:
    """Two words side by side (``"a"b@x``): tok822_parse adds the missing comma, extract_addr then finds
    two addresses and refuses (``Illegal address syntax``; seen on 3.7.11)."""
    words = _words(address)
    return any(a[0] and b[0] for a, b in zip(words, words[1:]))


def internal_form(address: str) -> str:
    """tok822_internalize of an address: quoted strings lose their quotes, ``\\x`` becomes ``x``."""
    if '"' not in address and "\\" not in address:
        return address  # nothing to unquote
    return "".join(text for _, text in _words(address))


def external_form(address: str) -> str:
    """quote_822_local of an internal-form address: the local part quoted only if it is no dot-string."""
    if not address:
        return address
    start = address.partition(":")[2] if address.startswith("@") and ":" in address else address
    route = address[: len(address) - len(start)]
    local, at, domain = start.rpartition("@")
    if not at:
        local, domain = start, ""
    if not _NOT_DOT_STRING.search(local):
        return address
    quoted = '"' + re.sub(r'(["\\\r])', r"\\\1", local) + '"'
    return f"{route}{quoted}{at}{domain}"


def refused_token(text: str) -> str | None:
    """For an address ``split_address`` refused: the token smtpd's ``Illegal address syntax`` warning
    quotes (the address up to its ``>``, without parameters), or None when smtpd refuses it without one
    (an unclosed ``<``: its tokenizer's error)."""
    text = text.strip()
    if text.startswith("<"):
        # smtpd_token.c smtp_quoted: up to the matching ">", a quoted string and a nested "<...>" inside
        wanted, i = [">"], 1
        while i < len(text) and wanted:
            c = text[i]
            if c == "\\":
                i += 1
            elif c == wanted[-1]:
                wanted.pop()
            elif c == '"':
                wanted.append('"')
            elif c == "<" and wanted[-1] == ">":
                wanted.append(">")
            i += 1
        return None if wanted else text[:i]
    token = text[: _token_end(text, 0)]
    if len(re.findall(r'(?<!\\)"', token)) % 2:
        return None  # an unclosed quoted string: the tokenizer's error
    return token if _two_addresses(token) else None
