"""Progress survives a crash mid-exam; Leitner review schedules missed questions."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from quizzes import review, session
from quizzes.bank import load_bank
from quizzes.store import Store, default_db_path

DAY = 86400.0


def test_db_location_env(monkeypatch, tmp_path):
    monkeypatch.delenv("QUIZZES_DB", raising=False)
    monkeypatch.setenv("QUIZZES_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "progress.sqlite3"
    monkeypatch.setenv("QUIZZES_DB", str(tmp_path / "x.db"))
    assert default_db_path() == tmp_path / "x.db"


def test_answers_are_committed_immediately(tmp_path):
    bank = load_bank()
    store = Store(tmp_path / "p.db")
    s = session.start_exam(store, bank, n=5, seed=1)
    session.answer(store, bank, s, s.question_ids[0], "A", elapsed=3)
    # another connection (as after a crash) sees the answer without any close or commit
    other = sqlite3.connect(tmp_path / "p.db")
    assert other.execute("SELECT question_id FROM answers").fetchall() == [(s.question_ids[0],)]
    again = Store(tmp_path / "p.db")
    resumed = again.unfinished("exam")
    assert resumed and resumed.id == s.id
    assert session.pending(again, resumed) == s.question_ids[1:]
    assert session.time_left(again, resumed) == resumed.time_limit - 3


def test_kill_mid_exam_then_resume(tmp_path):
    """A real `quizzes exam` process is killed with SIGKILL after two answers; --resume finishes it."""
    db = tmp_path / "crash.db"
    env = {**os.environ, "QUIZZES_DB": str(db)}
    cmd = [sys.executable, "-m", "quizzes.cli", "exam", "-n", "6", "--seed", "11"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    try:
        proc.stdin.write("A\nB\n")  # two answers, then the "learner" stays silent
        proc.stdin.flush()
        deadline = time.time() + 30
        count = 0
        while time.time() < deadline:
            if db.exists():
                try:
                    count = sqlite3.connect(db).execute("SELECT count(*) FROM answers").fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0
            if count >= 2:
                break
            time.sleep(0.1)
        assert count == 2
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    store = Store(db)
    s = store.unfinished("exam")
    assert s is not None and len(session.pending(store, s)) == 4
    first_two = {a.question_id: a.given for a in store.answers(s.id)}
    bank = load_bank()
    answers = {q: bank.get(q).canonical_answer for q in session.pending(store, s)}
    answers_file = tmp_path / "answers.json"
    answers_file.write_text(json.dumps(answers))
    out = subprocess.run(cmd[:4] + ["--resume", "--answers", str(answers_file), "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["finished"] and result["total"] == 6 and result["session"] == s.id
    assert result["correct"] >= 4  # the four resumed answers are right; the first two were kept as given
    assert {a.question_id: a.given for a in Store(db).answers(s.id) if a.question_id in first_two} == first_two
    assert Store(db).unfinished("exam") is None


def test_leitner_schedule(tmp_path):
    store = Store(tmp_path / "r.db")
    t0 = 1_000_000.0
    assert review.update(store, "q1", True, now=t0) is None  # never missed: not tracked
    assert review.update(store, "q1", False, now=t0) == (1, t0)
    assert review.due(store, now=t0) == ["q1"]
    assert review.update(store, "q1", True, now=t0) == (2, t0 + DAY)
    assert review.due(store, now=t0 + DAY - 1) == []
    assert review.due(store, now=t0 + DAY) == ["q1"]
    box, due = review.update(store, "q1", True, now=t0 + DAY)
    assert (box, due) == (3, t0 + 4 * DAY)
    review.update(store, "q1", False, now=t0 + 4 * DAY)
    assert store.box("q1") == (1, t0 + 4 * DAY)
    for _ in range(10):
        review.update(store, "q1", True, now=t0)
    assert store.box("q1")[0] == review.TOP_BOX


def test_due_order_and_unknown_ids(tmp_path):
    store = Store(tmp_path / "r.db")
    review.update(store, "b", False, now=10)
    review.update(store, "a", False, now=20)
    review.update(store, "gone", False, now=5)
    assert review.due(store, now=30, known={"a", "b"}) == ["b", "a"]
