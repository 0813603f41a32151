"""Read back what the lab delivered: the Maildir every message for the lab domain lands in."""

from __future__ import annotations

import email
import email.policy
import time
from email.message import EmailMessage
from pathlib import Path

from .settings import Settings


def files(settings: Settings) -> list[Path]:
    """Delivered message files, oldest first (Maildir names start with the delivery time)."""
    out: list[Path] = []
    for sub in ("new", "cur"):
        d = settings.mailbox / sub
        if d.is_dir():
            out.extend(p for p in d.iterdir() if p.is_file())
    return sorted(out, key=lambda p: (p.stat().st_mtime, p.name))


def messages(settings: Settings) -> list[EmailMessage]:
    """Every delivered message, parsed, oldest first."""
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in files(settings)
    ]


def wait_for(settings: Settings, count: int, timeout: float = 20.0) -> list[EmailMessage]:
    """Wait until at least ``count`` messages have been delivered (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(files(settings)) >= count:
            break
        time.sleep(0.1)
    return messages(settings)


def clear(settings: Settings) -> int:
    """Delete every delivered message; returns how many."""
    n = 0
    for p in files(settings):
        p.unlink(missing_ok=True)
        n += 1
    return n


def find(settings: Settings, text: str, timeout: float = 10.0) -> str | None:
    """The delivered message (as text) that contains ``text``, waiting at most ``timeout`` seconds; None if
    none arrives (delivery is asynchronous, so "not delivered" needs a time limit)."""
    deadline = time.monotonic() + timeout
    while True:
        for p in files(settings):
            try:
                raw = p.read_text(errors="replace")
            except FileNotFoundError:  # moved from new/ to cur/ meanwhile
                continue
            if text in raw:
                return raw
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
