"""The exam simulation: drawing questions by weight, timing, LPI-like scaled scoring.

Drawing (:func:`quotas`, :func:`draw`): only questions tagged with a 202-450 objective are drawn;
course-only questions (certbot, ACME, ufw: the exam objectives name none of them) are for practice.
N questions are shared out over the exam objectives by their 202-450 weight, then each objective's
share over the knowledge *areas* (see objectives.py) by area weight, largest-remainder rounding at each
step, each part giving what it has, with any shortfall going to the parts that have questions left.
Within an area the draw is random, seeded so that an instructor can give a whole class the same exam
(``--seed``). :func:`rules` gives all of this (weights, pass rule, timing) as data for the site.

Time: LPI allows 90 minutes for 60 questions, so the default is 90 seconds per question.

Scaling (ours - LPI does not publish its method): LPI reports 200-800 with 500 to pass. We map the
fraction of right answers ``p`` piecewise linearly so that 0 -> 200, PASS_FRACTION -> 500, 1 -> 800:

    p <= PASS_FRACTION:  200 + 300 * p / PASS_FRACTION
    p >  PASS_FRACTION:  500 + 300 * (p - PASS_FRACTION) / (1 - PASS_FRACTION)

rounded to the nearest integer. PASS_FRACTION is 0.65, a common estimate of LPI's cut score, not a
published figure. Multiple-answer questions score all or nothing; unanswered questions are wrong.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Iterable

from .bank import Bank
from .judge import choice_texts, judge
from .model import Question
from .objectives import AREAS, COURSE_ONLY, OBJECTIVES

PASS_FRACTION = 0.65
PASS_SCALED = 500
SCALE_MIN, SCALE_MAX = 200, 800
SECONDS_PER_QUESTION = 90.0
DEFAULT_COUNT = 20


def exam_objective(q: Question) -> str | None:
    """The 202-450 objective a question serves (its first), or None for a course-only question."""
    return next((o for o in q.objectives if o in OBJECTIVES and OBJECTIVES[o].exam), None)


def exam_pool(questions: Iterable[Question]) -> list[Question]:
    """The questions an exam may draw: those with a 202-450 objective, in the order given."""
    return [q for q in questions if exam_objective(q) is not None]


def allocate(n: int, available: dict[str, int], weights: dict[str, int] | None = None) -> dict[str, int]:
    """How many questions each area gives to an exam of N (never more than it has)."""
    weights = weights or {a.id: a.weight for a in AREAS.values()}
    n = min(n, sum(available.values()))
    alloc = {a: 0 for a in available}
    remaining = n
    open_areas = {a for a, k in available.items() if k > 0 and weights.get(a, 0) > 0}
    while remaining > 0 and open_areas:
        total_w = sum(weights[a] for a in open_areas)
        shares = {a: remaining * weights[a] / total_w for a in open_areas}
        floors = {a: min(int(shares[a]), available[a] - alloc[a]) for a in open_areas}
        given = sum(floors.values())
        for a, k in floors.items():
            alloc[a] += k
        left = remaining - given
        # largest remainder, ties broken by weight then name, for a stable result
        order = sorted(open_areas, key=lambda a: (-(shares[a] - int(shares[a])), -weights[a], a))
        for a in order:
            if left == 0:
                break
            if alloc[a] < available[a]:
                alloc[a] += 1
                left -= 1
        remaining = n - sum(alloc.values())
        open_areas = {a for a in open_areas if alloc[a] < available[a]}
    return alloc


def quotas(n: int, available: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """How many questions each (exam objective, area) gives to an exam of N.

    ``available``: {objective: {area: number of exam questions}}. N is shared over the objectives by
    their 202-450 weight, then each objective's share over its areas by area weight (:func:`allocate`
    at both steps, so a part that runs short passes the rest on). The site's exam reads the same rule.
    """
    objective_weights = {o: OBJECTIVES[o].weight for o in available if o in OBJECTIVES and OBJECTIVES[o].exam}
    per_objective = allocate(n, {o: sum(available[o].values()) for o in objective_weights}, objective_weights)
    area_weights = {a.id: a.weight for a in AREAS.values()}
    return {o: allocate(k, available[o], area_weights) for o, k in per_objective.items()}


def draw(bank: Bank, n: int = DEFAULT_COUNT, seed: int | None = None, questions: list[Question] | None = None) -> list[str]:
    """Question ids for an exam of N exam-objective questions, by weight (:func:`quotas`), seeded order."""
    rng = random.Random(seed)
    pool = exam_pool(questions if questions is not None else list(bank))
    groups: dict[str, dict[str, list[Question]]] = defaultdict(lambda: defaultdict(list))
    for q in pool:
        groups[exam_objective(q) or ""][q.area].append(q)
    plan = quotas(n, {o: {a: len(qs) for a, qs in areas.items()} for o, areas in groups.items()})
    chosen: list[str] = []
    for objective in sorted(groups):
        for area in sorted(groups[objective]):
            chosen.extend(q.id for q in rng.sample(groups[objective][area], plan.get(objective, {}).get(area, 0)))
    rng.shuffle(chosen)
    return chosen


def passed(scaled: int) -> bool:
    """LPI's pass rule: a scaled score of 500 or more."""
    return scaled >= PASS_SCALED


def rules() -> dict[str, Any]:
    """The exam simulation's rules as data (for the site's JavaScript and the docs): who is drawn,
    the weights, the scaling and pass mark, the timing. The Python functions above are the reference."""
    return {
        "pool": "questions with a 202-450 objective; course-only questions are never drawn",
        "objectives": {o.id: {"weight": o.weight, "title": o.title} for o in OBJECTIVES.values() if o.exam},
        "course_only": COURSE_ONLY,
        "areas": {a.id: a.weight for a in AREAS.values()},
        "rounding": "largest remainder, ties by higher weight then id; a part short of questions passes the rest on",
        "default_count": DEFAULT_COUNT,
        "seconds_per_question": SECONDS_PER_QUESTION,
        "scale": {"min": SCALE_MIN, "max": SCALE_MAX, "pass_fraction": PASS_FRACTION, "pass_scaled": PASS_SCALED,
                  "formula": "p <= pass_fraction: min + (pass_scaled - min) * p / pass_fraction; "
                             "else pass_scaled + (max - pass_scaled) * (p - pass_fraction) / (1 - pass_fraction); rounded"},
        "scoring": "all or nothing per question; unanswered is wrong",
    }


def scale(fraction: float, pass_fraction: float = PASS_FRACTION) -> int:
    """Map a fraction of right answers to LPI's 200-800 scale (see the module docstring)."""
    p = min(max(fraction, 0.0), 1.0)
    if p <= pass_fraction:
        return round(SCALE_MIN + (PASS_SCALED - SCALE_MIN) * p / pass_fraction)
    return round(PASS_SCALED + (SCALE_MAX - PASS_SCALED) * (p - pass_fraction) / (1 - pass_fraction))


def score(bank: Bank, question_ids: list[str], responses: dict[str, str], pass_fraction: float = PASS_FRACTION) -> dict[str, Any]:
    """Score an exam: raw and scaled score, pass/fail, breakdown by objective and area, wrong answers."""
    by_objective: dict[str, list[int]] = {o: [0, 0] for o in OBJECTIVES}
    by_area: dict[str, list[int]] = {a: [0, 0] for a in AREAS}
    wrong: list[dict[str, Any]] = []
    right = 0
    for qid in question_ids:
        q = bank.get(qid)
        verdict = judge(q, responses.get(qid))
        right += verdict.correct
        for o in q.objectives:
            by_objective[o][1] += 1
            by_objective[o][0] += verdict.correct
        by_area[q.area][1] += 1
        by_area[q.area][0] += verdict.correct
        if not verdict.correct:
            wrong.append({
                # choices by their texts: the letters of the attempt mean nothing once it is over
                "id": q.id, "prompt": q.display_prompt, "given": choice_texts(q, verdict.given),
                "expected": choice_texts(q, ",".join(q.correct_keys)) if q.choices else verdict.expected,
                "explanation": q.explanation, "references": list(q.references),
            })
    total = len(question_ids)
    fraction = right / total if total else 0.0
    scaled = scale(fraction, pass_fraction)
    return {
        "total": total,
        "correct": right,
        "answered": sum(1 for qid in question_ids if responses.get(qid)),
        "percent": round(100 * fraction, 1),
        "scaled": scaled,
        "passed": passed(scaled),
        "by_objective": {k: {"correct": v[0], "total": v[1]} for k, v in by_objective.items() if v[1]},
        "by_area": {k: {"correct": v[0], "total": v[1]} for k, v in by_area.items() if v[1]},
        "wrong": wrong,
    }
