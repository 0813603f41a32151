"""Progress survives a crash mid-exam; FSRS review schedules missed questions; old databases migrate."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from quizzes import review, session
from quizzes.bank import load_bank
from quizzes.store import Store, StoreError, default_db_path

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


def test_fsrs_schedule(tmp_path):
    """A missed question enters review; FSRS's learning steps, then growing intervals; a miss starts over."""
    store = Store(tmp_path / "r.db")
    t0 = 1_000_000.0
    assert review.update(store, "q1", True, now=t0) is None  # never missed: not in review
    s = review.update(store, "q1", False, now=t0)
    assert (s.rating, s.state, s.due) == ("Again", "Learning", t0 + 60)  # first learning step: 1 minute
    assert review.due(store, now=t0) == ["q1"]  # within Anki's learn-ahead limit
    assert review.due(store, now=t0 - review.LEARN_AHEAD) == []
    s = review.update(store, "q1", True, now=t0 + 60)
    assert (s.rating, s.state, s.due) == ("Good", "Learning", t0 + 60 + 600)  # second step: 10 minutes
    s = review.update(store, "q1", True, now=t0 + 660)
    assert s.state == "Review" and s.due >= t0 + 660 + DAY  # graduated: a day or more
    assert review.due(store, now=t0 + 660 + 3600) == []
    intervals = []
    t = s.due
    for _ in range(3):
        prev = t
        s = review.update(store, "q1", True, now=t)
        t = s.due
        intervals.append(t - prev)
    assert intervals == sorted(intervals) and intervals[-1] > 3 * DAY  # each success lengthens the interval
    s = review.update(store, "q1", False, now=t)
    assert (s.rating, s.state) == ("Again", "Relearning") and s.due == t + 600
    assert review.due(store, now=t) == ["q1"]


def test_hint_rates_hard(tmp_path):
    """Right after a hint rates Hard: a shorter interval than right at once, from the same card."""
    a, b = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    t0 = 2_000_000.0
    for store in (a, b):
        review.update(store, "q", False, now=t0)
        review.update(store, "q", True, now=t0 + 60)
        review.update(store, "q", True, now=t0 + 660)
    t1 = a.cards()["q"][1]
    good = review.update(a, "q", True, now=t1)
    review.mark_hint(b, "q")
    hard = review.update(b, "q", True, now=t1)
    assert (good.rating, hard.rating) == ("Good", "Hard") and hard.due < good.due
    assert review.update(b, "q", True, now=hard.due).rating == "Good"  # the hint counted once


def test_retention(tmp_path):
    store = Store(tmp_path / "r.db")
    t0 = 3_000_000.0
    assert review.retention(store, now=t0)["measured"] is None
    for q in ("a", "b", "c"):
        review.update(store, q, False, now=t0)
        review.update(store, q, True, now=t0 + 60)
        review.update(store, q, True, now=t0 + 660)
    t1 = max(due for _c, due in store.cards().values())
    review.update(store, "a", True, now=t1)
    review.update(store, "b", True, now=t1)
    review.update(store, "c", False, now=t1)
    r = review.retention(store, now=t1)
    assert (r["reviews"], r["right"], r["measured"]) == (3, 2, 0.667)  # only answers to learned cards count
    assert r["cards"] == 3 and 0 < r["predicted"] <= 1


def test_leitner_boxes_migrate_to_fsrs(tmp_path):
    """A schema-1 database (Leitner boxes, no cards) opens with its boxes turned into FSRS cards."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, mode TEXT NOT NULL, started REAL NOT NULL,
            finished REAL, seed INTEGER, question_ids TEXT NOT NULL, time_limit REAL, result TEXT);
        CREATE TABLE answers (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id INTEGER NOT NULL, question_id TEXT
            NOT NULL, given TEXT NOT NULL, correct INTEGER NOT NULL, answered_at REAL NOT NULL, elapsed REAL NOT NULL
            DEFAULT 0, UNIQUE (session_id, question_id));
        CREATE TABLE boxes (question_id TEXT PRIMARY KEY, box INTEGER NOT NULL, due REAL NOT NULL, updated REAL NOT NULL);
        INSERT INTO meta VALUES ('learner', 'ann');
        INSERT INTO sessions (mode, started, question_ids) VALUES ('practice', 100, '["x"]');
        INSERT INTO answers (session_id, question_id, given, correct, answered_at) VALUES (1, 'x', 'B', 0, 100);
        INSERT INTO boxes VALUES ('x', 1, 100, 100), ('y', 3, 100 + 3 * 86400, 100);
    """)
    db.commit()
    db.close()
    store = Store(path)
    assert store.meta("schema_version") == "2" and store.learner == "ann"
    assert [a.question_id for a in store.answers()] == ["x"] and store.sources() == {("x", 100): "cli"}
    assert review.due(store, now=200) == ["x"]  # box 1: due as it was
    plan = {s.question_id: s for s in review.schedule(store)}
    assert plan["x"].state == "Learning" and plan["y"].state == "Review"
    assert plan["y"].due == 100 + 3 * DAY and plan["y"].stability == 3.0  # box 3's interval
    assert store.boxes() == {"x": (1, 100.0), "y": (3, 100 + 3 * DAY)}  # kept as they were
    assert review.migrate_leitner(store) == 0  # once
    s = review.update(store, "y", True, now=100 + 3 * DAY)
    assert s.state == "Review" and s.due > 100 + 6 * DAY


def test_store_refuses_newer_or_corrupt_database(tmp_path):
    newer = tmp_path / "newer.db"
    Store(newer).set_meta("schema_version", "99")
    with pytest.raises(StoreError, match="newer version of the course"):
        Store(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable progress database"):
        Store(junk)
    assert junk.read_bytes() == b"this is not sqlite" * 100  # left alone


def test_due_order_and_unknown_ids(tmp_path):
    store = Store(tmp_path / "r.db")
    review.update(store, "b", False, now=10)
    review.update(store, "a", False, now=20)
    review.update(store, "gone", False, now=5)
    assert review.due(store, now=30, known={"a", "b"}) == ["b", "a"]
