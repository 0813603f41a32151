"""The notebook quiz renders the same text on every run (nbval compares it)."""

from __future__ import annotations

from quizzes.notebook import feedback_html, plain_text, show_quiz
from quizzes.bank import load_bank


def test_text_is_stable_and_hides_answers():
    a = show_quiz(tags=["starttls"], n=3)
    b = show_quiz(tags=["starttls"], n=3)
    text = a._repr_mimebundle_()["text/plain"]
    assert text == b._repr_mimebundle_()["text/plain"] == repr(a)
    assert text.count("\n1. [") == 1 and "3. [" in text
    assert "why" not in text and "Right" not in text


def test_ids_keep_order_and_all_types():
    quiz = show_quiz(ids=["aw-mailq", "tls-cert-param", "sec-encrypt-530"], widgets=False)
    text = repr(quiz)
    assert text.index("aw-mailq") < text.index("tls-cert-param") < text.index("sec-encrypt-530")
    assert "(Choose THREE correct answers.)" in text and "Answer: ____" in text


def test_widget_has_a_view_and_feedback():
    quiz = show_quiz(ids=["tls-cert-param"])
    bundle = quiz._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    q = load_bank().get("tls-cert-param")
    assert "Right." in feedback_html(q, "smtpd_tls_cert_file")
    assert "Not quite." in feedback_html(q, "smtpd_tls_key_file")
    assert plain_text([q]).startswith("Quiz: 1 question(s).")


def test_widget_shuffles_per_attempt_and_judges_the_letters_it_shows():
    from quizzes.notebook import attempt

    bank = load_bank()
    q = bank.get("sec-encrypt-530")
    orders = {tuple(c.text for c in attempt([q])[0].choices) for _ in range(12)}
    assert len(orders) > 1  # each run of the cell is a new attempt
    shown = attempt([q], seed="s")[0]
    assert attempt([q], seed="s")[0] == shown
    assert "Right." in feedback_html(shown, shown.correct_keys[0])
    wrong = next(k for k in "ABCD"[: len(shown.choices)] if k not in shown.correct_keys)
    assert "Not quite." in feedback_html(shown, wrong)
    # the stored text form stays the bank's, whatever order the widget shows
    a, b = show_quiz(ids=[q.id]), show_quiz(ids=[q.id])
    assert a._repr_mimebundle_()["text/plain"] == b._repr_mimebundle_()["text/plain"] == plain_text([q])
