"""The `quizzes` command driven without a terminal: answers from files or stdin, results as JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from quizzes.bank import load_bank
from quizzes.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("QUIZZES_HOME", str(tmp_path))
    monkeypatch.delenv("QUIZZES_DB", raising=False)
    monkeypatch.delenv("QUIZZES_BANK", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        result = runner.invoke(main, list(args), input=input, catch_exceptions=False)
        return result

    return invoke


def test_practice_from_stdin_lines_json(run):
    bank = load_bank()
    q530 = bank.get("sec-encrypt-530")
    r = run("practice", "--id", "tls-cert-param", "--id", "sec-encrypt-530", "--id", "aw-mailq",
            "--answers", "-", "--json", input=f"smtpd_tls_cert_file\n{q530.correct_keys[0]}\nA\n")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert [a["correct"] for a in data["answers"]] == [True, True, False]
    assert data["total"] == 3 and data["correct"] == 2


def test_practice_filters(run, tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text("{}")
    r = run("practice", "--area", "logs", "-n", "3", "--seed", "1", "--answers", str(answers), "--json")
    data = json.loads(r.stdout)
    bank = load_bank()
    assert len(data["answers"]) == 3 and all(bank.get(a["id"]).area == "logs" for a in data["answers"])
    r = run("practice", "--tag", "starttls", "--type", "fill", "-n", "50", "--answers", str(answers), "--json")
    assert all(bank.get(a["id"]).type == "fill" and "starttls" in bank.get(a["id"]).tags
               for a in json.loads(r.stdout)["answers"])


def test_exam_json_all_right_then_stats_and_review(run, tmp_path):
    bank = load_bank()
    answers = {q.id: (q.answers[0] if q.type == "fill" else q.correct_keys) for q in bank}
    answers["smtp-port-25"] = "587"  # one deliberate miss, if drawn
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    r = run("exam", "-n", "60", "--seed", "3", "--answers", str(path), "--json")
    assert r.exit_code == 0
    res = json.loads(r.stdout)
    assert res["finished"] and res["total"] == 60
    missed = [w["id"] for w in res["wrong"]]
    assert res["correct"] == 60 - len(missed) and set(missed) <= {"smtp-port-25"}
    assert res["scaled"] >= 780 and res["passed"]
    assert set(res["by_objective"]) == {"lesson-1", "lesson-2", "211.1"}
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["exams"][0]["scaled"] == res["scaled"] and stats["answers"] == 60
    rv = json.loads(run("review", "--answers", "-", "--json", input="25\n").stdout)
    assert rv["due"] == len(missed)
    if missed:
        item = rv["answers"][0]
        assert {k: item[k] for k in ("id", "given", "correct", "expected", "rating", "state")} == {
            "id": "smtp-port-25", "given": "25", "correct": True, "expected": "25", "rating": "Good",
            "state": "Learning"}  # FSRS's second learning step: 10 minutes
        assert rv["next_review"] == item["next_review"]


def test_exam_stops_on_eof_and_resumes(run, tmp_path):
    r = run("exam", "-n", "4", "--seed", "5", "--json", input="A\n")
    assert r.exit_code == 3 and json.loads(r.stdout)["finished"] is False
    path = tmp_path / "a.json"
    path.write_text("{}")
    r = run("exam", "--resume", "--answers", str(path), "--json")
    res = json.loads(r.stdout)
    assert res["finished"] and res["total"] == 4 and res["answered"] == 1
    assert run("exam", "--resume").exit_code != 0  # nothing left to resume


def test_export_json_and_csv(run, tmp_path):
    r = run("export", "--format", "json")
    assert len(json.loads(r.stdout)["questions"]) == len(load_bank())
    run("practice", "--id", "smtp-port-25", "--answers", "-", input="25\n")
    r = run("export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and rows[0]["question_id"] == "smtp-port-25" and rows[0]["correct"] == "1"
    assert rows[0]["mode"] == "practice" and rows[0]["area"] == "smtp"


def test_lint_command(run, tmp_path):
    assert run("lint").exit_code == 0
    (tmp_path / "bank").mkdir()
    (tmp_path / "bank" / "x.yaml").write_text("title: x\nquestions:\n  - id: a\n    type: fill\n")
    r = run("--bank", str(tmp_path / "bank"), "lint", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["problems"]


def test_interactive_asks_again_on_empty_or_malformed_answers(run):
    """An empty answer or 'x' at a letters prompt is not scored: the prompt says what it expects, asks again."""
    r = run("practice", "--id", "tls-cert-param", "--json", input="\n  \nsmtpd_tls_cert_file\n")
    data = json.loads(r.stdout)
    assert [a["correct"] for a in data["answers"]] == [True] and data["total"] == 1
    assert r.stderr.count("Type the answer text, or press Ctrl-D to stop") == 2
    q = load_bank().get("sec-encrypt-530")
    last = "ABCDEFGH"[len(q.choices) - 1]
    r = run("practice", "--id", "sec-encrypt-530", "--json", input=f"x\nAB\n{chr(ord(last) + 1)}\n\n")
    data = json.loads(r.stdout)
    assert data["answers"] == [] and data["total"] == 1  # stopped at EOF: nothing was scored
    assert r.stderr.count(f"Expected one letter, A to {last}") == 3 and "Type a letter" in r.stderr
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["answers"] == 1  # only the fill-in's one real answer was recorded


def test_answer_problem_rules():
    from quizzes.cli import answer_problem

    bank = load_bank()
    single = next(q for q in bank if q.type == "single" and len(q.choices) == 4)
    multiple = next(q for q in bank if q.type == "multiple" and len(q.choices) == 4)
    fill = bank.get("tls-cert-param")
    assert answer_problem(single, " b ") is None and answer_problem(single, single.choices[0].text) is None
    assert "one letter, A to D" in answer_problem(single, "E") and answer_problem(single, "A,B")
    assert answer_problem(multiple, "a, c") is None and answer_problem(multiple, "AC") is None
    assert "letters A to D" in answer_problem(multiple, "A,Z")
    assert answer_problem(fill, "anything at all") is None and "Type the answer text" in answer_problem(fill, " ")
    assert answer_problem(single, "?") and answer_problem(single, "?", hints=True) is None


def test_review_hint_rates_hard_and_shows_the_schedule(run):
    bank = load_bank()
    q = bank.get("smtp-port-25")
    run("practice", "--id", q.id, "--answers", "-", input="587\n")  # a miss: into review
    listing = run("review", "--list", "--json")
    plan = json.loads(listing.stdout)
    assert plan["due"] == 1 and plan["schedule"][0]["id"] == q.id and plan["schedule"][0]["state"] == "Learning"
    assert "1 due now, 1 in review" in listing.stderr
    r = run("review", "--answers", "-", "--json", input="?\n25\n")
    data = json.loads(r.stdout)
    assert "Hint: the answer starts with '2' and has 2 characters." in r.stderr
    (item,) = data["answers"]
    assert item["correct"] and item["rating"] == "Hard" and item["next_review"] == data["next_review"]
    assert "Next review: smtp-port-25 on 20" in r.stderr
    stats = json.loads(run("stats", "--json").stdout)
    assert stats["review"] == {"Learning": 1} and stats["next_review"] == data["next_review"]
    assert stats["retention"]["desired"] == 0.9 and stats["retention"]["reviews"] == 0  # not learned yet
