"""``quizzes lint``: every defect of a bank, for authors and CI, with file:line: id: message.

Hard defects (YAML or schema errors, duplicate ids, an answer not among the choices) also stop
:func:`quizzes.bank.load_bank`; lint reports them together with the soft ones that still load but
make a poor question: missing explanations or per-choice reasons, no references, objectives or
areas that no question tests, and a bank whose fill-in share is below a quarter.
"""

from __future__ import annotations

import os

from .bank import bank_dir, read_all
from .objectives import AREAS, OBJECTIVES

MIN_FILL_SHARE = 0.25


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
