"""The bank loads all or nothing, names file/id/line on errors, exports JSON, and lints clean."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from quizzes.bank import BankError, load_bank, to_json
from quizzes.lint import lint
from quizzes.objectives import AREAS, OBJECTIVES

GOOD = """\
title: t
questions:
  - id: good-one
    type: fill
    objectives: [lesson-2, 211.1]
    area: tls-config
    difficulty: 1
    prompt: Which parameter?
    answers: [smtpd_tls_cert_file]
    explanation: Because.
    references: [postconf(5)]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_real_bank_loads_and_is_big_enough():
    bank = load_bank()
    assert len(bank) >= 80
    fills = [q for q in bank if q.type == "fill"]
    assert len(fills) >= len(bank) / 4
    assert {q.type for q in bank} == {"single", "multiple", "fill"}
    for o in OBJECTIVES:
        assert any(o in q.objectives for q in bank), o
    for a in AREAS:
        assert any(q.area == a for q in bank), a


def test_real_bank_lints_clean():
    assert lint() == []


def test_schema_error_names_file_id_and_line(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", """\
        title: broken
        questions:
          - id: ok-question
            type: single
            objectives: [lesson-1]
            area: smtp
            difficulty: 2
            prompt: P?
            choices:
              - {text: x, correct: true, why: w}
              - {text: y, why: w}
              - {text: z, why: w}
            explanation: e
            references: [r]
          - id: bad-difficulty
            type: single
            objectives: [lesson-1]
            area: smtp
            difficulty: 7
            prompt: P?
            choices:
              - {text: x, correct: true, why: w}
              - {text: y, why: w}
              - {text: z, why: w}
            explanation: e
            references: [r]
        """)
    with pytest.raises(BankError) as err:
        load_bank(tmp_path)
    (problem,) = err.value.problems
    assert problem.startswith("b.yaml:19: bad-difficulty: difficulty")  # the line of "difficulty: 7"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "c.yaml", "title: x\nquestions:\n  - id: q\n    prompt: a: b: c\n")
    with pytest.raises(BankError) as err:
        load_bank(tmp_path)
    assert err.value.problems[0].startswith("c.yaml:4:")


def test_unknown_objective_points_at_its_line(tmp_path):
    write(tmp_path, "a.yaml", GOOD.replace("[lesson-2, 211.1]", "[lesson-2, 999.9]"))
    with pytest.raises(BankError) as err:
        load_bank(tmp_path)
    assert err.value.problems[0].startswith("a.yaml:5: good-one: objectives")


def test_duplicate_ids_across_files(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "b.yaml", GOOD)
    with pytest.raises(BankError, match=r"b.yaml:3: good-one: duplicate id \(first at a.yaml:3\)"):
        load_bank(tmp_path)


def test_json_export_shape():
    doc = json.loads(to_json())
    assert doc["format"] == "postfix-tls-lab/quizzes" and doc["version"] == 1
    assert set(doc["objectives"]) == set(OBJECTIVES) and set(doc["areas"]) == set(AREAS)
    q = next(q for q in doc["questions"] if q["type"] == "multiple")
    assert set(q) >= {"id", "type", "objectives", "area", "tags", "difficulty", "prompt", "display_prompt",
                      "choose", "choices", "answers", "case_sensitive", "explanation", "references", "source", "line"}
    assert q["display_prompt"].endswith(f"(Choose {['', '', 'TWO', 'THREE', 'FOUR'][q['choose']]} correct answers.)")
    assert sum(c["correct"] for c in q["choices"]) == q["choose"]
    assert all(set(c) == {"key", "text", "correct", "why"} for c in q["choices"])


# --- lint catches each defect class --------------------------------------------------------------
def lint_one(tmp_path: Path, text: str) -> list[str]:
    write(tmp_path, "x.yaml", text)
    return lint(tmp_path, check_coverage=False)


def test_lint_clean_small_bank(tmp_path):
    assert lint_one(tmp_path, GOOD) == []


def test_lint_duplicate_id(tmp_path):
    write(tmp_path, "a.yaml", GOOD)
    problems = lint_one(tmp_path, GOOD)
    assert any("duplicate id" in p for p in problems)


def test_lint_answer_not_among_choices(tmp_path):
    text = GOOD.replace("type: fill", "type: single").replace(
        "answers: [smtpd_tls_cert_file]",
        "choices:\n      - {text: a, why: w}\n      - {text: b, why: w}\n      - {text: c, why: w}")
    problems = lint_one(tmp_path, text)
    assert any("answer not among choices" in p and p.startswith("x.yaml:") for p in problems), problems


def test_lint_missing_explanations(tmp_path):
    text = GOOD.replace("explanation: Because.", "explanation: ''")
    assert any("missing explanation" in p for p in lint_one(tmp_path, text))
    text = GOOD.replace("type: fill", "type: single").replace(
        "answers: [smtpd_tls_cert_file]",
        "choices:\n      - {text: a, correct: true}\n      - {text: b, why: w}\n      - {text: c, why: w}")
    assert any("has no 'why'" in p for p in lint_one(tmp_path, text))


def test_lint_objectives_without_questions(tmp_path):
    write(tmp_path, "x.yaml", GOOD)
    problems = lint(tmp_path)
    assert any("objective lesson-1 has no questions" in p for p in problems)
    assert any("area smtp has no questions" in p for p in problems)


# --- a bank that cannot be gamed, and objective tags that mean something --------------------------
def single(qid: str, right: str, wrong: list[str], objectives: str = "[lesson-1, 211.1]", prompt: str = "Which?") -> str:
    rows = [f"      - {{text: '{right}', correct: true, why: w}}"] + [f"      - {{text: '{w}', why: w}}" for w in wrong]
    return (f"  - id: {qid}\n    type: single\n    objectives: {objectives}\n    area: smtp\n    difficulty: 1\n"
            f"    prompt: '{prompt}'\n    choices:\n" + "\n".join(rows) + "\n    explanation: e\n    references: [r]\n")


def test_lint_fails_when_the_longest_choice_is_right_too_often(tmp_path):
    long_right = [single(f"q-{i}", "the right answer, longer than the others", ["short a", "short b", "short c"])
                  for i in range(2)]
    fair = single("q-fair", "short", ["a much longer wrong answer here", "wrong b", "wrong c"])
    write(tmp_path, "x.yaml", "title: t\nquestions:\n" + "".join(long_right) + fair)
    problems = lint(tmp_path, check_coverage=False)
    (problem,) = [p for p in problems if "longest choice" in p]
    assert "in 2 of 3 single-choice questions" in problem and "q-0" in problem and "q-fair" not in problem
    write(tmp_path, "x.yaml", "title: t\nquestions:\n" + long_right[0] + fair
          + single("q-fair2", "brief", ["a much longer wrong answer", "x", "y"]))
    assert not [p for p in lint(tmp_path, check_coverage=False) if "longest choice" in p]  # 1 of 3 is allowed


def test_longest_right_counts_strictly_longer_only():
    from quizzes.lint import is_longest_right
    from quizzes.model import Choice, Question

    def q(lengths: list[int]) -> Question:
        return Question(id="t-q", type="single", objectives=["211.1"], area="smtp", difficulty=1, prompt="p",
                        choices=[Choice(text=str(i) * n, correct=i == 0, why="w") for i, n in enumerate(lengths)])
    assert is_longest_right(q([9, 3, 4])) and not is_longest_right(q([4, 4, 2])) and not is_longest_right(q([2, 9, 1]))


def test_real_bank_longest_right_is_rare_and_multiple_keeps_choose_n():
    from quizzes.lint import MAX_LONGEST_RIGHT, longest_right

    bank = load_bank()
    longest, singles = longest_right(list(bank))
    assert singles >= 40 and len(longest) <= MAX_LONGEST_RIGHT * singles
    for q in bank:
        if q.type == "multiple":
            assert "(Choose" not in q.prompt and q.display_prompt.endswith(" correct answers.)")


def test_lint_objective_tags(tmp_path):
    text = "title: t\nquestions:\n" + "".join([
        single("no-exam", "x", ["y", "z"], objectives="[lesson-1]"),
        single("both", "x", ["y", "z"], objectives="[211.1, course-only]"),
        single("certbot-exam", "x", ["y", "z"], objectives="[211.1]", prompt="What does certbot renew do?"),
        single("certbot-course", "x", ["y", "z"], objectives="[lesson-2, course-only]", prompt="What does certbot renew do?"),
        single("ok-exam", "x", ["y", "z"], objectives="[lesson-1, 211.1]"),
    ])
    write(tmp_path, "x.yaml", text)
    problems = lint(tmp_path, check_coverage=False)
    flagged = {p.split(": ")[1] for p in problems}
    assert flagged == {"no-exam", "both", "certbot-exam"}, problems
    assert any("certbot-exam" in p and "tag it course-only" in p for p in problems)


def test_real_bank_tags_course_material_as_course_only():
    """The 202-450 objectives (v4.5) name no certbot, ufw or ACME: such questions are course-only, and
    every question is either exam material (211.1) or course-only."""
    from quizzes.objectives import COURSE_ONLY, exam_objectives

    bank = load_bank()
    for qid in ("cert-ufw-80", "cert-standalone", "cert-live-dir", "cert-key-type-default", "cert-live-symlinks"):
        assert COURSE_ONLY in bank.get(qid).objectives and "211.1" not in bank.get(qid).objectives, qid
    for q in bank:
        exam = [o for o in q.objectives if o in exam_objectives()]
        assert bool(exam) != (COURSE_ONLY in q.objectives), q.id


def test_json_export_carries_objective_weights():
    doc = json.loads(to_json())
    assert doc["objectives"]["211.1"]["source"] == "202-450"
    assert doc["objectives"]["course-only"]["source"] == "course"
    assert doc["objectives"]["211.1"]["weight"] == 4
    assert doc["exam"]["objectives"] == {"211.1": {"weight": 4, "title": doc["objectives"]["211.1"]["title"]}}
    assert doc["exam"]["scale"]["pass_scaled"] == 500 and doc["exam"]["course_only"] == "course-only"
