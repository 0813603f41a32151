"""The ``quizzes`` command: a thin click layer over bank, session, exam, review, store and lint.

Every mode runs interactively or from a file of answers (``--answers FILE``, ``-`` for stdin: a YAML or
JSON mapping ``{question_id: answer}``, or plain lines answered in the order asked) and can print its
result as JSON (``--json``; the human-readable text then goes to stderr). Answers: a letter for single
choice (``B``), letters for multiple choice (``A,C``), the text for fill-in.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click
import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from . import exam as exam_mod
from . import export as export_mod
from . import progress as progress_mod
from . import review as review_mod
from . import session as sess
from .bank import Bank, BankError, load_bank, to_json
from .judge import Verdict
from .lint import lint as lint_bank
from .model import LETTERS, Question
from .objectives import AREAS, OBJECTIVES
from .store import Store, StoreError

Asker = Callable[[Question, int, int], "str | None"]


class Ctx:
    def __init__(self, bank_dir: str | None, db: str | None, as_json: bool = False):
        self.bank_dir = bank_dir
        self.db = db
        self.as_json = as_json

    def bank(self) -> Bank:
        try:
            return load_bank(self.bank_dir)
        except BankError as exc:
            raise click.ClickException(str(exc)) from exc

    def store(self) -> Store:
        try:
            return Store(self.db)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from exc


def _console(as_json: bool) -> Console:
    return Console(stderr=as_json, highlight=False)


# --- rendering --------------------------------------------------------------------------------------
def render_question(con: Console, q: Question, i: int, n: int) -> None:
    body = q.display_prompt
    if q.choices:
        body += "\n\n" + "\n".join(f"  {LETTERS[k]}. {c.text}" for k, c in enumerate(q.choices))
    con.print(Panel(body, title=f"Question {i}/{n} - {q.id}", subtitle=f"{q.area} - {', '.join(q.objectives)}",
                    expand=False), markup=False)


def render_feedback(con: Console, q: Question, v: Verdict) -> None:
    head = "[green]Right.[/green]" if v.correct else f"[red]Wrong.[/red] Answer: [bold]{escape(q.canonical_answer)}[/bold]"
    con.print(head)
    for k, c in enumerate(q.choices):
        mark = "+" if c.correct else "-"
        con.print(f"  {mark} {LETTERS[k]}: {c.why}", markup=False)
    if q.type == "fill" and len(q.answers) > 1:
        con.print("  Also accepted: " + " | ".join(q.answers[1:]), markup=False)
    con.print(q.explanation, markup=False)
    if q.references:
        con.print("See: " + "; ".join(q.references), style="dim", markup=False)
    con.print()


def render_result(con: Console, result: dict[str, Any]) -> None:
    verdict = "[green]PASS[/green]" if result["passed"] else "[red]FAIL[/red]"
    con.print(f"\nScore: {result['correct']}/{result['total']} ({result['percent']}%), "
              f"scaled {result['scaled']} of 800, pass mark 500: {verdict}")
    table = Table(title="By objective and area")
    table.add_column("objective / area")
    table.add_column("right", justify="right")
    for key, label in (("by_objective", OBJECTIVES), ("by_area", AREAS)):
        for k, v in result[key].items():
            table.add_row(f"{k} - {label[k].title}", f"{v['correct']}/{v['total']}")
    con.print(table)
    for w in result["wrong"]:
        con.print(Panel(f"{w['prompt']}\n\nYour answer: {w['given'] or '(none)'}\nRight answer: {w['expected']}\n\n"
                        f"{w['explanation']}", title=f"Review: {w['id']}", expand=False), markup=False)


# --- answer sources -------------------------------------------------------------------------------
def load_answers(path: str) -> dict[str, Any] | list[str]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict):
        return {str(k): v for k, v in data.items()}
    return text.splitlines()


def answer_problem(q: Question, text: str, hints: bool = False) -> str | None:
    """What is wrong with TEXT as an answer to Q as shown (None: it is an answer, right or wrong)."""
    text = text.strip()
    stop = "or press Ctrl-D to stop (your progress is saved)"
    if hints and text == review_mod.HINT:
        return None
    if not text:
        what = "the answer text" if q.type == "fill" else "a letter" if q.type == "single" else "letters"
        return f"Type {what}, {stop}."
    if q.type == "fill" or text in {c.text for c in q.choices}:
        return None
    valid = LETTERS[: len(q.choices)]
    token = text.upper()
    pieces = [p for p in re.split(r"[\s,;]+", token) if p] if re.search(r"[\s,;]", token) else list(token)
    span = f"{valid[0]} to {valid[-1]}"
    if q.type == "single" and (len(pieces) != 1 or pieces[0] not in valid):
        return f"Expected one letter, {span} ({text!r} is not one); type it again, {stop}."
    if q.type == "multiple" and not all(p in valid for p in pieces):
        return f"Expected letters {span}, e.g. A,C ({text!r} is not); type them again, {stop}."
    return None


def make_asker(con: Console, answers_file: str | None, hints: Store | None = None) -> Asker:
    """A function that shows a question and returns the learner's response (None = stop here).

    Interactive answers that are empty or not letters of the choices shown are asked again, saying what
    is expected. With HINTS (review), ``?`` shows a hint and asks again; the answer then rates Hard."""
    asker = _make_asker(con, answers_file, hints is not None)
    if hints is None:
        return asker

    def with_hints(q: Question, i: int, n: int) -> str | None:
        response = asker(q, i, n)
        while response is not None and response.strip() == review_mod.HINT:
            con.print(review_mod.hint(q), markup=False)
            review_mod.mark_hint(hints, q.id)
            response = asker(q, i, n)
        return response

    with_hints.shuffles = getattr(asker, "shuffles", True)  # type: ignore[attr-defined]
    return with_hints


def _make_asker(con: Console, answers_file: str | None, hints: bool) -> Asker:
    if answers_file:
        source = load_answers(answers_file)
        lines = iter(source) if isinstance(source, list) else None

        def from_file(q: Question, i: int, n: int) -> str | None:
            render_question(con, q, i, n)
            if lines is not None:
                return next(lines, None)
            value = source.get(q.id, "")  # type: ignore[union-attr]
            value = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            con.print(f"> {value}", markup=False)
            return value

        from_file.shuffles = False  # type: ignore[attr-defined]  # a file written beforehand uses the bank's letters
        return from_file

    def interactive(q: Question, i: int, n: int) -> str | None:
        render_question(con, q, i, n)
        hint = "letter" if q.type == "single" else "letters, e.g. A,C" if q.type == "multiple" else "text"
        hint += ", ? for a hint" if hints else ""
        while True:
            try:
                text = click.prompt(f"Answer ({hint})", default="", show_default=False, err=con.stderr)
            except (click.Abort, EOFError):
                return None
            problem = answer_problem(q, text, hints)
            if problem is None:
                return text
            con.print(problem, style="yellow", markup=False)

    return interactive


def _emit(ctx: Ctx, con: Console, payload: dict[str, Any]) -> None:
    if ctx.as_json:
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))


# --- commands ---------------------------------------------------------------------------------------
@click.group()
@click.option("--bank", "bank_dir", envvar="QUIZZES_BANK", type=click.Path(file_okay=False),
              help="Question bank directory (default: the packaged bank).")
@click.option("--db", envvar="QUIZZES_DB", type=click.Path(dir_okay=False),
              help="Progress database (default: QUIZZES_HOME or the user data directory).")
@click.version_option(package_name="postfix-tls-lab")
@click.pass_context
def main(ctx: click.Context, bank_dir: str | None, db: str | None) -> None:
    """Practise for LPIC-2 202-450 (211.1, Securing Postfix with TLS)."""
    ctx.obj = Ctx(bank_dir, db)


_answers_opt = click.option("--answers", "answers_file", metavar="FILE",
                            help="Answer from FILE ('-' = stdin) instead of asking.")
_json_opt = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def _run(ctx: Ctx, store: Store, bank: Bank, session: sess.Session, ask: Asker, con: Console,
         feedback: bool) -> list[dict[str, Any]]:
    """Ask every pending question of SESSION, recording each answer before the next one."""
    log: list[dict[str, Any]] = []
    todo = sess.pending(store, session)
    total = len(session.question_ids)
    for qid in todo:
        left = sess.time_left(store, session)
        if left is not None and left <= 0:
            con.print("[yellow]Time is up.[/yellow]")
            break
        q = sess.presented(session, bank.get(qid), shuffle=getattr(ask, "shuffles", True))  # letters per attempt
        t0 = time.monotonic()
        response = ask(q, total - len(sess.pending(store, session)) + 1, total)
        if response is None:
            con.print("[yellow]Stopped; progress is saved.[/yellow]")
            break
        v = sess.answer(store, bank, session, qid, response, elapsed=time.monotonic() - t0, shown=q)
        log.append({"id": qid, "given": v.given, "correct": v.correct, "expected": v.expected})
        if feedback:
            render_feedback(con, q, v)
    return log


@main.command()
@click.option("--objective", help="Only this objective (lesson-1, lesson-2, 211.1).")
@click.option("--area", type=click.Choice(sorted(AREAS)), help="Only this knowledge area.")
@click.option("--tag", "tags", multiple=True, help="Only questions with this tag (repeatable).")
@click.option("--id", "ids", multiple=True, help="Exactly these questions, in this order (repeatable).")
@click.option("--type", "qtype", type=click.Choice(["single", "multiple", "fill"]))
@click.option("-n", "--count", default=10, show_default=True, help="How many questions.")
@click.option("--seed", type=int, help="Seed for the question order (default: random).")
@_answers_opt
@_json_opt
@click.pass_obj
def practice(ctx: Ctx, objective, area, tags, ids, qtype, count, seed, answers_file, as_json) -> None:
    """One question at a time, with the explanation right after each answer."""
    ctx.as_json = as_json
    con = _console(as_json)
    bank = ctx.bank()
    try:
        pool = bank.select(ids=list(ids), tags=list(tags), objective=objective, area=area, qtype=qtype)
    except KeyError as exc:
        raise click.ClickException(f"no question with id {exc}") from exc
    if not pool:
        raise click.ClickException("no question matches these filters")
    if not ids:
        random.Random(seed).shuffle(pool)
        pool = pool[:count]
    store = ctx.store()
    session = sess.start(store, "practice", [q.id for q in pool], seed=seed)
    log = _run(ctx, store, bank, session, make_asker(con, answers_file), con, feedback=True)
    result = sess.finish(store, bank, session)
    con.print(f"Practice: {result['correct']}/{result['total']} right.")
    _emit(ctx, con, {"mode": "practice", "session": session.id, "answers": log,
                     **{k: result[k] for k in ("total", "correct", "percent", "by_objective", "by_area")}})


@main.command()
@click.option("-n", "--count", default=exam_mod.DEFAULT_COUNT, show_default=True, help="Number of questions.")
@click.option("--seconds-per-question", default=exam_mod.SECONDS_PER_QUESTION, show_default=True,
              help="Time allowed per question (LPI: 90 minutes for 60).")
@click.option("--seed", type=int, help="Seed for the draw (same seed, same exam).")
@click.option("--resume", is_flag=True, help="Continue the last unfinished exam.")
@_answers_opt
@_json_opt
@click.pass_obj
def exam(ctx: Ctx, count, seconds_per_question, seed, resume, answers_file, as_json) -> None:
    """An LPI-like timed exam: no feedback until the end, scaled score 200-800, pass at 500."""
    ctx.as_json = as_json
    con = _console(as_json)
    bank = ctx.bank()
    store = ctx.store()
    session = store.unfinished("exam") if resume else None
    if resume and session is None:
        raise click.ClickException("no unfinished exam to resume")
    if session is None:
        session = sess.start_exam(store, bank, count, seed, seconds_per_question)
        con.print(f"Exam {session.id}: {len(session.question_ids)} questions, "
                  f"{(session.time_limit or 0) / 60:.0f} minutes.")
    else:
        con.print(f"Resuming exam {session.id}: {len(sess.pending(store, session))} questions left, "
                  f"{(sess.time_left(store, session) or 0) / 60:.1f} minutes left.")
    _run(ctx, store, bank, session, make_asker(con, answers_file), con, feedback=False)
    left = sess.time_left(store, session)
    if sess.pending(store, session) and left is not None and left > 0:
        con.print(f"Exam {session.id} is not finished; continue with: quizzes exam --resume")
        _emit(ctx, con, {"mode": "exam", "session": session.id, "finished": False,
                         "pending": sess.pending(store, session)})
        sys.exit(3)
    result = sess.finish(store, bank, session)
    render_result(con, result)
    _emit(ctx, con, {"finished": True, **result})


def when(ts: float | None, now: float | None = None) -> str:
    """A review time for people: '2026-12-05 14:03 UTC (in 3 days)'."""
    if ts is None:
        return "none"
    now = time.time() if now is None else now
    delta = ts - now
    span = abs(delta)
    amount = (f"{span / 86400:.0f} days" if span >= 1.5 * 86400 else f"{span / 3600:.0f} hours" if span >= 5400
              else f"{max(1, round(span / 60))} minutes")
    rel = "now" if abs(delta) < 30 else f"in {amount}" if delta > 0 else f"{amount} ago"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") + f" ({rel})"


def _iso(ts: float | None) -> str | None:
    return progress_mod.iso(ts) if ts is not None else None


@main.command()
@click.option("-n", "--count", default=20, show_default=True, help="At most this many due questions.")
@click.option("--list", "list_only", is_flag=True, help="Only show the schedule: what is due, and when the rest is.")
@_answers_opt
@_json_opt
@click.pass_obj
def review(ctx: Ctx, count, list_only, answers_file, as_json) -> None:
    """Spaced repetition (FSRS) of the questions you missed; '?' at the prompt gives a hint."""
    ctx.as_json = as_json
    con = _console(as_json)
    bank = ctx.bank()
    store = ctx.store()
    known = set(bank.ids())
    due = review_mod.due(store, known=known)
    plan = review_mod.schedule(store, known)
    nxt = review_mod.next_review(store, known=known)
    con.print(f"{len(due)} due now, {len(plan)} in review; next after that: "
              + (f"{nxt.question_id} on {when(nxt.due)}" if nxt else "none") + ".")
    if list_only:
        table = Table("question", "state", "due")
        for s in plan:
            table.add_row(s.question_id, s.state, when(s.due))
        con.print(table)
        _emit(ctx, con, {"mode": "review", "due": len(due), "schedule": [
            {"id": s.question_id, "state": s.state, "due": _iso(s.due)} for s in plan]})
        return
    due = due[:count]
    if not due:
        con.print("Nothing is due for review.")
        _emit(ctx, con, {"mode": "review", "due": 0, "answers": [], "next_review": _iso(nxt.due) if nxt else None})
        return
    session = sess.start(store, "review", due)
    log = _run(ctx, store, bank, session, make_asker(con, answers_file, hints=store), con, feedback=True)
    sess.finish(store, bank, session)
    cards = {s.question_id: s for s in review_mod.schedule(store)}
    ratings = {r[0]: r[1] for r in store.reviews()}  # the latest rating per question
    for item in log:
        card = cards.get(item["id"])
        item["rating"] = review_mod.Rating(ratings[item["id"]]).name if item["id"] in ratings else None
        item["state"] = card.state if card else None
        item["next_review"] = _iso(card.due) if card else None
        if card:
            con.print(f"{item['id']}: {item['rating']}; next review {when(card.due)}", markup=False)
    nxt = review_mod.next_review(store, known=known)
    con.print("Next review: " + (f"{nxt.question_id} on {when(nxt.due)}." if nxt else "none."))
    _emit(ctx, con, {"mode": "review", "due": len(due), "answers": log,
                     "next_review": _iso(nxt.due) if nxt else None})


def stats_data(store: Store, bank: Bank) -> dict[str, Any]:
    """Progress over every answer ever given (the latest answer per question counts for 'known')."""
    answers = store.answers()
    latest: dict[str, bool] = {}
    for a in answers:
        latest[a.question_id] = a.correct
    known = {q.id: q for q in bank}
    by_area = {a: {"seen": 0, "right_now": 0, "in_bank": 0} for a in AREAS}
    for q in bank:
        by_area[q.area]["in_bank"] += 1
    for qid, ok in latest.items():
        if qid in known:
            by_area[known[qid].area]["seen"] += 1
            by_area[known[qid].area]["right_now"] += ok
    exams = []
    for s in store.sessions("exam"):
        r = store.result(s.id)
        exams.append({"session": s.id, "finished": s.finished is not None,
                      "scaled": r["scaled"] if r else None, "passed": r["passed"] if r else None})
    states: dict[str, int] = {}
    for s in review_mod.schedule(store, set(known)):
        states[s.state] = states.get(s.state, 0) + 1
    nxt = review_mod.next_review(store, known=set(known))
    return {
        "learner": store.learner,
        "answers": len(answers),
        "answers_correct": sum(a.correct for a in answers),
        "questions_seen": len(latest),
        "questions_in_bank": len(bank),
        "by_area": by_area,
        "exams": exams,
        "review": states,
        "due": len(review_mod.due(store, known=set(known))),
        "next_review": _iso(nxt.due) if nxt else None,
        "retention": review_mod.retention(store, known=set(known)),
    }


@main.command()
@_json_opt
@click.pass_obj
def stats(ctx: Ctx, as_json) -> None:
    """What you have answered, by area; exam scores; review schedule and retention."""
    ctx.as_json = as_json
    con = _console(as_json)
    data = stats_data(ctx.store(), ctx.bank())
    if as_json:
        _emit(ctx, con, data)
        return
    con.print(f"{data['learner']}: {data['answers']} answers, {data['answers_correct']} right; "
              f"{data['questions_seen']}/{data['questions_in_bank']} questions seen; {data['due']} due for review.")
    table = Table("area", "seen", "right (latest)", "in bank")
    for a, v in data["by_area"].items():
        table.add_row(a, str(v["seen"]), str(v["right_now"]), str(v["in_bank"]))
    con.print(table)
    for e in data["exams"]:
        con.print(f"exam {e['session']}: " + (f"{e['scaled']} ({'pass' if e['passed'] else 'fail'})"
                                              if e["finished"] else "unfinished (quizzes exam --resume)"))
    if data["review"]:
        con.print("In review (FSRS): " + ", ".join(f"{k}: {v}" for k, v in sorted(data["review"].items()))
                  + f"; next review {when(progress_mod.epoch(data['next_review']) if data['next_review'] else None)}.")
    r = data["retention"]
    if r["reviews"]:
        con.print(f"Retention: {r['right']} of {r['reviews']} reviews of learned questions right "
                  f"({r['measured']:.0%}; target {r['desired']:.0%}).")
    if r["predicted"] is not None:
        con.print(f"FSRS's recall probability now, mean over {r['cards']} questions: {r['predicted']:.0%}.")


CSV_FIELDS = ["learner", "database", "session", "mode", "question_id", "type", "area", "objectives",
              "given", "correct", "answered_at", "elapsed"]


@main.command()
@click.option("--format", "fmt", type=click.Choice(list(export_mod.FORMATS)), default="json", show_default=True,
              help="json: the whole bank for the course site; csv: learners' results for instructors; anki: an "
                   "Anki deck (.apkg); qti: an IMS QTI 2.1 package (.zip, e.g. for Canvas); moodle: Moodle XML; "
                   "gift: Moodle's GIFT text.")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Write here (all or nothing) instead of stdout; needed for anki and qti.")
@click.option("--results", "result_dbs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="(csv) progress databases to include, e.g. one per student (default: your own).")
@click.pass_obj
def export(ctx: Ctx, fmt, output, result_dbs) -> None:
    """Export the bank (JSON, Anki, QTI, Moodle XML, GIFT), or results as CSV."""
    bank = ctx.bank()
    if fmt in export_mod.WRITERS:
        if not output and fmt in ("anki", "qti"):
            raise click.UsageError(f"--format {fmt} writes a binary file: give --output FILE "
                                   f"(e.g. --output bank{export_mod.SUFFIX[fmt]})")
        try:
            if output:
                path = export_mod.export(bank, fmt, output)
                click.echo(f"{len(bank)} questions written to {path} ({fmt})", err=True)
            else:
                click.echo(export_mod.WRITERS[fmt](bank).decode("utf-8"), nl=False)
        except export_mod.ExportError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    if fmt == "json":
        text = to_json(bank)
    else:
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
        writer.writeheader()
        known = {q.id: q for q in bank}
        for db in result_dbs or [None]:
            try:
                store = Store(db) if db else ctx.store()
            except StoreError as exc:
                raise click.ClickException(str(exc)) from exc
            modes = {s.id: s.mode for s in store.sessions()}
            for a in store.answers():
                q = known.get(a.question_id)
                writer.writerow({
                    "learner": store.learner, "database": str(store.path), "session": a.session_id,
                    "mode": modes.get(a.session_id, ""), "question_id": a.question_id,
                    "type": q.type if q else "", "area": q.area if q else "",
                    "objectives": " ".join(q.objectives) if q else "", "given": a.given,
                    "correct": int(a.correct),
                    "answered_at": datetime.fromtimestamp(a.answered_at, timezone.utc).isoformat(timespec="seconds"),
                    "elapsed": round(a.elapsed, 1),
                })
            store.close()
        text = buf.getvalue()
    if output:
        try:
            export_mod.write_atomic(output, text)
        except export_mod.ExportError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        click.echo(text, nl=False)


@main.group()
def progress() -> None:
    """Carry progress between the course site and this command (one JSON file, both ways)."""


@progress.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@_json_opt
@click.pass_obj
def progress_export(ctx: Ctx, file, as_json) -> None:
    """Write every answer and exam to FILE, for the site's 'Import progress' or another machine."""
    store = ctx.store()
    try:
        info = progress_mod.export_file(store, file)
    except progress_mod.ProgressError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(info, indent=2) if as_json else
               f"{info['answers']} answers and {info['exams']} exams written to {file}")


@progress.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@_json_opt
@click.pass_obj
def progress_import(ctx: Ctx, file, as_json) -> None:
    """Merge FILE (from the site's 'Export progress' or 'quizzes progress export') into your progress."""
    store = ctx.store()
    try:
        info = progress_mod.import_file(store, file, known=set(ctx.bank().ids()))
    except progress_mod.ProgressError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['answers_added']} answers added, {info['answers_already_there']} already there; "
               f"{info['exams_added']} exams added.")
    if info["unknown_questions"]:
        click.echo(f"Kept {len(info['unknown_questions'])} answers' question ids that this bank does not have: "
                   + ", ".join(info["unknown_questions"]), err=True)


@main.command()
@_json_opt
@click.pass_obj
def lint(ctx: Ctx, as_json) -> None:
    """Check the bank: schema, duplicate ids, answers not among choices, missing explanations, coverage."""
    problems = lint_bank(ctx.bank_dir)
    if as_json:
        click.echo(json.dumps({"problems": problems}, indent=2))
    else:
        for p in problems:
            click.echo(p)
        click.echo(f"{len(problems)} problem(s)" if problems else "bank is clean", err=bool(problems))
    if problems:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
