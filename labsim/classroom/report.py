"""What the instructor sees: each student's checks and quiz results, as CSV and as an HTML report."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

from .. import checks, lab
from .room import Student, _parallel, load

# --- results ---------------------------------------------------------------------------------------------

def quiz_summary(db: Path) -> dict[str, Any]:
    """A student's quiz results from their SQLite database (quizzes.store), without creating it."""
    empty = {"answers": 0, "correct": 0, "exams": 0, "last_exam_scaled": None, "last_exam_passed": None}
    if not Path(db).exists():
        return empty
    from quizzes.store import Store

    store = Store(db)
    try:
        answers = store.answers()
        out = dict(empty, answers=len(answers), correct=sum(a.correct for a in answers))
        finished = [store.result(s.id) for s in store.sessions("exam") if s.finished is not None]
        finished = [r for r in finished if r]
        out["exams"] = len(finished)
        if finished:
            out["last_exam_scaled"] = finished[-1].get("scaled")
            out["last_exam_passed"] = finished[-1].get("passed")
        return out
    finally:
        store.close()


def student_status(s: Student, steps: list[str] | None = None) -> dict[str, Any]:
    results = checks.run_checks(s.settings, steps)
    checks.record(s.settings, results)
    history = checks.history(s.settings)
    return {
        "student": s.name,
        "home": str(s.settings.home),
        "env_file": str(s.env_file),
        "smtp_port": s.settings.smtp_port,
        "running": lab.backend_running(s.settings),
        "checks": {r.step: {"ok": r.ok, "failing": [c.message for c in r.failing()],
                            "first_passed": history.get(r.step)} for r in results},
        "quiz": quiz_summary(s.quiz_db),
    }


def status(root: Path | None = None, jobs: int = 8, steps: list[str] | None = None) -> list[dict[str, Any]]:
    room = load(root)
    out: dict[str, dict[str, Any]] = {}

    def one(s: Student) -> None:
        out[s.name] = student_status(s, steps)

    errors = _parallel(one, room.students, jobs)
    for name, e in errors.items():
        out[name] = {"student": name, "error": e, "checks": {}, "quiz": quiz_summary(room.student(name).quiz_db)}
    return [out[s.name] for s in room.students]


CSV_FIELDS = ["student", "running", "smtp_port", *[f"check_{n}" for n in checks.lab_steps()],
              *[f"first_passed_{n}" for n in checks.lab_steps()], "steps_passed_ever", "quiz_answers",
              "quiz_correct", "exams", "last_exam_scaled", "last_exam_passed", "failing"]


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def report_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        c, q = r.get("checks", {}), r.get("quiz", {})
        row = {"student": r["student"], "running": int(bool(r.get("running"))), "smtp_port": r.get("smtp_port", "")}
        for n in checks.lab_steps():
            row[f"check_{n}"] = "pass" if c.get(n, {}).get("ok") else "fail"
            row[f"first_passed_{n}"] = _when(c.get(n, {}).get("first_passed"))
        row["steps_passed_ever"] = sum(1 for n in checks.lab_steps() if c.get(n, {}).get("first_passed"))
        row.update(quiz_answers=q.get("answers", 0), quiz_correct=q.get("correct", 0), exams=q.get("exams", 0),
                   last_exam_scaled="" if q.get("last_exam_scaled") is None else q["last_exam_scaled"],
                   last_exam_passed="" if q.get("last_exam_passed") is None else int(bool(q["last_exam_passed"])))
        fails = [f"{n}: {m}" for n, v in c.items() for m in v.get("failing", [])[:1]]
        row["failing"] = " | ".join(fails) or r.get("error", "")
        out.append(row)
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    w.writerows(report_rows(rows))
    return buf.getvalue()


def to_html(rows: list[dict[str, Any]], title: str = "labsim classroom report") -> str:
    """One self-contained page (inline CSS, no script, no external asset), from the jinja2 template
    ``labsim/data/classroom-report.html.j2`` with autoescape on: a student name is text, never markup."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("labsim", "data"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True)
    steps = list(checks.lab_steps())
    students = []
    for r, row in zip(rows, report_rows(rows)):
        cells = []
        for n in steps:
            info = r.get("checks", {}).get(n, {})
            ok = bool(info.get("ok"))
            first = row[f"first_passed_{n}"]
            cells.append({"label": "pass" if ok else "fail",
                          "tip": "; ".join(info.get("failing", [])) or ("passes now" if ok else ""),
                          "first_passed": first[11:16] if first and not ok else ""})
        exam = ""
        if row["last_exam_scaled"] != "":
            exam = f"{row['last_exam_scaled']} ({'pass' if row['last_exam_passed'] else 'fail'})"
        students.append({
            "name": r["student"], "running": r.get("running"), "cells": cells,
            "steps_passed": row["steps_passed_ever"], "exam": exam, "failing": row["failing"],
            "quiz": f"{row['quiz_correct']}/{row['quiz_answers']}" if row["quiz_answers"] else "",
        })
    passed = {n: sum(1 for r in rows if r.get("checks", {}).get(n, {}).get("ok")) for n in steps}
    return env.get_template("classroom-report.html.j2").render(
        title=title, steps=steps, students=students, passed=passed, made=time.strftime("%Y-%m-%d %H:%M"))


def report(root: Path | None = None, csv_path: Path | None = None, html_path: Path | None = None,
           jobs: int = 8) -> tuple[Path, Path, list[dict[str, Any]]]:
    room = load(root)
    rows = status(room.root, jobs)
    csv_path = Path(csv_path or room.root / "report.csv")
    html_path = Path(html_path or room.root / "report.html")
    csv_path.write_text(to_csv(rows))
    html_path.write_text(to_html(rows))
    return csv_path, html_path, rows
