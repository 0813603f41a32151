"""Judge a learner's response the way the exam does: all or nothing.

* single choice: one letter (``B``; case and surrounding blanks do not matter).
* multiple choice: the set of letters (``A,C``, ``A C``, ``AC`` or a list); it must be exactly the
  right set, as LPI gives no partial credit that it documents.
* either kind may also be answered with the choices' own texts (a list, or one text per line): that is
  what a session stores (:func:`choice_texts`), since letters change from one attempt to the next.
* fill-in: trimmed, then compared exactly with each listed alternative; case matters unless the
  question says ``case_sensitive: false`` (commands, parameters and paths are case-sensitive on the
  exam and in Postfix). Inner blanks are *not* normalised: ``postconf  -e`` with two spaces must be
  listed if it is to count, as the exam would not forgive it either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import LETTERS, Question

Response = str | list[str] | None


@dataclass(frozen=True)
class Verdict:
    correct: bool
    given: str  # the response normalised for storage and display ("" when unanswered)
    expected: str  # the canonical right answer


def normalise(question: Question, response: Response) -> str:
    """The response as stored: sorted letters for choices, the trimmed text for fill-ins."""
    if response is None:
        return ""
    if question.type == "fill":
        text = response if isinstance(response, str) else " ".join(response)
        return text.strip()
    by_text = _letters_of_texts(question, response)
    if by_text is not None:
        return ",".join(sorted(by_text))
    parts = response if isinstance(response, list) else [response]
    letters: set[str] = set()
    for part in parts:
        token = str(part).strip().upper()
        if not token:
            continue
        pieces = re.split(r"[\s,;]+", token) if re.search(r"[\s,;]", token) else list(token)
        letters.update(p for p in pieces if p)
    return ",".join(sorted(letters))


def judge(question: Question, response: Response) -> Verdict:
    """Is RESPONSE right for QUESTION? Unknown letters or an empty answer are simply wrong."""
    given = normalise(question, response)
    expected = question.canonical_answer
    if not given:
        return Verdict(False, given, expected)
    if question.type == "fill":
        if question.case_sensitive:
            ok = given in question.answers
        else:
            ok = given.casefold() in {a.casefold() for a in question.answers}
        return Verdict(ok, given, expected)
    chosen = set(given.split(","))
    valid = set(LETTERS[: len(question.choices)])
    ok = chosen <= valid and chosen == set(question.correct_keys)
    if question.type == "single":
        ok = ok and len(chosen) == 1
    return Verdict(ok, given, expected)


def _letters_of_texts(question: Question, response: str | list[str]) -> set[str] | None:
    """The letters of the choices RESPONSE names by their texts, or None when it does not."""
    parts = response if isinstance(response, list) else str(response).split("\n")
    parts = [str(p).strip() for p in parts if str(p).strip()]
    texts = [c.text for c in question.choices]
    if not parts or not all(p in texts for p in parts):
        return None
    return {LETTERS[texts.index(p)] for p in parts}


def choice_texts(question: Question, given: str) -> str:
    """A normalised choice answer (letters of QUESTION as shown) as the choices' texts, one per line, in the
    order of the bank: the form to store, which stays right when the next attempt shuffles the letters."""
    if question.type == "fill" or not given:
        return given
    chosen = set(given.split(","))
    shown = {LETTERS[i]: c.text for i, c in enumerate(question.choices)}
    texts = [shown[k] for k in sorted(chosen) if k in shown]
    unknown = sorted(k for k in chosen if k not in shown)
    return "\n".join(texts + unknown)
