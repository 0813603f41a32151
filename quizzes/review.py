"""Spaced repetition of missed questions, scheduled by FSRS (the ``fsrs`` package, Anki's scheduler).

Which questions: a question enters review the moment it is answered wrong, in any mode; questions never
missed are not reviewed (the exam simulation is where they come up again). Each answer to a question in
review is a rating for FSRS:

* wrong -> ``Again``;
* right after asking for a hint (``?`` at the review prompt) -> ``Hard``;
* right at once -> ``Good``. ``Easy`` is not given: a quiz answer shows that the learner knew it, not that
  it was too easy, and FSRS's Good already lengthens the interval after each success.

The scheduler uses FSRS's default parameters, 90 % desired retention and no interval fuzzing (a class
reviewing the same 119 questions gets the same plan; fuzzing spreads large decks, which this is not).
Cards live in the progress database (``cards``), every rating in ``reviews``. A database of schema 1 kept
Leitner boxes; :func:`migrate_leitner` turns each box into a card once (box 1, just missed: a new card
due when the box was; boxes 2-5: a review card whose stability is the box's interval and due date the
box's), keeping the ``boxes`` table untouched.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone

from fsrs import Card, Rating, Scheduler, State

from .store import Store

DAY = 86400.0
DESIRED_RETENTION = 0.9
#: the former Leitner boxes: box -> days until due again (for the migration)
LEITNER_DAYS: dict[int, float] = {1: 0.0, 2: 1.0, 3: 3.0, 4: 7.0, 5: 16.0}
SCHEDULER = Scheduler(desired_retention=DESIRED_RETENTION, enable_fuzzing=False)
HINT = "?"
#: as Anki's "learn ahead limit" (20 minutes by default): a card in its learning steps (1 and 10 minutes
#: after a miss) may be shown up to this early, so a question missed in an exam can be reviewed at once
LEARN_AHEAD = 20 * 60.0


@dataclass(frozen=True)
class Scheduled:
    question_id: str
    rating: str  # Again | Hard | Good
    state: str  # Learning | Review | Relearning
    due: float  # epoch seconds
    stability: float | None


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def rating_for(correct: bool, hinted: bool = False) -> Rating:
    if not correct:
        return Rating.Again
    return Rating.Hard if hinted else Rating.Good


def _new_card(question_id: str) -> Card:
    return Card(card_id=zlib.crc32(question_id.encode()) or 1)


def migrate_leitner(store: Store) -> int:
    """Turn schema 1's Leitner boxes into FSRS cards, once. Returns how many cards it made."""
    if store.meta("leitner_migrated") is not None:
        return 0
    made = 0
    have = store.cards()
    for qid, (box, due) in store.boxes().items():
        if qid in have:
            continue
        row = store.db.execute("SELECT updated FROM boxes WHERE question_id = ?", (qid,)).fetchone()
        updated = row[0] if row else due
        if box <= 1:
            card = _new_card(qid)
            card.due = _dt(due)
        else:
            card = Card(card_id=zlib.crc32(qid.encode()) or 1, state=State.Review, step=None,
                        stability=LEITNER_DAYS.get(box, 16.0), difficulty=5.0, due=_dt(due),
                        last_review=_dt(updated))
        store.set_card(qid, card.to_json(), due, updated)
        made += 1
    store.set_meta("leitner_migrated", str(time.time()))
    return made


def _load(store: Store, question_id: str) -> Card | None:
    raw = store.card(question_id)
    return Card.from_json(raw) if raw else None


def mark_hint(store: Store, question_id: str) -> None:
    """The learner asked for a hint on QUESTION_ID: the next answer to it rates Hard at best."""
    store.set_meta(f"hint:{question_id}", str(time.time()))


def _take_hint(store: Store, question_id: str) -> bool:
    key = f"hint:{question_id}"
    if store.meta(key) is None:
        return False
    store.db.execute("DELETE FROM meta WHERE key = ?", (key,))
    return True


def update(store: Store, question_id: str, correct: bool, now: float | None = None,
           hinted: bool = False) -> Scheduled | None:
    """Rate an answer to QUESTION_ID; returns its new schedule, or None when it is not in review
    (never missed) or the answer is older than the card's last review (an import of old answers).
    A hint asked for since the last answer (:func:`mark_hint`) counts as ``hinted``."""
    migrate_leitner(store)
    now = time.time() if now is None else now
    hinted = _take_hint(store, question_id) or hinted
    card = _load(store, question_id)
    if card is None:
        if correct:
            return None
        card = _new_card(question_id)
    if card.last_review is not None and now < card.last_review.timestamp():
        return None
    state_before = card.state
    recall = SCHEDULER.get_card_retrievability(card, _dt(now)) if card.last_review is not None else None
    rating = rating_for(correct, hinted)
    card, _log = SCHEDULER.review_card(card, rating, review_datetime=_dt(now))
    due = card.due.timestamp()
    store.set_card(question_id, card.to_json(), due, now)
    store.add_review(question_id, int(rating), int(state_before), recall, correct, now)
    return Scheduled(question_id, rating.name, card.state.name, due, card.stability)


def due(store: Store, now: float | None = None, known: set[str] | None = None) -> list[str]:
    """Question ids due for review now, the longest overdue first (learning steps up to LEARN_AHEAD early).

    ``known`` drops ids that are no longer in the bank (a question was renamed or removed).
    """
    migrate_leitner(store)
    now = time.time() if now is None else now
    items = []
    for qid, (raw, when) in store.cards().items():
        learning = Card.from_json(raw).state in (State.Learning, State.Relearning)
        if when <= now or (learning and when <= now + LEARN_AHEAD):
            items.append((when, qid))
    return [qid for _w, qid in sorted(items) if known is None or qid in known]


def schedule(store: Store, known: set[str] | None = None) -> list[Scheduled]:
    """Every card in review, soonest due first."""
    migrate_leitner(store)
    out = []
    for qid, (raw, when) in store.cards().items():
        if known is not None and qid not in known:
            continue
        card = Card.from_json(raw)
        out.append(Scheduled(qid, "", card.state.name, when, card.stability))
    return sorted(out, key=lambda s: (s.due, s.question_id))


def next_review(store: Store, now: float | None = None, known: set[str] | None = None) -> Scheduled | None:
    """The first card that falls due after NOW (None when no card is waiting)."""
    now = time.time() if now is None else now
    later = [s for s in schedule(store, known) if s.due > now]
    return later[0] if later else None


def retention(store: Store, now: float | None = None, known: set[str] | None = None) -> dict[str, object]:
    """How well reviewed questions are remembered.

    ``measured``: of the answers to cards that were in the Review state (learned, then due), the share
    answered right: the true retention, comparable with ``desired``. ``predicted``: FSRS's mean recall
    probability of every card in review right now.
    """
    migrate_leitner(store)
    now = time.time() if now is None else now
    mature = [r for r in store.reviews() if r[2] == int(State.Review) and (known is None or r[0] in known)]
    right = sum(r[4] for r in mature)
    recalls = []
    for qid, (raw, _when) in store.cards().items():
        if known is not None and qid not in known:
            continue
        card = Card.from_json(raw)
        if card.last_review is not None:
            recalls.append(SCHEDULER.get_card_retrievability(card, _dt(now)))
    return {
        "desired": DESIRED_RETENTION,
        "reviews": len(mature),
        "right": right,
        "measured": round(right / len(mature), 3) if mature else None,
        "cards": len(recalls),
        "predicted": round(sum(recalls) / len(recalls), 3) if recalls else None,
    }


def hint(question) -> str:  # noqa: ANN001 (a quizzes.model.Question)
    """A hint that leaves the answer to the learner: one wrong choice ruled out, or the answer's start."""
    from .model import LETTERS

    if question.type == "fill":
        answer = question.answers[0]
        shown = answer[: max(1, len(answer) // 4)]
        return f"Hint: the answer starts with {shown!r} and has {len(answer)} characters."
    wrong = [i for i, c in enumerate(question.choices) if not c.correct]
    i = wrong[zlib.crc32(question.id.encode()) % len(wrong)]
    return f"Hint: {LETTERS[i]} is wrong: {question.choices[i].why}"
