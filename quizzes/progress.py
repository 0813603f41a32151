"""The progress file shared by the course site and the CLI: its format, reader, writer and merge.

One JSON file, UTF-8, written by the site's "Export progress" and by ``quizzes progress export FILE``,
read by the site's "Import progress" and ``quizzes progress import FILE``::

    {"format": "postfix-tls-lab-progress", "version": 1, "exported_at": "2026-12-02T16:50:00Z",
     "answers": [{"question": "tls-cert-param", "correct": true, "answered_at": "2026-12-02T16:49:12Z",
                  "source": "site"}],
     "exams": [{"taken_at": "...Z", "score": 560, "passed": true, "right": 40, "total": 60, "missed": ["..."]}]}

This module owns the schema (:class:`ProgressFile`); the site's JavaScript follows it. Rules:

* ``answers``: every answer given, oldest first; times are UTC ISO 8601 with ``Z``, to the second.
  The same question answered at the same second is the same answer (kept once). A question's current
  state is its latest answer: the later answer wins.
* ``exams`` is optional. The CLI keeps the site's exams (in its database's meta table) and adds its own
  finished exams when it exports.
* A reader refuses, writing nothing, a file whose ``format`` differs, whose ``version`` is greater than
  :data:`VERSION` ("made by a newer version: update the course"), or that is not valid. Unknown keys are
  ignored (an older reader of a same-version file); unknown question ids are kept and reported.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from .export import ExportError, write_atomic
from .store import Store

FORMAT = "postfix-tls-lab-progress"
VERSION = 1
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class ProgressError(Exception):
    """A progress file cannot be read or written; the message says what to do."""


def iso(ts: float) -> str:
    """Epoch seconds as the file's UTC stamp, to the second: 2026-12-02T16:49:12Z."""
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(stamp: str) -> float:
    return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def _check_stamp(v: str) -> str:
    if not _STAMP.match(v):
        raise ValueError(f"{v!r} is not a UTC time like 2026-12-02T16:49:12Z")
    try:
        epoch(v)
    except ValueError as exc:
        raise ValueError(f"{v!r} is not a real date and time") from exc
    return v


Stamp = Annotated[str, AfterValidator(_check_stamp)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ProgressAnswer(_Model):
    question: str = Field(min_length=1)
    correct: bool
    answered_at: Stamp
    source: Literal["site", "cli"]

    @property
    def key(self) -> tuple[str, str]:
        """Two answers with the same key are the same answer."""
        return self.question, self.answered_at[:19]


class ProgressExam(_Model):
    taken_at: Stamp
    score: int = Field(ge=0, le=1000)
    passed: bool
    right: int = Field(ge=0)
    total: int = Field(ge=0)
    missed: list[str] = []

    @property
    def key(self) -> tuple[str, int, int]:
        return self.taken_at[:19], self.score, self.total


class ProgressFile(_Model):
    format: Literal["postfix-tls-lab-progress"]
    version: int = Field(ge=1)
    exported_at: Stamp
    answers: list[ProgressAnswer]
    exams: list[ProgressExam] = []

    def latest(self) -> dict[str, ProgressAnswer]:
        """Each question's current state: its latest answer."""
        out: dict[str, ProgressAnswer] = {}
        for a in sorted(self.answers, key=lambda a: a.answered_at[:19]):
            out[a.question] = a
        return out


def merge(*files: ProgressFile, now: float | None = None) -> ProgressFile:
    """The union of the files' answers (each kept once, oldest first) and exams."""
    answers: dict[tuple[str, str], ProgressAnswer] = {}
    exams: dict[tuple[str, int, int], ProgressExam] = {}
    for f in files:
        for a in f.answers:
            answers.setdefault(a.key, a)
        for e in f.exams:
            exams.setdefault(e.key, e)
    return ProgressFile(
        format=FORMAT, version=VERSION, exported_at=iso(time.time() if now is None else now),
        answers=sorted(answers.values(), key=lambda a: (a.answered_at[:19], a.question)),
        exams=sorted(exams.values(), key=lambda e: e.taken_at[:19]),
    )


def parse(text: str | bytes, name: str = "the progress file") -> ProgressFile:
    """Read a progress file; raise :class:`ProgressError` saying what is wrong and what to do."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProgressError(f"{name} is not a progress file: it is not valid JSON ({exc}); export it again "
                            "from the site (Export progress) or with 'quizzes progress export'") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ProgressError(f"{name} is not a postfix-tls-lab progress file (format {got!r}, expected {FORMAT!r})")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise ProgressError(f"{name} was made by a newer version of the course (progress format version {version}; "
                            f"this one reads up to {VERSION}): update the course, then import it again")
    try:
        return ProgressFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ProgressError(f"{name} is not a valid progress file: {problems}") from exc


def read(path: str | os.PathLike[str]) -> ProgressFile:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ProgressError(f"cannot read {p}: {exc.strerror or exc}") from exc
    return parse(raw, str(p))


def dumps(doc: ProgressFile) -> str:
    return json.dumps(doc.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


# --- the CLI's side: the progress database <-> the file ------------------------------------------------------
SITE_EXAMS = "site_exams"  # meta key: the site's exams, as JSON, kept for the next export


def from_store(store: Store, now: float | None = None) -> ProgressFile:
    """The database's progress as a file: every answer (imported ones keep their source) and every exam."""
    sources = store.sources()
    answers = [
        ProgressAnswer(question=a.question_id, correct=a.correct, answered_at=iso(a.answered_at),
                       source=sources.get((a.question_id, int(a.answered_at)), "cli"))  # type: ignore[arg-type]
        for a in store.answers()
    ]
    exams = [ProgressExam.model_validate(e) for e in json.loads(store.meta(SITE_EXAMS) or "[]")]
    for s in store.sessions("exam"):
        r = store.result(s.id)
        if s.finished is None or not r:
            continue
        exams.append(ProgressExam(taken_at=iso(s.started), score=r["scaled"], passed=r["passed"],
                                  right=r["correct"], total=r["total"], missed=[w["id"] for w in r["wrong"]]))
    doc = ProgressFile(format=FORMAT, version=VERSION, exported_at=iso(time.time() if now is None else now),
                       answers=answers, exams=exams)
    return merge(doc, now=now)  # oldest first, each answer once


def export_file(store: Store, path: str | os.PathLike[str], now: float | None = None) -> dict[str, Any]:
    """Write the database's progress to PATH (all or nothing)."""
    doc = from_store(store, now)
    try:
        write_atomic(path, dumps(doc))
    except ExportError as exc:
        raise ProgressError(str(exc)) from exc
    return {"file": str(path), "answers": len(doc.answers), "exams": len(doc.exams)}


def import_file(store: Store, path: str | os.PathLike[str], known: set[str] | None = None,
                now: float | None = None) -> dict[str, Any]:
    """Merge the file at PATH into the database: answers not there yet are added (the later answer to a
    question wins, as everywhere) and replayed into the review schedule; the site's exams are kept.
    Reads and checks the whole file before writing anything."""
    from . import review

    doc = read(path)
    have = {(qid, int(ts)) for qid, ts in store.sources()}
    new = [a for a in doc.answers if (a.question, int(epoch(a.answered_at))) not in have]
    new.sort(key=lambda a: a.answered_at[:19])
    unknown = sorted({a.question for a in doc.answers if known is not None and a.question not in known})
    kept = {ProgressExam.model_validate(e).key: ProgressExam.model_validate(e)
            for e in json.loads(store.meta(SITE_EXAMS) or "[]")}
    own = {e.key for e in from_store(store, now).exams if e.key not in kept}
    added_exams = 0
    for e in doc.exams:
        if e.key not in kept and e.key not in own:
            kept[e.key] = e
            added_exams += 1
    store.add_answers("import", [(a.question, a.correct, epoch(a.answered_at), a.source) for a in new], now=now)
    for a in new:
        review.update(store, a.question, a.correct, now=epoch(a.answered_at))
    if added_exams:
        store.set_meta(SITE_EXAMS, json.dumps([e.model_dump(mode="json") for e in
                                               sorted(kept.values(), key=lambda e: e.key)]))
    return {"file": str(path), "answers_in_file": len(doc.answers), "answers_added": len(new),
            "answers_already_there": len(doc.answers) - len(new), "exams_added": added_exams,
            "unknown_questions": unknown}
