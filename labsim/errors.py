"""The one exception the lab raises for anything a learner can fix, with what to do about it."""

from __future__ import annotations


class LabError(Exception):
    """A problem the learner can act on.

    ``message`` says what is wrong; ``hint`` says what to do next; ``detail`` quotes the evidence
    (a Postfix log line, certbot's or the CA's own words) verbatim.
    """

    def __init__(self, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.detail = detail

    def __str__(self) -> str:
        parts = [self.message]
        if self.detail:
            parts.append(self.detail.rstrip())
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return "\n".join(parts)


class NotRootError(LabError):
    """Starting a real Postfix needs root."""


class MissingPackageError(LabError):
    """A Debian package the lab needs is not installed."""


class PortInUseError(LabError):
    """Another process listens on a port the lab wants."""
