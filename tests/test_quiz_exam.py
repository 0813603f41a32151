"""Exam drawing by weight, the 200-800 scaling, scoring and the per-objective breakdown."""

from __future__ import annotations

from collections import Counter

import pytest

from quizzes import exam
from quizzes.bank import load_bank
from quizzes.objectives import AREAS


def test_allocate_follows_weights_and_sums_to_n():
    weights = {"a": 3, "b": 1}
    assert exam.allocate(8, {"a": 100, "b": 100}, weights) == {"a": 6, "b": 2}
    assert exam.allocate(3, {"a": 100, "b": 100}, weights) == {"a": 2, "b": 1}


def test_allocate_gives_shortfall_to_others():
    assert exam.allocate(8, {"a": 2, "b": 100}, {"a": 3, "b": 1}) == {"a": 2, "b": 6}
    assert sum(exam.allocate(10_000, {"a": 2, "b": 5}, {"a": 3, "b": 1}).values()) == 7


def test_draw_uses_area_weights_and_is_seeded():
    bank = load_bank()
    ids = exam.draw(bank, 21, seed=7)
    assert ids == exam.draw(bank, 21, seed=7) and len(set(ids)) == 21
    counts = Counter(bank.get(i).area for i in ids)
    # 21 questions over weights summing to 21: each area gives exactly its weight
    assert sum(a.weight for a in AREAS.values()) == 21
    assert counts == Counter({a.id: a.weight for a in AREAS.values()})
    assert exam.draw(bank, 21, seed=8) != ids


@pytest.mark.parametrize("fraction,scaled", [(0, 200), (0.65, 500), (1, 800), (0.325, 350), (0.825, 650)])
def test_scale(fraction, scaled):
    assert exam.scale(fraction) == scaled


def test_score_breakdown_and_wrong_review():
    bank = load_bank()
    ids = ["tls-cert-param", "sec-encrypt-530", "aw-mailq", "smtp-port-25"]
    q530 = bank.get("sec-encrypt-530")
    responses = {"tls-cert-param": "smtpd_tls_cert_file", "sec-encrypt-530": q530.correct_keys[0],
                 "aw-mailq": "A", "smtp-port-25": ""}
    r = exam.score(bank, ids, responses)
    assert (r["correct"], r["total"], r["answered"]) == (2, 4, 3)
    assert r["scaled"] == exam.scale(0.5) and r["passed"] is False
    assert r["by_objective"]["211.1"] == {"correct": 2, "total": 4}
    assert r["by_objective"]["lesson-2"] == {"correct": 2, "total": 2}
    assert r["by_area"]["awareness"] == {"correct": 0, "total": 1}
    assert [w["id"] for w in r["wrong"]] == ["aw-mailq", "smtp-port-25"]
    assert r["wrong"][1]["expected"] == "25" and r["wrong"][1]["explanation"]
