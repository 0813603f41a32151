"""Load the question bank from YAML, all or nothing, and export it as JSON for the course site.

Bank files live in ``quizzes/bank/`` (one per lesson part or objective); ``QUIZZES_BANK`` or an
explicit ``directory`` points elsewhere (tests use temporary banks). A file looks like::

    title: TLS configuration
    questions:
      - id: tls-cert-param
        type: fill            # single | multiple | fill
        objectives: [lesson-2, 211.1]
        area: tls-config
        difficulty: 1         # 1 easy, 2 medium, 3 hard
        prompt: ...
        answers: [smtpd_tls_cert_file]
        explanation: ...
        references: [...]
        verify: [{kind: parameter_exists, name: smtpd_tls_cert_file}]

Choice order: authors may write the right choice first; unless a question says ``shuffle: false``,
the loader puts its choices in a fixed order derived from the question id (a CRC32-seeded shuffle), so
every face shows the same letters and the right answer is not always A.

Any error (YAML syntax, schema, duplicate id) raises :class:`BankError` naming the file, the question
id and the line, and nothing is returned: a half-loaded bank would silently shrink an exam.

JSON export shape (``to_json()``, ``quizzes export --format json``), for the site's JavaScript::

    {
      "format": "postfix-tls-lab/quizzes", "version": 1,
      "objectives": {"lesson-1": {"title": "...", "source": "lesson", "weight": 0},
                     "211.1": {..., "source": "202-450", "weight": 4}, "course-only": {..., "source": "course"}},
      "areas": {"tls-config": {"title": "...", "weight": 5}, ...},
      "exam": {...},                                 # quizzes.exam.rules(): who is drawn, weights, pass rule
      "questions": [
        {
          "id": "tls-cert-param", "type": "single" | "multiple" | "fill",
          "objectives": ["lesson-2", "211.1"], "area": "tls-config", "tags": ["..."],
          "difficulty": 1,
          "prompt": "as written", "display_prompt": "as shown, with (Choose TWO correct answers.)",
          "choose": 2 | null,                       # multiple only
          "choices": [{"key": "A", "text": "...", "correct": true, "why": "..."}],  # [] for fill
          "answers": ["accepted", "alternatives"],   # [] for single/multiple
          "case_sensitive": true,                    # fill: compare after trimming, this case rule
          "explanation": "...", "references": ["..."],
          "source": "tls_config.yaml", "line": 12
        }
      ]
    }

Fill-in judging for the site must match :func:`quizzes.judge.judge`: trim both ends, then compare
exactly (or case-folded when ``case_sensitive`` is false) with any of ``answers``.
"""

from __future__ import annotations

import json
import os
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .model import LETTERS, Question
from .objectives import AREAS, OBJECTIVES

BANK_DIR = Path(__file__).parent / "bank"
_LINES = "__lines__"  # key under which the loader keeps each mapping's key -> line numbers


class BankError(Exception):
    """A bank file is broken. ``problems`` holds one "file:line: id: message" string per defect."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("question bank is broken:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Bank:
    """Validated questions in file order, with lookup by id."""

    questions: tuple[Question, ...]

    def __iter__(self):
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def get(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    def ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def select(
        self,
        ids: list[str] | None = None,
        tags: list[str] | None = None,
        objective: str | None = None,
        area: str | None = None,
        qtype: str | None = None,
    ) -> list[Question]:
        """Questions matching every filter given; ``ids`` keeps the order asked for.

        A tag filter matches a question's tags, its objectives or its area, so ``tags=["211.1"]``
        and ``tags=["starttls"]`` both work from a notebook.
        """
        if ids:
            return [self.get(i) for i in ids]
        out = []
        for q in self.questions:
            labels = set(q.tags) | set(q.objectives) | {q.area}
            if tags and not labels & set(tags):
                continue
            if objective and objective not in q.objectives:
                continue
            if area and area != q.area:
                continue
            if qtype and qtype != q.type:
                continue
            out.append(q)
        return out


def bank_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The bank to use: the argument, else ``$QUIZZES_BANK``, else the packaged bank."""
    if directory:
        return Path(directory)
    env = os.environ.get("QUIZZES_BANK")
    return Path(env) if env else BANK_DIR


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records, for every mapping, the line of each key (1-based)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping = super().construct_mapping(node, deep=True)
        lines = {"": node.start_mark.line + 1}
        for key_node, _value in node.value:
            lines[str(key_node.value)] = key_node.start_mark.line + 1
        mapping[_LINES] = lines
        return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping)


def _strip_lines(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip_lines(v) for k, v in data.items() if k != _LINES}
    if isinstance(data, list):
        return [_strip_lines(v) for v in data]
    return data


def _line_of(raw: dict[str, Any], loc: tuple[Any, ...]) -> int:
    """The line of the deepest YAML node that a pydantic error location reaches."""
    node: Any = raw
    line = raw.get(_LINES, {}).get("", 0)
    for part in loc:
        if isinstance(node, dict):
            line = node.get(_LINES, {}).get(str(part), line)
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            if isinstance(node, dict):
                line = node.get(_LINES, {}).get("", line)
        else:
            break
    return line


def parse_file(path: Path) -> tuple[list[Question], list[str]]:
    """Parse one bank file. Returns (questions, problems); problems name file, line and id."""
    name = path.name
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 (SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc)
        return [], [f"{name}:{line}: (no id): YAML syntax error: {problem}"]
    if not isinstance(doc, dict) or not isinstance(doc.get("questions"), list):
        return [], [f"{name}:1: (no id): a bank file is a mapping with a 'questions:' list"]
    questions: list[Question] = []
    problems: list[str] = []
    for raw in doc["questions"]:
        if not isinstance(raw, dict):
            problems.append(f"{name}:{doc[_LINES].get('questions', 0)}: (no id): each question is a mapping")
            continue
        qid = raw.get("id", "(no id)")
        line = raw[_LINES][""]
        data = _strip_lines(raw)
        data.update(source=name, line=line)
        try:
            questions.append(_ordered(Question.model_validate(data)))
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "question"
                problems.append(f"{name}:{_line_of(raw, err['loc'])}: {qid}: {where}: {err['msg']}")
    return questions, problems


def _ordered(q: Question) -> Question:
    """The question with its choices in their presentation order (stable across runs and machines)."""
    if not q.shuffle or not q.choices:
        return q
    choices = list(q.choices)
    random.Random(zlib.crc32(q.id.encode())).shuffle(choices)
    return q.model_copy(update={"choices": choices})


def read_all(directory: str | os.PathLike[str] | None = None) -> tuple[list[Question], list[str]]:
    """Every question of every ``*.yaml`` file, and the hard defects found (schema, YAML, duplicate ids).
    Shared by :func:`load_bank`, which refuses a bank with defects, and ``quizzes lint``, which lists them."""
    root = bank_dir(directory)
    files = sorted(Path(root).glob("*.yaml"))
    if not files:
        return [], [f"{root}: no *.yaml question files"]
    questions: list[Question] = []
    problems: list[str] = []
    for path in files:
        qs, ps = parse_file(path)
        questions.extend(qs)
        problems.extend(ps)
    seen: dict[str, Question] = {}
    for q in questions:
        if q.id in seen:
            first = seen[q.id]
            problems.append(f"{q.source}:{q.line}: {q.id}: duplicate id (first at {first.source}:{first.line})")
        seen.setdefault(q.id, q)
    return questions, problems


def load_bank(directory: str | os.PathLike[str] | None = None) -> Bank:
    """Load and validate every ``*.yaml`` file of the bank; raise :class:`BankError` on any defect."""
    questions, problems = read_all(directory)
    if problems:
        raise BankError(problems)
    return Bank(tuple(questions))


def question_dict(q: Question) -> dict[str, Any]:
    """One question in the JSON shape documented above."""
    return {
        "id": q.id,
        "type": q.type,
        "objectives": list(q.objectives),
        "area": q.area,
        "tags": list(q.tags),
        "difficulty": q.difficulty,
        "prompt": q.prompt,
        "display_prompt": q.display_prompt,
        "choose": q.choose,
        "choices": [
            {"key": LETTERS[i], "text": c.text, "correct": c.correct, "why": c.why} for i, c in enumerate(q.choices)
        ],
        "answers": list(q.answers),
        "case_sensitive": q.case_sensitive,
        "explanation": q.explanation,
        "references": list(q.references),
        "source": q.source,
        "line": q.line,
    }


def to_json(bank: Bank | None = None, indent: int | None = 2) -> str:
    """The whole bank, answers and explanations included, as JSON (shape in the module docstring)."""
    bank = bank if bank is not None else load_bank()
    doc = {
        "format": "postfix-tls-lab/quizzes",
        "version": 1,
        "objectives": {o.id: {"title": o.title, "source": o.source, "weight": o.weight} for o in OBJECTIVES.values()},
        "areas": {a.id: {"title": a.title, "weight": a.weight} for a in AREAS.values()},
        "exam": _exam_rules(),
        "questions": [question_dict(q) for q in bank],
    }
    return json.dumps(doc, indent=indent, ensure_ascii=False) + "\n"


def _exam_rules() -> dict[str, Any]:
    """The exam simulation's rules (quizzes.exam imports this module, hence the late import)."""
    from .exam import rules

    return rules()
