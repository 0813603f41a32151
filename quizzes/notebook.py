"""Bank questions as an interactive quiz at the end of a notebook.

    from quizzes.notebook import show_quiz
    show_quiz(tags=["starttls"], n=3)          # or ids=["sec-encrypt-530", ...]

Why the care about the plain-text form: nbval compares a cell's stored output with a fresh run. The
widget's model id is random (nbval skips that mime type), so what it compares is ``text/plain``; ours is
the questions themselves, rendered the same way on every run (seeded selection, bank order of choices,
answers hidden). Without ipywidgets, the same text is what the cell shows.

The widget is an attempt: each time the cell runs, its choices are shuffled afresh (:func:`shuffled`) and
the letters it shows, judges and explains are those of that order, so a learner who re-runs the quiz
cannot answer by remembered letters.
"""

from __future__ import annotations

import html
import random
from typing import Any

from .bank import Bank, load_bank
from .judge import judge
from .model import LETTERS, Question
from .session import shuffled


def pick(bank: Bank, ids: list[str] | None = None, tags: list[str] | None = None, n: int = 3,
         objective: str | None = None, area: str | None = None, seed: int = 0) -> list[Question]:
    """The questions to show: IDS in the order given, else N matching TAGS/OBJECTIVE/AREA, seeded."""
    if ids:
        return bank.select(ids=list(ids))
    pool = bank.select(tags=list(tags) if tags else None, objective=objective, area=area)
    if len(pool) <= n:
        return pool
    chosen = set(q.id for q in random.Random(seed).sample(pool, n))
    return [q for q in pool if q.id in chosen]  # bank order: stable and readable


def plain_text(questions: list[Question]) -> str:
    """The deterministic text form (no answers), also the widget's text/plain."""
    ids = " ".join(f"--id {q.id}" for q in questions)
    lines = [f"Quiz: {len(questions)} question(s). Answer them in Jupyter, or in a terminal: quizzes practice {ids}"]
    for i, q in enumerate(questions, 1):
        lines.append("")
        lines.append(f"{i}. [{q.id}] {q.display_prompt}")
        for k, c in enumerate(q.choices):
            lines.append(f"   {LETTERS[k]}. {c.text}")
        if q.type == "fill":
            lines.append("   Answer: ____________")
    return "\n".join(lines)


def feedback_html(q: Question, response: Any) -> str:
    v = judge(q, response)
    head = ("<b style='color:green'>Right.</b>" if v.correct
            else f"<b style='color:#b00'>Not quite.</b> Answer: <code>{html.escape(q.canonical_answer)}</code>")
    parts = [head]
    if q.choices:
        parts.append("<ul>" + "".join(
            f"<li><b>{LETTERS[k]}</b> ({'right' if c.correct else 'wrong'}): {html.escape(c.why)}</li>"
            for k, c in enumerate(q.choices)) + "</ul>")
    elif len(q.answers) > 1:
        parts.append("Accepted: " + ", ".join(f"<code>{html.escape(a)}</code>" for a in q.answers))
    parts.append(f"<p>{html.escape(q.explanation)}</p>")
    if q.references:
        parts.append(f"<p><i>See: {html.escape('; '.join(q.references))}</i></p>")
    return "".join(parts)


class PlainQuiz:
    """What show_quiz returns when ipywidgets is not installed: just the text."""

    def __init__(self, questions: list[Question]):
        self.questions = questions

    def __repr__(self) -> str:
        return plain_text(self.questions)


def attempt(questions: list[Question], seed: object = None) -> list[Question]:
    """The questions as one attempt shows them: choices shuffled (a fresh order unless SEED is given)."""
    if seed is None:
        seed = random.SystemRandom().random()
    return [shuffled(q, f"{seed}:{q.id}") for q in questions]


def _widget_quiz(questions: list[Question], seed: object = None) -> Any:
    import ipywidgets as w

    text = plain_text(questions)  # the stable text form, in bank order
    questions = attempt(questions, seed)

    class QuizWidget(w.VBox):
        """A VBox of questions whose text/plain form is the stable question text."""

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
            data = super()._repr_mimebundle_(**kwargs) or {}
            data["text/plain"] = text
            return data

        def __repr__(self) -> str:
            return text

    boxes = []
    for i, q in enumerate(questions, 1):
        choices_html = "".join(f"<div><b>{LETTERS[k]}.</b> {html.escape(c.text)}</div>" for k, c in enumerate(q.choices))
        prompt = w.HTML(f"<p><b>{i}.</b> {html.escape(q.display_prompt)}</p>{choices_html}")
        letters = list(LETTERS[: len(q.choices)])
        if q.type == "single":
            entry: Any = w.RadioButtons(options=letters, value=None, layout=w.Layout(width="auto"))
            get = lambda e=entry: e.value  # noqa: E731
        elif q.type == "multiple":
            checks = [w.Checkbox(description=x, value=False, indent=False, layout=w.Layout(width="4em")) for x in letters]
            entry = w.HBox(checks)
            get = lambda cs=checks: [c.description for c in cs if c.value]  # noqa: E731
        else:
            entry = w.Text(placeholder="your answer", layout=w.Layout(width="60%"))
            get = lambda e=entry: e.value  # noqa: E731
        out = w.HTML()
        button = w.Button(description="Check", button_style="primary")

        def on_click(_b: Any, q: Question = q, get: Any = get, out: Any = out) -> None:
            out.value = feedback_html(q, get())

        button.on_click(on_click)
        boxes.append(w.VBox([prompt, entry, button, out], layout=w.Layout(margin="0 0 1em 0")))
    return QuizWidget(boxes)


def show_quiz(ids: list[str] | None = None, tags: list[str] | None = None, n: int = 3,
              objective: str | None = None, area: str | None = None, seed: int = 0,
              bank: Bank | None = None, widgets: bool = True) -> Any:
    """An interactive quiz of a few bank questions; display it by leaving it last in a cell.

    ids: exact question ids (in this order); otherwise ``n`` questions matching ``tags`` (a question's
    tags, objectives or area), ``objective`` and ``area``, chosen with ``seed`` so the cell's output is
    the same on every run. ``widgets=False`` (or no ipywidgets) gives the plain-text form.
    """
    questions = pick(bank or load_bank(), ids=ids, tags=tags, n=n, objective=objective, area=area, seed=seed)
    if not questions:
        raise ValueError("no question matches; see `quizzes export` for ids and tags")
    if widgets:
        try:
            return _widget_quiz(questions)
        except ImportError:
            pass
    return PlainQuiz(questions)
