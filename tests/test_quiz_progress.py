"""The progress file (notes: progress-format.md) between the site and the CLI: both ways, nothing lost."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from quizzes import progress, review
from quizzes.bank import load_bank
from quizzes.cli import main
from quizzes.store import Store

T0 = 1_790_000_000.0  # 2026-09-21, a fixed instant: the file's stamps are compared as text


def _site_file(path, answers, exams=()):
    doc = {"format": "postfix-tls-lab-progress", "version": 1, "exported_at": progress.iso(T0 + 10_000),
           "answers": [{"question": q, "correct": ok, "answered_at": progress.iso(ts), "source": "site"}
                       for q, ok, ts in answers],
           "exams": list(exams)}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def _cli_answers(store, answers):
    for qid, ok, ts in answers:
        s = store.start_session("practice", [qid], now=ts)
        store.record(s.id, qid, "x", ok, now=ts)
        review.update(store, qid, ok, now=ts)


def _counts(store):
    return tuple(store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("sessions", "answers", "cards", "reviews", "meta"))


def test_stamps_are_utc_with_z():
    assert progress.iso(0) == "1970-01-01T00:00:00Z"
    assert progress.iso(T0 + 0.9) == progress.iso(T0)  # to the second
    assert progress.epoch(progress.iso(T0)) == T0
    assert progress.iso(1_767_312_000) == "2026-01-02T00:00:00Z"  # day 2: no zero-padding surprises


def test_merge_both_directions(tmp_path):
    """The site's answers into the CLI and the CLI's into the site's file: the union, the later answer wins."""
    bank = load_bank()
    a, b, c = "smtp-port-25", "tls-cert-param", "sec-encrypt-530"
    store = Store(tmp_path / "p.db")
    # the CLI: a wrong at T0 (then the site gets it right later); b right at T0+500 (the site was wrong earlier)
    _cli_answers(store, [(a, False, T0), (b, True, T0 + 500)])
    site = _site_file(tmp_path / "site.json", [(b, False, T0 + 100), (a, True, T0 + 200), (c, False, T0 + 300)],
                      exams=[{"taken_at": progress.iso(T0 - 3600), "score": 560, "passed": True, "right": 40,
                              "total": 60, "missed": [c]}])
    # site -> CLI
    info = progress.import_file(store, site, known=set(bank.ids()))
    assert (info["answers_added"], info["answers_already_there"], info["exams_added"]) == (3, 0, 1)
    assert info["unknown_questions"] == []
    latest = progress.from_store(store).latest()
    assert {q: (x.correct, x.source) for q, x in latest.items()} == {
        a: (True, "site"), b: (True, "cli"), c: (False, "site")}
    assert c in review.due(store, now=T0 + 300)  # a miss on the site enters the CLI's review
    # CLI -> a file the site imports: every answer of both, each once, oldest first, sources kept
    out = tmp_path / "cli.json"
    progress.export_file(store, out, now=T0 + 20_000)
    doc = progress.read(out)
    assert [(x.question, x.correct, x.source) for x in doc.answers] == [
        (a, False, "cli"), (b, False, "site"), (a, True, "site"), (c, False, "site"), (b, True, "cli")]
    assert [e.score for e in doc.exams] == [560]
    # the site's merge (the reference the JS follows) gives the same in either order, and is idempotent
    site_doc = progress.read(site)
    one, two = progress.merge(site_doc, doc, now=T0), progress.merge(doc, site_doc, now=T0)
    assert one == two and one.answers == doc.answers and progress.merge(one, one, now=T0) == one
    # importing the same file again adds nothing
    before = _counts(store)
    again = progress.import_file(store, out, known=set(bank.ids()))
    assert (again["answers_added"], again["exams_added"]) == (0, 0) and _counts(store) == before
    # a fresh machine gets the same progress from the file
    other = Store(tmp_path / "other.db")
    progress.import_file(other, out)
    assert progress.from_store(other, now=T0 + 20_000).answers == doc.answers
    assert progress.from_store(other).exams == doc.exams


def test_cli_exams_are_exported(tmp_path):
    runner = CliRunner()
    bank = load_bank()
    env = {"QUIZZES_DB": str(tmp_path / "p.db")}
    answers = tmp_path / "a.json"
    answers.write_text(json.dumps({q.id: (q.answers[0] if q.type == "fill" else q.correct_keys) for q in bank}))
    r = runner.invoke(main, ["exam", "-n", "10", "--seed", "2", "--answers", str(answers), "--json"], env=env)
    assert r.exit_code == 0, r.output
    out = tmp_path / "progress.json"
    r = runner.invoke(main, ["progress", "export", str(out), "--json"], env=env)
    assert r.exit_code == 0 and json.loads(r.stdout) == {"file": str(out), "answers": 10, "exams": 1}
    doc = json.loads(out.read_text())
    assert doc["format"] == "postfix-tls-lab-progress" and doc["version"] == 1
    assert doc["exams"][0]["total"] == 10 and doc["exams"][0]["right"] == 10 and doc["exams"][0]["missed"] == []
    assert all(a["source"] == "cli" and a["answered_at"].endswith("Z") for a in doc["answers"])


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "not a postfix-tls-lab progress file"),
    ('{"format": "anki", "version": 1}', "not a postfix-tls-lab progress file"),
    ('{"format": "postfix-tls-lab-progress", "version": 2, "exported_at": "2027-01-01T00:00:00Z", "answers": [],'
     ' "levels": {}}', "made by a newer version of the course"),
    ('{"format": "postfix-tls-lab-progress", "version": 1, "exported_at": "2026-12-02T16:50:00Z",'
     ' "answers": [{"question": "q", "correct": true, "answered_at": "2026-12-02 16:49", "source": "site"}]}',
     "not a valid progress file: answers.0.answered_at"),
    ('{"format": "postfix-tls-lab-progress", "version": 1, "exported_at": "2026-12-02T16:50:00Z",'
     ' "answers": [{"question": "q", "correct": true, "answered_at": "2026-02-30T16:49:12Z", "source": "phone"}]}',
     "not a valid progress file"),
    ('{"format": "postfix-tls-lab-progress", "version": 1, "exported_at": "2026-12-02T16:50:00Z"}',
     "answers: Field required"),
])
def test_bad_files_are_refused_and_nothing_is_written(tmp_path, content, message):
    store = Store(tmp_path / "p.db")
    _cli_answers(store, [("smtp-port-25", False, T0)])
    before = _counts(store)
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(progress.ProgressError, match=message):
        progress.import_file(store, bad)
    assert _counts(store) == before
    r = CliRunner().invoke(main, ["progress", "import", str(bad)], env={"QUIZZES_DB": str(tmp_path / "p.db")})
    assert r.exit_code == 1 and message.split(":")[0] in r.output
    assert _counts(Store(tmp_path / "p.db")) == before


def test_unknown_questions_are_kept_and_reported(tmp_path):
    site = _site_file(tmp_path / "s.json", [("renamed-question", True, T0), ("smtp-port-25", True, T0 + 1)])
    r = CliRunner().invoke(main, ["progress", "import", str(site)], env={"QUIZZES_DB": str(tmp_path / "p.db")})
    assert r.exit_code == 0 and "2 answers added" in r.output and "renamed-question" in r.output
    assert {a.question_id for a in Store(tmp_path / "p.db").answers()} == {"renamed-question", "smtp-port-25"}


def test_export_to_an_unwritable_place_writes_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = CliRunner().invoke(main, ["progress", "export", str(blocker / "p.json")],
                           env={"QUIZZES_DB": str(tmp_path / "p.db")})
    assert r.exit_code == 1 and "is not a directory" in r.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("p.db")) == ["file"]
