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


# --- only 202-450 objectives in the exam, by weight ------------------------------------------------
def test_exam_never_draws_course_only_questions():
    from quizzes.objectives import COURSE_ONLY

    bank = load_bank()
    course = {q.id for q in bank if COURSE_ONLY in q.objectives}
    assert len(course) >= 5
    for seed in range(20):
        ids = exam.draw(bank, 60, seed=seed)
        assert not course & set(ids) and all(exam.exam_objective(bank.get(i)) == "211.1" for i in ids)
    everything = exam.draw(bank, 10_000, seed=1)
    assert set(everything) == {q.id for q in bank} - course  # all exam questions, never a course-only one


def test_quotas_share_by_objective_weight_then_area_weight():
    # two exam objectives (weights 4 and 2 as on 202-450: 211.1 and 211.2) seen through a patched table
    from dataclasses import replace

    from quizzes import objectives

    fake = {**objectives.OBJECTIVES, "211.2": replace(objectives.OBJECTIVES["211.1"], id="211.2", weight=2)}
    original = exam.OBJECTIVES
    exam.OBJECTIVES = fake
    try:
        plan = exam.quotas(12, {"211.1": {"tls-config": 50, "logs": 50}, "211.2": {"smtp": 50}})
        assert sum(plan["211.1"].values()) == 8 and plan["211.2"] == {"smtp": 4}
        assert plan["211.1"] == {"tls-config": 7, "logs": 1}  # area weights 5 : 1 of 8, largest remainder
        short = exam.quotas(12, {"211.1": {"tls-config": 50}, "211.2": {"smtp": 1}})
        assert short == {"211.1": {"tls-config": 11}, "211.2": {"smtp": 1}}  # a short part passes the rest on
        assert exam.quotas(5, {"course-only": {"certificates": 9}}) == {}  # never an objective outside 202-450
    finally:
        exam.OBJECTIVES = original


def test_rules_and_pass_rule_are_data():
    r = exam.rules()
    assert r["objectives"] == {"211.1": {"weight": 4, "title": "Using e-mail servers (202-450, weight 4)."}}
    assert r["areas"] == {a.id: a.weight for a in AREAS.values()} and r["course_only"] == "course-only"
    assert r["scale"] == {**r["scale"], "min": 200, "max": 800, "pass_scaled": 500, "pass_fraction": 0.65}
    assert exam.passed(500) and not exam.passed(499)
    assert exam.scale(r["scale"]["pass_fraction"]) == r["scale"]["pass_scaled"]
    import json

    json.dumps(r)  # plain data for the site


# --- choices shuffled per attempt, the choice stored (not the letter) ------------------------------
def test_sessions_shuffle_choices_and_store_the_choice(tmp_path):
    from quizzes import session
    from quizzes.store import Store

    bank = load_bank()
    q = bank.get("sec-encrypt-530")
    store = Store(tmp_path / "p.sqlite3")
    orders, stored = set(), set()
    for attempt in range(8):
        s = session.start(store, "practice", [q.id], now=1000.0 + attempt)
        shown = session.presented(s, q)
        assert session.presented(s, q) == shown  # the same letters again on resume
        assert sorted(c.text for c in shown.choices) == sorted(c.text for c in q.choices)
        orders.add(tuple(c.text for c in shown.choices))
        v = session.answer(store, bank, s, q.id, shown.correct_keys[0], shown=shown)
        assert v.correct and v.given == shown.correct_keys[0]
        (a,) = store.answers(s.id)
        stored.add(a.given)
        assert session.finish(store, bank, s)["correct"] == 1  # the stored choice is judged right again
    assert len(orders) > 1  # the letters change from one attempt to the next
    assert stored == {next(c.text for c in q.choices if c.correct)}  # always the choice, never a letter


def test_stored_multiple_choice_texts_judge_like_letters():
    from quizzes.judge import choice_texts, judge

    q = load_bank().get("aw-mailq")
    right = ",".join(q.correct_keys)
    texts = choice_texts(q, right)
    assert len(texts.splitlines()) == 3 and judge(q, texts).correct
    assert judge(q, [c.text for c in q.choices if c.correct]).correct
    assert not judge(q, "\n".join(texts.splitlines()[:2])).correct
    r = exam.score(load_bank(), [q.id], {q.id: "A"})
    assert r["wrong"][0]["expected"] == texts  # a review shows choices, not letters of some attempt
