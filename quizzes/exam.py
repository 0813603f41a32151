"""The exam simulation: drawing questions by weight, timing, LPI-like scaled scoring.

Drawing: the bank is partitioned by *area* (see objectives.py). N questions are shared out over the
areas in proportion to their weights (largest-remainder rounding), each area giving what it has,
with any shortfall going to the areas that have questions left. Within an area the draw is random,
seeded so that an instructor can give a whole class the same exam (``--seed``).

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
from typing import Any

from .bank import Bank
from .judge import judge
from .model import Question
from .objectives import AREAS, OBJECTIVES

PASS_FRACTION = 0.65
SECONDS_PER_QUESTION = 90.0
DEFAULT_COUNT = 20


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


def draw(bank: Bank, n: int = DEFAULT_COUNT, seed: int | None = None, questions: list[Question] | None = None) -> list[str]:
    """Question ids for an exam of N, by area weight, in a seeded random order."""
    rng = random.Random(seed)
    pool = questions if questions is not None else list(bank)
    by_area: dict[str, list[Question]] = defaultdict(list)
    for q in pool:
        by_area[q.area].append(q)
    alloc = allocate(n, {a: len(qs) for a, qs in by_area.items()})
    chosen: list[str] = []
    for area in sorted(by_area):
        chosen.extend(q.id for q in rng.sample(by_area[area], alloc.get(area, 0)))
    rng.shuffle(chosen)
    return chosen


def scale(fraction: float, pass_fraction: float = PASS_FRACTION) -> int:
    """Map a fraction of right answers to LPI's 200-800 scale (see the module docstring)."""
    p = min(max(fraction, 0.0), 1.0)
    if p <= pass_fraction:
        return round(200 + 300 * p / pass_fraction)
    return round(500 + 300 * (p - pass_fraction) / (1 - pass_fraction))


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
                "id": q.id, "prompt": q.display_prompt, "given": verdict.given, "expected": verdict.expected,
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
        "passed": scaled >= 500,
        "by_objective": {k: {"correct": v[0], "total": v[1]} for k, v in by_objective.items() if v[1]},
        "by_area": {k: {"correct": v[0], "total": v[1]} for k, v in by_area.items() if v[1]},
        "wrong": wrong,
    }
