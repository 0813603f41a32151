"""The exam in a real browser, beyond tests/test_site_browser.py: a crash (no unload handler ever runs) loses
nothing, and on a phone an exam handed in blank links every missed question to a lesson section and a reference
row that exist in the built site. Fixtures and helpers are tests/test_site_browser.py's."""

from __future__ import annotations

import json

try:
    from tests.test_site_browser import (EC, By, Keys, anchor_resolves, answer, bank, browser, by_id, cards,  # noqa: F401
                                         downloads, fresh, monkeypatch_module, open_quiz, screenshot, site,
                                         site_url, wait)
except ImportError:  # pragma: no cover - run from tests/
    from test_site_browser import (EC, By, Keys, anchor_resolves, answer, bank, browser, by_id, cards,  # type: ignore  # noqa: F401
                                   downloads, fresh, monkeypatch_module, open_quiz, screenshot, site, site_url, wait)


def test_exam_survives_a_crash_without_unload(fresh, site_url, bank):
    """Each answer and flag is stored when it is given, so a tab killed without unload resumes the same exam."""
    b = fresh
    qs = by_id(bank)
    open_quiz(b, site_url + "quiz/exam.html")
    b.find_element(By.CSS_SELECTOR, ".quiz-start").send_keys(Keys.ENTER)
    wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-navigator")))
    n = len(b.find_elements(By.CSS_SELECTOR, ".quiz-navigator__q"))
    for i in range(2):
        c = cards(b)[0]
        answer(c, qs[c.get_attribute("data-qid")], right=True, keyboard=True)
        if i == 0:
            b.find_element(By.CSS_SELECTOR, ".quiz-flag").send_keys(Keys.ENTER)
        b.find_element(By.CSS_SELECTOR, ".quiz-next").send_keys(Keys.ENTER)
    # what a crash leaves: localStorage as it is now, before any pagehide/unload/beforeunload
    key = b.execute_script("return CourseQuiz.runKey")
    saved = b.execute_script("return localStorage.getItem(arguments[0])", key)
    assert saved, "the running exam is not stored before the page goes away"
    run = json.loads(saved)
    assert len(run["ids"]) == n
    # a new page load with only that stored state, every handler of the old page gone
    b.execute_script("window.onbeforeunload = null; window.onunload = null; window.onpagehide = null")
    b.get(site_url + "index.html")
    b.execute_script("localStorage.clear(); localStorage.setItem(arguments[0], arguments[1])", key, saved)
    open_quiz(b, site_url + "quiz/exam.html")
    wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-resumed")))
    assert b.find_element(By.CSS_SELECTOR, ".quiz-counter").text == f"Answered 2 of {n} · flagged 1"
    nav = b.find_elements(By.CSS_SELECTOR, ".quiz-navigator__q")
    assert "is-flagged" in nav[0].get_attribute("class") and "is-answered" in nav[1].get_attribute("class")
    assert json.loads(b.execute_script("return localStorage.getItem(arguments[0])", key))["ids"] == run["ids"]
    b.execute_script("window.localStorage.clear()")


def test_blank_exam_on_a_phone_links_every_missed_question(fresh, site_url, site, bank):
    """390 px wide: the running exam and its result fit; handed in blank, every question is missed, named
    "0 of n right" (unanswered count as not right, not as answered), and each carries two links that resolve."""
    b = fresh
    b.set_window_size(390, 844)
    open_quiz(b, site_url + "quiz/exam.html")
    b.find_element(By.CSS_SELECTOR, ".quiz-start").send_keys(Keys.ENTER)
    wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-navigator")))
    width = "return document.documentElement.scrollWidth"
    assert b.execute_script(width) <= 390, b.execute_script(width)
    ids = json.loads(b.execute_script("return localStorage.getItem(CourseQuiz.runKey)"))["ids"]
    n = len(ids)
    b.find_element(By.CSS_SELECTOR, ".quiz-handin").send_keys(Keys.ENTER)
    confirm = b.find_element(By.CSS_SELECTOR, ".quiz-confirm")
    assert confirm.is_displayed() and "Not answered: questions 1, 2" in confirm.text
    b.find_element(By.CSS_SELECTOR, ".quiz-confirm__yes").send_keys(Keys.ENTER)
    wait(b).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".quiz-result__title")))
    assert f"0 of {n} right" in b.find_element(By.CSS_SELECTOR, ".quiz-result").text
    assert b.execute_script(width) <= 390, b.execute_script(width)
    missed = b.find_elements(By.CSS_SELECTOR, ".quiz-missed__item")
    assert sorted(m.get_attribute("data-qid") for m in missed) == sorted(ids)
    for m in missed:
        hrefs = [a.get_attribute("href") for a in m.find_elements(By.CSS_SELECTOR, ".quiz-refs a")]
        assert len(hrefs) == 2, (m.get_attribute("data-qid"), hrefs)
        assert all(anchor_resolves(site, b.current_url, h) for h in hrefs), hrefs
    screenshot(b, "site-exam-result-phone.png")
    b.execute_script("window.localStorage.clear()")
