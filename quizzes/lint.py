"""``quizzes lint``: every defect of a bank, for authors and CI, with file:line: id: message.

Hard defects (YAML or schema errors, duplicate ids, an answer not among the choices) also stop
:func:`quizzes.bank.load_bank`; lint reports them together with the soft ones that still load but
make a poor question: missing explanations or per-choice reasons, no references, objectives or
areas that no question tests, a bank whose fill-in share is below a quarter, a question with neither a
202-450 objective nor ``course-only`` (or tagged 211.1 while it asks about certbot, ACME or ufw, which
the exam objectives do not name), and a bank that can be gamed: when the right answer of single-choice
questions is the longest choice in more than one in three of them (:func:`longest_right`), "pick the
longest" would pass the exam.
"""

from __future__ import annotations

import os

import re

from .bank import bank_dir, read_all
from .model import Question
from .objectives import AREAS, COURSE_ONLY, OBJECTIVES

MIN_FILL_SHARE = 0.25
MAX_LONGEST_RIGHT = 1 / 3  # share of single-choice questions whose right answer may be the longest choice
# lesson material that the 202-450 objectives (v4.5) do not name: a question about it is course-only
COURSE_ONLY_WORDS = re.compile(r"\b(certbot|ufw|acme|let's encrypt|pebble)\b", re.IGNORECASE)


def is_longest_right(q: Question) -> bool:
    """Is the right choice of a single-choice question strictly longer than every other choice?"""
    if q.type != "single":
        return False
    right = [len(c.text) for c in q.choices if c.correct]
    wrong = [len(c.text) for c in q.choices if not c.correct]
    return bool(right and wrong) and right[0] > max(wrong)


def longest_right(questions: list[Question]) -> tuple[list[str], int]:
    """Ids of the single-choice questions whose right answer is the longest choice, and how many
    single-choice questions there are."""
    singles = [q for q in questions if q.type == "single"]
    return [q.id for q in singles if is_longest_right(q)], len(singles)


def objective_problems(q: Question) -> list[str]:
    """A question serves a 202-450 objective or is course-only, never both or neither; and a question
    whose prompt or right answer is about certbot/ACME/ufw is course-only."""
    exam = [o for o in q.objectives if o in OBJECTIVES and OBJECTIVES[o].exam]
    course = COURSE_ONLY in q.objectives
    if exam and course:
        return [f"tagged both {', '.join(exam)} and {COURSE_ONLY}: a question serves an exam objective or is course-only"]
    if not exam and not course:
        return [f"no 202-450 objective (211.1) and not {COURSE_ONLY}: the exam simulation cannot tell whether to draw it"]
    text = " ".join([q.prompt, *(c.text for c in q.choices if c.correct), *q.answers])
    m = COURSE_ONLY_WORDS.search(text)
    if exam and m:
        return [f"asks about {m.group(0)!r}, which the 202-450 objectives do not name: tag it {COURSE_ONLY}, not {', '.join(exam)}"]
    return []


def lint(directory: str | os.PathLike[str] | None = None, check_coverage: bool = True) -> list[str]:
    """All problems of the bank in DIRECTORY; an empty list means it is clean."""
    root = bank_dir(directory)
    questions, problems = read_all(directory)
    for q in questions:
        where = f"{q.source}:{q.line}: {q.id}"
        if not q.explanation.strip():
            problems.append(f"{where}: missing explanation")
        for i, c in enumerate(q.choices):
            if not c.why.strip():
                problems.append(f"{where}: choice {chr(65 + i)} ({c.text[:40]!r}) has no 'why' (missing explanation)")
        if not q.references:
            problems.append(f"{where}: no references")
        problems.extend(f"{where}: {p}" for p in objective_problems(q))
    longest, singles = longest_right(questions)
    if singles and len(longest) > MAX_LONGEST_RIGHT * singles:
        problems.append(f"{root}: the right answer is the longest choice in {len(longest)} of {singles} single-choice "
                        f"questions (at most {int(MAX_LONGEST_RIGHT * singles)} allowed: 'pick the longest' must not pass); "
                        f"rewrite distractors to the same length and register: {', '.join(longest)}")
    if check_coverage and questions:
        for o in OBJECTIVES:
            if not any(o in q.objectives for q in questions):
                problems.append(f"{root}: objective {o} has no questions")
        for a in AREAS:
            if not any(q.area == a for q in questions):
                problems.append(f"{root}: area {a} has no questions")
        fills = sum(q.type == "fill" for q in questions)
        if fills < MIN_FILL_SHARE * len(questions):
            problems.append(f"{root}: only {fills} of {len(questions)} questions are fill-in-the-blank "
                            f"(want at least {MIN_FILL_SHARE:.0%})")
    return problems
