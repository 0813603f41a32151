"""A learner's progress in SQLite: sessions, every answer given, review cards (FSRS) and their reviews.

Why SQLite and one commit per answer: an exam interrupted by a crash, a closed laptop or a killed
terminal must lose nothing already answered; ``quizzes exam --resume`` continues from the database.

Where: ``$QUIZZES_DB`` (a file), else ``$QUIZZES_HOME/progress.sqlite3``, else the user's data
directory from platformdirs (``~/.local/share/postfix-tls-lab/quizzes/progress.sqlite3`` on Linux).
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mode TEXT NOT NULL,                -- practice | exam | review
    started REAL NOT NULL,
    finished REAL,                     -- NULL while running (or after a crash)
    seed INTEGER,
    question_ids TEXT NOT NULL,        -- JSON list, in the order asked
    time_limit REAL,                   -- seconds (exam only)
    result TEXT                        -- JSON summary once finished
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    question_id TEXT NOT NULL,
    given TEXT NOT NULL,
    correct INTEGER NOT NULL,
    answered_at REAL NOT NULL,
    elapsed REAL NOT NULL DEFAULT 0,   -- seconds spent on this question
    UNIQUE (session_id, question_id)
);
CREATE TABLE IF NOT EXISTS boxes (     -- schema 1's Leitner boxes: read once by review.migrate_leitner, kept
    question_id TEXT PRIMARY KEY,
    box INTEGER NOT NULL,              -- Leitner box 1..5
    due REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cards (     -- one FSRS card per question in review (see review.py)
    question_id TEXT PRIMARY KEY,
    card TEXT NOT NULL,                -- fsrs.Card.to_json()
    due REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reviews (   -- every FSRS rating given, for retention figures
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    question_id TEXT NOT NULL,
    rating INTEGER NOT NULL,           -- fsrs.Rating: 1 Again, 2 Hard, 3 Good, 4 Easy
    state_before INTEGER NOT NULL,     -- fsrs.State before the answer: 1 Learning, 2 Review, 3 Relearning
    retrievability REAL,               -- FSRS's predicted recall probability at that moment (NULL: new)
    correct INTEGER NOT NULL,
    reviewed_at REAL NOT NULL
);
"""
#: 1: sessions, answers, boxes; 2: answers.source, cards, reviews (FSRS)
SCHEMA_VERSION = 2


class StoreError(Exception):
    """The progress database cannot be used; the message says what to do."""


def default_db_path() -> Path:
    """The database file for this user, honouring QUIZZES_DB and QUIZZES_HOME."""
    if os.environ.get("QUIZZES_DB"):
        return Path(os.environ["QUIZZES_DB"]).expanduser()
    if os.environ.get("QUIZZES_HOME"):
        return Path(os.environ["QUIZZES_HOME"]).expanduser() / "progress.sqlite3"
    return Path(platformdirs.user_data_dir("quizzes", "postfix-tls-lab")) / "progress.sqlite3"


@dataclass(frozen=True)
class Session:
    id: int
    mode: str
    started: float
    finished: float | None
    seed: int | None
    question_ids: list[str]
    time_limit: float | None


@dataclass(frozen=True)
class Answer:
    session_id: int
    question_id: str
    given: str
    correct: bool
    answered_at: float
    elapsed: float


class Store:
    """One learner's database. Every write commits at once (autocommit)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path else default_db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise StoreError(f"{self.path} is not a usable progress database ({exc}); move it away to start "
                             "afresh, or point QUIZZES_DB / --db at the right file") from exc
        except StoreError:
            self.db.close()
            raise
        if self.meta("learner") is None:
            self.set_meta("learner", os.environ.get("QUIZZES_LEARNER") or _user())

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        """Bring a database of an older schema up to SCHEMA_VERSION; refuse one of a newer version."""
        version = int(self.meta("schema_version") or 1)
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was made by a newer version of the course (database schema {version}, "
                             f"this one knows {SCHEMA_VERSION}): update the course")
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(answers)")}
        if "source" not in columns:
            self.db.execute("ALTER TABLE answers ADD COLUMN source TEXT NOT NULL DEFAULT 'cli'")
        if version < SCHEMA_VERSION:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    # --- meta -----------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def learner(self) -> str:
        return self.meta("learner") or "unknown"

    # --- sessions -------------------------------------------------------------------------------------
    def start_session(
        self, mode: str, question_ids: list[str], seed: int | None = None, time_limit: float | None = None,
        now: float | None = None,
    ) -> Session:
        now = time.time() if now is None else now
        cur = self.db.execute(
            "INSERT INTO sessions (mode, started, seed, question_ids, time_limit) VALUES (?, ?, ?, ?, ?)",
            (mode, now, seed, json.dumps(question_ids), time_limit),
        )
        return self.session(int(cur.lastrowid))  # type: ignore[arg-type]

    def session(self, session_id: int) -> Session:
        row = self.db.execute(
            "SELECT id, mode, started, finished, seed, question_ids, time_limit FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            raise KeyError(session_id)
        return Session(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])

    def unfinished(self, mode: str) -> Session | None:
        """The most recent session of MODE that never finished (e.g. an exam interrupted by a crash)."""
        row = self.db.execute(
            "SELECT id FROM sessions WHERE mode = ? AND finished IS NULL ORDER BY id DESC LIMIT 1", (mode,)
        ).fetchone()
        return self.session(row[0]) if row else None

    def finish_session(self, session_id: int, result: dict[str, Any], now: float | None = None) -> None:
        self.db.execute(
            "UPDATE sessions SET finished = ?, result = ? WHERE id = ?",
            (time.time() if now is None else now, json.dumps(result), session_id),
        )

    def sessions(self, mode: str | None = None) -> list[Session]:
        q = "SELECT id FROM sessions" + (" WHERE mode = ?" if mode else "") + " ORDER BY id"
        return [self.session(r[0]) for r in self.db.execute(q, (mode,) if mode else ())]

    def result(self, session_id: int) -> dict[str, Any] | None:
        row = self.db.execute("SELECT result FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    # --- answers --------------------------------------------------------------------------------------
    def record(
        self, session_id: int, question_id: str, given: str, correct: bool, elapsed: float = 0.0,
        now: float | None = None, source: str = "cli",
    ) -> None:
        """Store one answer and commit it before the next question is shown."""
        self.db.execute(
            "INSERT OR REPLACE INTO answers (session_id, question_id, given, correct, answered_at, elapsed, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, question_id, given, int(correct), time.time() if now is None else now, elapsed, source),
        )

    def sources(self) -> dict[tuple[str, int], str]:
        """(question id, whole second answered) -> where the answer was given ("cli" or "site")."""
        rows = self.db.execute("SELECT question_id, answered_at, source FROM answers")
        return {(r[0], int(r[1])): r[2] for r in rows}

    def add_answers(self, mode: str, answers: list[tuple[str, bool, float, str]], now: float | None = None) -> int:
        """Add answers given elsewhere (question id, correct, answered_at, source) in one transaction, in
        as few finished sessions of MODE as hold each question at most once. Returns how many were added."""
        if not answers:
            return 0
        batches: list[list[tuple[str, bool, float, str]]] = []
        for a in answers:
            for batch in batches:
                if all(b[0] != a[0] for b in batch):
                    batch.append(a)
                    break
            else:
                batches.append([a])
        now = time.time() if now is None else now
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for batch in batches:
                cur = self.db.execute(
                    "INSERT INTO sessions (mode, started, finished, question_ids, result) VALUES (?, ?, ?, ?, ?)",
                    (mode, now, now, json.dumps([a[0] for a in batch]), json.dumps({"imported": len(batch)})))
                for qid, correct, when, source in batch:
                    self.db.execute(
                        "INSERT INTO answers (session_id, question_id, given, correct, answered_at, elapsed, source) "
                        "VALUES (?, ?, '', ?, ?, 0, ?)", (cur.lastrowid, qid, int(correct), when, source))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(answers)

    def answers(self, session_id: int | None = None) -> list[Answer]:
        q = "SELECT session_id, question_id, given, correct, answered_at, elapsed FROM answers"
        rows = self.db.execute(q + (" WHERE session_id = ?" if session_id else "") + " ORDER BY id",
                               (session_id,) if session_id else ())
        return [Answer(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

    # --- Leitner boxes (see review.py) -----------------------------------------------------------------
    def box(self, question_id: str) -> tuple[int, float] | None:
        row = self.db.execute("SELECT box, due FROM boxes WHERE question_id = ?", (question_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def set_box(self, question_id: str, box: int, due: float, now: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO boxes (question_id, box, due, updated) VALUES (?, ?, ?, ?)",
            (question_id, box, due, now),
        )

    def boxes(self) -> dict[str, tuple[int, float]]:
        return {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT question_id, box, due FROM boxes")}

    # --- FSRS cards and reviews (see review.py) ------------------------------------------------------------
    def card(self, question_id: str) -> str | None:
        """The question's FSRS card as JSON, or None when it is not in review."""
        row = self.db.execute("SELECT card FROM cards WHERE question_id = ?", (question_id,)).fetchone()
        return row[0] if row else None

    def set_card(self, question_id: str, card_json: str, due: float, now: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO cards (question_id, card, due, updated) VALUES (?, ?, ?, ?)",
                        (question_id, card_json, due, now))

    def cards(self) -> dict[str, tuple[str, float]]:
        """question id -> (card JSON, due)."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT question_id, card, due FROM cards")}

    def add_review(self, question_id: str, rating: int, state_before: int, retrievability: float | None,
                   correct: bool, now: float) -> None:
        self.db.execute(
            "INSERT INTO reviews (question_id, rating, state_before, retrievability, correct, reviewed_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", (question_id, rating, state_before, retrievability, int(correct), now))

    def reviews(self) -> list[tuple[str, int, int, float | None, bool, float]]:
        """Every rating: (question id, rating, state before, retrievability, correct, reviewed_at), oldest first."""
        rows = self.db.execute("SELECT question_id, rating, state_before, retrievability, correct, reviewed_at "
                               "FROM reviews ORDER BY reviewed_at, id")
        return [(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "learner"
