"""A learner's progress in SQLite: sessions, every answer given, Leitner boxes.

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
CREATE TABLE IF NOT EXISTS boxes (
    question_id TEXT PRIMARY KEY,
    box INTEGER NOT NULL,              -- Leitner box 1..5
    due REAL NOT NULL,
    updated REAL NOT NULL
);
"""


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
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        if self.meta("learner") is None:
            self.set_meta("learner", os.environ.get("QUIZZES_LEARNER") or _user())

    def close(self) -> None:
        self.db.close()

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
        now: float | None = None,
    ) -> None:
        """Store one answer and commit it before the next question is shown."""
        self.db.execute(
            "INSERT OR REPLACE INTO answers (session_id, question_id, given, correct, answered_at, elapsed) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (session_id, question_id, given, int(correct), time.time() if now is None else now, elapsed),
        )

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


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "learner"
