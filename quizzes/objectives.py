"""The objectives and knowledge areas a question can be tagged with, and their exam weights.

One place for these ids: the schema rejects unknown ones, lint reports any without questions,
and the exam draws questions by area weight.

Why two tag families:

* ``objectives`` say *which goal* a question tests: the lesson's two objectives, and either the exam
  objective it serves (211.1 of 202-450, objectives version 4.5; weight 4 on the real exam) or
  ``course-only`` for lesson material that the exam objectives do not name (certbot, ACME, ufw, Let's
  Encrypt: 202-450 v4.5 names none of them). ``quizzes lint`` requires one or the other on every
  question; the exam simulation (exam.py) draws only questions with an exam objective, practice draws all.
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
    source: str  # "202-450" (an exam objective), "lesson" (the lesson's goals) or "course" (course-only)
    weight: int = 0  # the exam objective's weight on 202-450 (roughly its number of questions of 60)

    @property
    def exam(self) -> bool:
        """Is this an objective of the real exam (drawn by the exam simulation)?"""
        return self.source == EXAM_SOURCE


@dataclass(frozen=True)
class Area:
    id: str
    title: str
    weight: int


EXAM_SOURCE = "202-450"
COURSE_ONLY = "course-only"

OBJECTIVES: dict[str, Objective] = {
    o.id: o
    for o in (
        Objective("lesson-1", "Describe the encryption features available for use with SMTP.", "lesson"),
        Objective("lesson-2", "Configure Postfix to use TLS encryption with email.", "lesson"),
        Objective("211.1", "Using e-mail servers (202-450, weight 4).", EXAM_SOURCE, 4),
        Objective(COURSE_ONLY, "Lesson material that the 202-450 objectives (v4.5) do not name: certbot, ACME, "
                  "Let's Encrypt, ufw. Practice only, never in the exam simulation.", "course"),
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


def exam_objectives() -> dict[str, Objective]:
    """The 202-450 objectives the bank knows, by id (what the exam simulation draws from)."""
    return {k: o for k, o in OBJECTIVES.items() if o.exam}
