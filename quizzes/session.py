"""Asking, recording and finishing a session: the steps every face (CLI, tests) shares.

An answer is judged, written to the store (committed at once) and fed to the Leitner boxes before the
next question is shown, so a crash loses at most the question on screen.

Choices are shuffled per attempt (:func:`presented`): the order depends on the session and the question,
so a resumed session shows the same letters again and the next session other ones. The letters a learner
types are judged against the order shown; what is stored is the choices' texts (:func:`quizzes.judge.choice_texts`),
never a letter that means something else in the next attempt.
"""

from __future__ import annotations

import random
from typing import Any

from . import exam, review
from .bank import Bank
from .judge import Verdict, choice_texts, judge
from .model import Question
from .store import Session, Store


def start(store: Store, mode: str, question_ids: list[str], seed: int | None = None,
          time_limit: float | None = None, now: float | None = None) -> Session:
    return store.start_session(mode, question_ids, seed=seed, time_limit=time_limit, now=now)


def start_exam(store: Store, bank: Bank, n: int = exam.DEFAULT_COUNT, seed: int | None = None,
               seconds_per_question: float = exam.SECONDS_PER_QUESTION, now: float | None = None) -> Session:
    ids = exam.draw(bank, n, seed)
    return start(store, "exam", ids, seed=seed, time_limit=len(ids) * seconds_per_question, now=now)


def pending(store: Store, session: Session) -> list[str]:
    """Questions of SESSION not answered yet, in the order they are asked."""
    done = {a.question_id for a in store.answers(session.id)}
    return [q for q in session.question_ids if q not in done]


def time_used(store: Store, session: Session) -> float:
    """Seconds spent answering, summed per question: time while the program was not running is not
    counted, so a crash does not eat the exam's clock."""
    return sum(a.elapsed for a in store.answers(session.id))


def time_left(store: Store, session: Session) -> float | None:
    if session.time_limit is None:
        return None
    return max(0.0, session.time_limit - time_used(store, session))


def shuffled(q: Question, seed: object) -> Question:
    """Q with its choices in an order drawn from SEED (any hashable text or number)."""
    if not q.choices:
        return q
    choices = list(q.choices)
    random.Random(str(seed)).shuffle(choices)
    return q.model_copy(update={"choices": choices})


def presented(session: Session, q: Question, shuffle: bool = True) -> Question:
    """Q as this attempt shows it: choices shuffled by session and question (stable on resume).
    ``shuffle=False`` keeps the bank's order (answers files written beforehand use the bank's letters)."""
    return shuffled(q, f"{session.id}:{session.started}:{q.id}") if shuffle else q


def answer(store: Store, bank: Bank, session: Session, question_id: str, response: str | list[str] | None,
           elapsed: float = 0.0, now: float | None = None, shown: Question | None = None) -> Verdict:
    """Judge RESPONSE against the question as SHOWN (default: the bank's order) and store the choice, not
    the letter. The verdict's ``given`` keeps the letters as shown, for the feedback on screen."""
    q = shown if shown is not None else bank.get(question_id)
    verdict = judge(q, response)
    store.record(session.id, question_id, choice_texts(q, verdict.given), verdict.correct, elapsed=elapsed, now=now)
    review.update(store, question_id, verdict.correct, now=now)
    return verdict


def responses(store: Store, session: Session) -> dict[str, str]:
    return {a.question_id: a.given for a in store.answers(session.id)}


def finish(store: Store, bank: Bank, session: Session, now: float | None = None) -> dict[str, Any]:
    """Score the session (unanswered questions count as wrong) and mark it finished."""
    known = [q for q in session.question_ids if q in set(bank.ids())]
    result = exam.score(bank, known, responses(store, session))
    result.update(session=session.id, mode=session.mode, learner=store.learner,
                  time_used=round(time_used(store, session), 1), time_limit=session.time_limit)
    store.finish_session(session.id, result, now=now)
    return result
