"""All three question types are judged as the exam would: exact, all or nothing."""

from __future__ import annotations

import pytest

from quizzes.bank import load_bank
from quizzes.judge import judge
from quizzes.model import Choice, Question

BASE = dict(objectives=["lesson-2"], area="tls-config", difficulty=1, explanation="e", references=["r"])


def fill(answers, case_sensitive=True):
    return Question(id="f-q", type="fill", prompt="p", answers=answers, case_sensitive=case_sensitive, **BASE)


def choice_q(kind, correct):
    choices = [Choice(text=t, correct=t in correct, why="w") for t in "wxyz"]
    return Question(id="c-q", type=kind, prompt="p", choices=choices, **BASE)


def test_fill_trims_and_is_case_sensitive():
    q = fill(["smtpd_tls_cert_file"])
    assert judge(q, "  smtpd_tls_cert_file\n").correct
    assert not judge(q, "SMTPD_TLS_CERT_FILE").correct
    assert not judge(q, "smtpd_tls_cert_file=x").correct
    assert not judge(q, "").correct and not judge(q, None).correct


def test_fill_alternatives():
    q = fill(["postconf -e 'x=y'", "postconf x=y"])
    assert judge(q, "postconf -e 'x=y'").correct
    assert judge(q, " postconf x=y ").correct
    assert not judge(q, "postconf  x=y").correct  # inner blanks are not normalised
    assert judge(q, "postconf").expected == "postconf -e 'x=y'"


def test_fill_case_insensitive_when_declared():
    q = fill(["STARTTLS"], case_sensitive=False)
    assert judge(q, "starttls").correct and judge(q, "StartTLS").correct


def test_single_choice():
    q = choice_q("single", "y")
    assert judge(q, "C").correct and judge(q, " c ").correct
    assert not judge(q, "B").correct
    assert not judge(q, "C,D").correct
    assert not judge(q, "Q").correct


@pytest.mark.parametrize("response", ["A,C", "C,A", "a c", "AC", ["A", "C"], " A , C "])
def test_multiple_choice_right_set(response):
    assert judge(choice_q("multiple", "wy"), response).correct


@pytest.mark.parametrize("response", ["A", "A,C,D", "B,D", "", "A,C,Z"])
def test_multiple_choice_all_or_nothing(response):
    assert not judge(choice_q("multiple", "wy"), response).correct


def test_real_questions():
    bank = load_bank()
    q = bank.get("tls-set-cert-cmd")
    assert judge(q, "postconf -e 'smtpd_tls_cert_file=/etc/letsencrypt/live/lab.itpro.tv/fullchain.pem'").correct
    assert judge(q, "postconf smtpd_tls_cert_file=/etc/letsencrypt/live/lab.itpro.tv/fullchain.pem").correct
    assert not judge(q, "postconf -e 'smtpd_tls_cert_file=/etc/letsencrypt/live/lab.itpro.tv/cert.pem'").correct
    q = bank.get("sec-starttls-keyword")
    assert judge(q, "starttls").correct
    q = bank.get("aw-mailq")
    assert judge(q, q.correct_keys).correct and len(q.correct_keys) == 3
    assert "(Choose THREE correct answers.)" in q.display_prompt
