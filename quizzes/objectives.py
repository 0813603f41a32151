"""The objectives and knowledge areas a question can be tagged with, and their exam weights.

One place for these ids: the schema rejects unknown ones, lint reports any without questions,
and the exam draws questions by area weight.

Why two tag families:

* ``objectives`` say *which goal* a question tests: the lesson's two objectives and the exam
  objective 211.1 (202-450, objectives version 4.5; weight 4 on the real exam).
* ``area`` (exactly one per question) says *which key knowledge area* of 211.1 it belongs to.
  The areas partition the bank, so the exam can draw by weight without double counting.

Area weights are ours, not LPI's: LPI gives 211.1 a weight of 4 as a whole. We split it over the parts
this lesson touches, leaning on TLS because that is what the lesson teaches.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    id: str
    title: str
    source: str


@dataclass(frozen=True)
class Area:
    id: str
    title: str
    weight: int


OBJECTIVES: dict[str, Objective] = {
    o.id: o
    for o in (
        Objective("lesson-1", "Describe the encryption features available for use with SMTP.", "lesson"),
        Objective("lesson-2", "Configure Postfix to use TLS encryption with email.", "lesson"),
        Objective("211.1", "Using e-mail servers (202-450, weight 4).", "202-450"),
    )
}

AREAS: dict[str, Area] = {
    a.id: a
    for a in (
        Area("smtp-security", "Encryption features for SMTP: STARTTLS, opportunistic vs. mandatory TLS", 4),
        Area("tls-config", "Basic TLS configuration for Postfix", 5),
        Area("certificates", "TLS certificates: trust, Let's Encrypt, certbot", 3),
        Area("postfix-config", "Postfix configuration files and commands", 3),
        Area("smtp", "Basic knowledge of the SMTP protocol", 3),
        Area("logs", "Mail-related logs in /var/log", 1),
        Area("awareness", "sendmail/exim, sendmail emulation, /etc/aliases, /var/spool/postfix", 2),
    )
}
