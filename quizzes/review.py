"""Spaced repetition of missed questions with Leitner boxes.

Why Leitner: it is simple enough to explain to a class and needs no tuning. A question enters
box 1 the moment it is answered wrong, in any mode. Each right answer in review moves it up one box
and pushes its next showing further out; a wrong answer sends it back to box 1. Questions never
missed are not reviewed: the exam simulation is where they come up again.
"""

from __future__ import annotations

import time

from .store import Store

DAY = 86400.0
#: box -> seconds until the question is due again after landing in that box
INTERVALS: dict[int, float] = {1: 0.0, 2: 1 * DAY, 3: 3 * DAY, 4: 7 * DAY, 5: 16 * DAY}
TOP_BOX = max(INTERVALS)


def update(store: Store, question_id: str, correct: bool, now: float | None = None) -> tuple[int, float] | None:
    """Move QUESTION_ID between boxes after an answer; returns its (box, due) or None if not tracked."""
    now = time.time() if now is None else now
    current = store.box(question_id)
    if not correct:
        store.set_box(question_id, 1, now + INTERVALS[1], now)
        return 1, now + INTERVALS[1]
    if current is None:
        return None
    box = min(current[0] + 1, TOP_BOX)
    store.set_box(question_id, box, now + INTERVALS[box], now)
    return box, now + INTERVALS[box]


def due(store: Store, now: float | None = None, known: set[str] | None = None) -> list[str]:
    """Question ids due for review now, lowest box first, then the longest overdue.

    ``known`` drops ids that are no longer in the bank (a question was renamed or removed).
    """
    now = time.time() if now is None else now
    items = [(box, when, qid) for qid, (box, when) in store.boxes().items() if when <= now]
    items.sort()
    return [qid for _b, _w, qid in items if known is None or qid in known]
