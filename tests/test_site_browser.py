"""The course site in a real browser: Debian's chromium, headless, driven by Selenium.

The built site (built once, see tests/test_site.py) is served on 127.0.0.1 by http.server in a thread, and
also opened from files. A learner practises (one at a time, filters, shuffled order, wrong then right,
double clicks), answers a lesson's quiz, moves progress to and from the CLI's progress file, and takes an
exam by keyboard alone (navigator, flags, reload in the middle, confirmation naming the unanswered questions,
the result with its weakest objectives and links that resolve, the review of a past exam and its trend).
axe-core (vendored from npm, scripts/gen_site/vendor/) checks every page in light and dark mode, and a
390 px phone checks that nothing is wider than its screen. Screenshots go to artifacts/ (gitignored).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

try:  # one build per session, shared with test_site.py (tests/ may or may not be a package)
    from tests.test_site import ROOT, built_site, sitegen
except ImportError:  # pragma: no cover
    from test_site import ROOT, built_site, sitegen  # type: ignore[no-redef]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "artifacts"
AXE = ROOT / "scripts" / "gen_site" / "vendor" / "axe.min.js"

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def site() -> Path:
    return built_site()[0]


@pytest.fixture(scope="module")
def site_url(site):
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory, monkeypatch_module, downloads):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup.sh --test)")
    monkeypatch_module.setenv("SE_OFFLINE", "true")  # never let Selenium Manager look for downloads
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1366,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def bank(site):
    return json.loads((site / "assets" / "quiz-bank.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def links(site):
    return json.loads((site / "assets" / "quiz-links.json").read_text(encoding="utf-8"))


@pytest.fixture()
def fresh(browser, site_url):
    """A learner with no stored progress, on a desktop-sized window."""
    browser.set_window_size(1366, 900)
    browser.get(site_url + "index.html")
    browser.execute_script("window.localStorage.clear()")
    return browser


def wait(driver, timeout=15):
    return WebDriverWait(driver, timeout)


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def open_quiz(driver, url: str):
    driver.get(url)
    wait(driver).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))


def score_of(driver, root=None) -> tuple[int, int]:
    el = (root or driver).find_element(By.CSS_SELECTOR, ".quiz-score")
    return int(el.get_attribute("data-correct")), int(el.get_attribute("data-answered"))


def cards(driver):
    return driver.find_elements(By.CSS_SELECTOR, ".quiz-q")


def right_keys(q) -> list[str]:
    return [c["key"] for c in q["choices"] if c["correct"]]


def answer(card_el, q, right: bool = True, keyboard: bool = False):
    """Answer a question card (by clicks, or by keys sent to its controls)."""
    if q["type"] == "fill":
        box = card_el.find_element(By.CSS_SELECTOR, "input.quiz-fill")
        box.clear()
        box.send_keys(q["answers"][0] if right else q["answers"][0] + "x")
        return
    keys = right_keys(q) if right else [next(c["key"] for c in q["choices"] if not c["correct"])]
    for box in card_el.find_elements(By.CSS_SELECTOR, ".quiz-choice input"):
        want = box.get_attribute("value") in keys
        if want != box.is_selected():
            if keyboard:
                box.send_keys(Keys.SPACE)
            else:
                label = card_el.find_element(By.CSS_SELECTOR, f"label[for='{box.get_attribute('id')}']")
                label.parent.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
                label.click()


def check(driver, card_el) -> str:
    button = card_el.find_element(By.CSS_SELECTOR, ".quiz-check")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()
    fb = card_el.find_element(By.CSS_SELECTOR, ".quiz-feedback")
    wait(driver).until(lambda d: fb.is_displayed() and fb.text.strip())
    return fb.text


def anchor_resolves(site: Path, page_url: str, href: str) -> bool:
    """An href (absolute http://.../x.html#y as the browser resolved it) names a built page with that id."""
    path, _, anchor = re.sub(r"^https?://[^/]+/", "", href).partition("#")
    target = site / path
    return target.is_file() and (not anchor or f'id="{anchor}"' in target.read_text(encoding="utf-8"))


def by_id(bank):
    return {q["id"]: q for q in bank["questions"]}


# --- practice -----------------------------------------------------------------------------------------------
def test_practice_one_at_a_time_wrong_then_right(fresh, site_url, site, bank, links):
    b = fresh
    open_quiz(b, site_url + "quiz/index.html")
    assert score_of(b) == (0, 0)
    shown = cards(b)
    assert len(shown) == 1, "one question at a time by default"
    assert "of " + str(len(bank["questions"])) in shown[0].text
    qs = by_id(bank)
    # find a single-choice question by going Next
    for _ in range(len(bank["questions"])):
        q = qs[cards(b)[0].get_attribute("data-qid")]
        if q["type"] == "single":
            break
        b.find_element(By.CSS_SELECTOR, ".quiz-next").click()
    c = cards(b)[0]
    assert c.find_element(By.TAG_NAME, "fieldset").find_element(By.TAG_NAME, "legend").text.startswith("Question")
    answer(c, q, right=False)
    text = check(b, c)
    assert "Incorrect" in text and "The answer: " in text
    # the answer is given in the letters shown (the choices are shuffled)
    shown_letter = next(lab.text.split(".")[0] for lab in c.find_elements(By.CSS_SELECTOR, ".quiz-choice")
                        if lab.get_attribute("data-key") == right_keys(q)[0])
    assert f"The answer: {shown_letter}" in text
    assert b.switch_to.active_element.get_attribute("class").startswith("quiz-feedback"), "focus goes to the feedback"
    assert score_of(b) == (0, 1)
    # every feedback links to the lesson section and the reference row, and they resolve
    hrefs = [a.get_attribute("href") for a in c.find_elements(By.CSS_SELECTOR, ".quiz-refs a")]
    assert len(hrefs) == 2 and all(anchor_resolves(site, b.current_url, h) for h in hrefs), hrefs
    assert links[q["id"]]["lesson"]["href"] in hrefs[0]
    screenshot(b, "site-quiz-practice-wrong.png")
    # a double click on Check does not land on "Try again" and empty the answer
    retry = b.find_element(By.CSS_SELECTOR, ".quiz-retry")
    time.sleep(0.8)  # "Try again" ignores clicks just after Check (a double click)
    b.execute_script("arguments[0].click()", retry)
    c = cards(b)[0]
    answer(c, q, right=True)
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", c.find_element(By.CSS_SELECTOR, ".quiz-check"))
    ActionChains(b).double_click(c.find_element(By.CSS_SELECTOR, ".quiz-check")).perform()
    time.sleep(0.2)
    assert "Correct" in c.find_element(By.CSS_SELECTOR, ".quiz-feedback").text
    assert c.find_element(By.CSS_SELECTOR, ".quiz-retry").is_displayed()
    assert score_of(b) == (1, 1)  # the latest answer counts
    # progress is kept: a reload shows the same score
    open_quiz(b, site_url + "quiz/index.html")
    assert score_of(b) == (1, 1)
    # five per page
    Select(b.find_element(By.CSS_SELECTOR, "select.quiz-pagesize")).select_by_value("5")
    assert len(cards(b)) == 5


def test_practice_filters_and_shuffling(fresh, site_url, bank):
    b = fresh
    open_quiz(b, site_url + "quiz/index.html")
    qs = by_id(bank)
    sel = Select(b.find_element(By.CSS_SELECTOR, "select.quiz-filter"))
    values = [o.get_attribute("value") for o in sel.options]
    for stem, lesson in bank["lessons"].items():
        assert f"lesson={stem}" in values
    assert {"due", "wrong", "unseen"} <= set(values)
    stem, lesson = next(iter(bank["lessons"].items()))
    sel.select_by_value(f"lesson={stem}")
    Select(b.find_element(By.CSS_SELECTOR, "select.quiz-pagesize")).select_by_value("5")
    shown = set()
    while True:
        shown |= {c.get_attribute("data-qid") for c in cards(b)}
        nxt = b.find_elements(By.CSS_SELECTOR, ".quiz-next")
        if not nxt or not nxt[0].is_enabled():
            break
        nxt[0].click()
    assert shown == set(lesson["quiz"]), "a lesson filter means that lesson's questions"
    # answer one wrong: "wrong last time" and "due for review" hold it, "not yet seen" no longer does
    c = cards(b)[0]
    q = qs[c.get_attribute("data-qid")]
    answer(c, q, right=False)
    check(b, c)
    open_quiz(b, site_url + "quiz/index.html#wrong")
    assert [c.get_attribute("data-qid") for c in cards(b)] == [q["id"]]
    open_quiz(b, site_url + "quiz/index.html#due")
    assert [c.get_attribute("data-qid") for c in cards(b)] == [q["id"]]
    open_quiz(b, site_url + "quiz/index.html#unseen")
    assert f"({len(bank['questions']) - 1})" in Select(b.find_element(By.CSS_SELECTOR, "select.quiz-filter")).first_selected_option.text
    # shuffled questions and choices: the first question and a question's choice order change between runs
    open_quiz(b, site_url + "quiz/index.html")
    firsts, orders = set(), set()
    stem2 = None
    for _ in range(6):
        b.find_element(By.CSS_SELECTOR, ".quiz-shuffle").click()
        c = cards(b)[0]
        firsts.add(c.get_attribute("data-qid"))
    assert len(firsts) > 1
    multi = next(q for q in bank["questions"] if len(q["choices"]) >= 4)
    for _ in range(6):  # the lesson quiz of the lesson holding MULTI shows its choices in a new order each time
        stem2 = next((s for s, l in bank["lessons"].items() if multi["id"] in l["quiz"]), None)
        if stem2 is None:
            break
        b.get(site_url + f"lessons/{stem2}.html")
        wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
        orders.add(tuple(e.get_attribute("data-key") for e in
                         b.find_elements(By.CSS_SELECTOR, f"#q-{multi['id']} .quiz-choice")))
    if stem2 is not None:
        assert len(orders) > 1
    # on a phone the filter fits the screen
    b.set_window_size(390, 844)
    open_quiz(b, site_url + "quiz/index.html")
    assert b.execute_script("return document.documentElement.scrollWidth") <= 390
    screenshot(b, "site-phone-practice.png")


def _judge_cases(q):
    if q["type"] == "fill":
        a = q["answers"][0]
        return [a, " " + a + " ", a.swapcase(), a.upper(), a + "x", "", *q["answers"][1:]]
    keys = [c["key"] for c in q["choices"]]
    right = right_keys(q)
    cases = [right, list(reversed(right)), [k.lower() for k in right], [], keys, right[:1], [keys[-1]]]
    cases += [[k] for k in keys]
    return cases


def test_the_browser_judges_as_quizzes_judge(fresh, site_url, bank):
    """The JS judge() and quizzes.judge agree on every question, for right, wrong, partial and odd answers."""
    from quizzes import judge as pyjudge
    from quizzes.bank import load_bank

    b = fresh
    open_quiz(b, site_url + "quiz/index.html")
    pybank = load_bank()
    cases = [(q["id"], r) for q in bank["questions"] for r in _judge_cases(q)]
    got = b.execute_script("""
        var byId = {}; window.QUIZ_BANK.questions.forEach(q => byId[q.id] = q);
        return arguments[0].map(c => window.CourseQuiz.judge(byId[c[0]], c[1]));""", cases)
    expected = [pyjudge.judge(pybank.get(qid), r).correct for qid, r in cases]
    diffs = [(c, g, e) for c, g, e in zip(cases, got, expected) if g != e]
    assert not diffs, diffs[:10]
    assert sum(expected) >= len(bank["questions"])  # the cases include right answers


def test_progress_file_export_and_import(fresh, site_url, bank, downloads):
    from quizzes import progress

    b = fresh
    open_quiz(b, site_url + "quiz/index.html")
    qs = by_id(bank)
    c = cards(b)[0]
    q = qs[c.get_attribute("data-qid")]
    answer(c, q, right=True)
    check(b, c)
    for f in downloads.glob("*"):
        f.unlink()
    b.find_element(By.CSS_SELECTOR, ".quiz-export").click()
    path = downloads / "postfix-tls-lab-progress.json"
    wait(b).until(lambda d: path.is_file() and path.stat().st_size > 0)
    doc = progress.parse(path.read_text(encoding="utf-8"))  # the CLI's reader accepts it
    assert [(a.question, a.correct, a.source) for a in doc.answers] == [(q["id"], True, "site")]
    # a file from the CLI: one known question (wrong), one the site does not have
    other = next(x for x in bank["questions"] if x["id"] != q["id"])
    cli = progress.ProgressFile(format=progress.FORMAT, version=1, exported_at="2026-12-01T10:00:00Z", answers=[
        progress.ProgressAnswer(question=other["id"], correct=False, answered_at="2026-12-01T09:59:00Z", source="cli"),
        progress.ProgressAnswer(question="not-in-this-bank", correct=True, answered_at="2026-12-01T09:58:00Z", source="cli"),
    ], exams=[progress.ProgressExam(taken_at="2026-12-01T09:00:00Z", score=520, passed=True, right=14, total=20, missed=[])])
    good = downloads / "from-cli.json"
    good.write_text(progress.dumps(cli), encoding="utf-8")
    newer = downloads / "newer.json"
    newer.write_text(json.dumps({**json.loads(progress.dumps(cli)), "version": 2}), encoding="utf-8")
    before = b.execute_script(f"return localStorage.getItem({json.dumps(b.execute_script('return CourseQuiz.storeKey'))})")
    file_input = b.find_element(By.CSS_SELECTOR, "input.quiz-import-file")
    file_input.send_keys(str(newer))
    notice = b.find_element(By.CSS_SELECTOR, ".quiz-notice")
    wait(b).until(lambda d: "Not imported" in notice.text)
    assert "newer version" in notice.text and "update the course" in notice.text
    key = b.execute_script("return CourseQuiz.storeKey")
    assert b.execute_script(f"return localStorage.getItem({json.dumps(key)})") == before, "a refused file changes nothing"
    b.find_element(By.CSS_SELECTOR, "input.quiz-import-file").send_keys(str(good))
    wait(b).until(lambda d: "Imported" in d.find_element(By.CSS_SELECTOR, ".quiz-notice").text)
    text = b.find_element(By.CSS_SELECTOR, ".quiz-notice").text
    assert "Imported 2 new answer(s) and 1 exam(s)" in text and "not-in-this-bank" in text
    store = json.loads(b.execute_script(f"return localStorage.getItem({json.dumps(key)})"))
    assert [a["question"] for a in store["answers"]] == ["not-in-this-bank", other["id"], q["id"]]  # oldest first
    # importing the same file again adds nothing (the same question at the same second is the same answer)
    b.find_element(By.CSS_SELECTOR, "input.quiz-import-file").send_keys(str(good))
    wait(b).until(lambda d: "Imported 0 new" in d.find_element(By.CSS_SELECTOR, ".quiz-notice").text)
    # and the round trip through the site keeps everything the CLI wrote
    for f in downloads.glob("postfix-tls-lab-progress*.json"):
        f.unlink()
    b.find_element(By.CSS_SELECTOR, ".quiz-export").click()
    wait(b).until(lambda d: path.is_file() and path.stat().st_size > 0)
    again = progress.parse(path.read_text(encoding="utf-8"))
    assert {a.key for a in cli.answers} <= {a.key for a in again.answers}
    assert [e.score for e in again.exams] == [520]


# --- lessons ---------------------------------------------------------------------------------------------------
def test_each_lesson_page_has_a_working_quiz_sharing_progress(fresh, site_url, bank, site):
    nbs = sitegen.notebooks()
    assert nbs, "notebooks/ has no lesson: the course site needs its lessons"
    b = fresh
    qs = by_id(bank)
    for nb in nbs:
        if not nb.quiz:
            continue
        b.get(site_url + nb.page)
        wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
        root = b.find_element(By.CSS_SELECTOR, ".course-lesson-quiz .quiz-app")
        assert [c.get_attribute("data-qid") for c in root.find_elements(By.CSS_SELECTOR, ".quiz-q")] == nb.quiz
        more = root.find_element(By.CSS_SELECTOR, ".quiz-more a").get_attribute("href")
        assert more.endswith(f"quiz/index.html#lesson={nb.path.stem}")
    # answer the first question of lesson 1 in the lesson; the practice page knows it
    nb = next(n for n in nbs if n.quiz)
    b.get(site_url + nb.page)
    wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
    c = b.find_element(By.ID, f"q-{nb.quiz[0]}")
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", c)
    answer(c, qs[nb.quiz[0]], right=True)
    assert "Correct" in check(b, c)
    screenshot(b, "site-lesson-quiz.png")
    open_quiz(b, site_url + f"quiz/index.html#lesson={nb.path.stem}")
    assert score_of(b) == (1, 1)


def test_lesson_shows_a_notebooks_stored_output_and_folds_long_ones(browser, site_url):
    nbs = sitegen.notebooks()
    assert nbs, "notebooks/ has no lesson: the course site needs its lessons"
    for nb in nbs:
        expected = _first_stored_output(nb.path)
        if expected:
            break
    else:
        pytest.fail("no notebook has a stored text output")
    browser.set_window_size(1366, 900)
    browser.get(site_url + f"lessons/{nb.path.stem}.html")
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-OutputArea-output")))
    outputs = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))
    assert expected in " ".join(outputs.split()), f"{expected!r} not on the page of {nb.path.name}"
    link = browser.find_element(By.CSS_SELECTOR, f'a[href="{nb.path.name}"][download]')
    assert link.is_displayed() or link.get_attribute("href").endswith(".ipynb")
    screenshot(browser, "site-lesson.png")
    folds = []
    for nb in nbs:
        browser.get(site_url + nb.page)
        folds = browser.find_elements(By.CSS_SELECTOR, "details.course-fold")
        if folds:
            break
    assert folds, "no lesson has a long output to fold"
    fold = folds[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", fold)
    assert fold.get_attribute("open") is not None
    fold.find_element(By.TAG_NAME, "summary").click()
    assert fold.get_attribute("open") is None


def _first_stored_output(path: Path) -> str | None:
    """A line of text from the first stream or text/plain output stored in the notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain")
            if isinstance(text, list):
                text = "".join(text)
            for line in (text or "").splitlines():
                line = " ".join(line.split())
                if len(line) >= 12 and "<" not in line and "\x1b" not in line and not line.startswith("Quiz:"):
                    return line
    return None


# --- the exam ------------------------------------------------------------------------------------------------------
def test_exam_by_keyboard_with_flags_reload_confirmation_and_result(fresh, site_url, site, bank):
    b = fresh
    qs = by_id(bank)
    plan = bank["exam"]
    open_quiz(b, site_url + "quiz/exam.html")
    size = plan["sizes"][0]
    n = size["n"]
    sel = b.find_element(By.CSS_SELECTOR, "select.quiz-exam-size")
    sel.send_keys(Keys.HOME)  # the first (shortest) exam, chosen with the keyboard
    assert Select(sel).first_selected_option.get_attribute("value") == str(n)
    b.find_element(By.CSS_SELECTOR, ".quiz-start").send_keys(Keys.ENTER)
    wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-navigator")))
    nav = b.find_elements(By.CSS_SELECTOR, ".quiz-navigator__q")
    assert len(nav) == n and all(x.tag_name == "button" for x in nav)
    assert len(cards(b)) == 1
    # the draw keeps the quotas given by quizzes.exam
    ids = json.loads(b.execute_script("return localStorage.getItem(CourseQuiz.runKey)"))["ids"]
    assert len(set(ids)) == n and set(ids) <= set(plan["pool"])
    counts: dict[str, int] = {}
    for qid in ids:
        counts[plan["group"][qid]] = counts.get(plan["group"][qid], 0) + 1
    assert counts == size["quotas"]
    # no area and no objective shown during the exam
    areas = [a["title"] for a in bank["areas"].values()] + list(bank["objectives"])
    # what the exam itself shows, without the question's own words (a prompt may name an objective:
    # "which MTAs does objective 211.1 expect you to be aware of?")
    page = b.execute_script(
        "var app = document.querySelector('.quiz-app').cloneNode(true);"
        "app.querySelectorAll('.quiz-q__prompt, .quiz-choice__text, .quiz-choice__why').forEach("
        "function (n) { n.remove(); }); return app.textContent;")
    shown = [a for a in areas if a in page]
    assert not shown, f"the exam shows a question's area or objective: {shown}"
    # answer all but the last two by keyboard (all rightly), flag question 2
    for i in range(n - 2):
        c = cards(b)[0]
        answer(c, qs[c.get_attribute("data-qid")], right=True, keyboard=True)
        if i == 1:
            b.find_element(By.CSS_SELECTOR, ".quiz-flag").send_keys(Keys.ENTER)
            assert b.find_element(By.CSS_SELECTOR, ".quiz-flag").get_attribute("aria-pressed") == "true"
        b.find_element(By.CSS_SELECTOR, ".quiz-next").send_keys(Keys.ENTER)
    counter = b.find_element(By.CSS_SELECTOR, ".quiz-counter")
    assert counter.text == f"Answered {n - 2} of {n} · flagged 1"
    assert "is-flagged" in nav[1].get_attribute("class") and "flagged" in nav[1].get_attribute("aria-label")
    assert "is-answered" in nav[0].get_attribute("class")
    assert "not answered" in b.find_elements(By.CSS_SELECTOR, ".quiz-navigator__q")[n - 1].get_attribute("aria-label")
    screenshot(b, "site-exam-running.png")
    # a reload (or a crash) resumes the exam, answers and flags kept
    b.refresh()
    wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-resumed")))
    assert b.find_element(By.CSS_SELECTOR, ".quiz-counter").text == f"Answered {n - 2} of {n} · flagged 1"
    # the navigator goes to a question
    b.find_elements(By.CSS_SELECTOR, ".quiz-navigator__q")[0].send_keys(Keys.ENTER)
    assert cards(b)[0].get_attribute("data-qid") == ids[0]
    # hand-in asks first and names the unanswered questions
    b.find_element(By.CSS_SELECTOR, ".quiz-handin").send_keys(Keys.ENTER)
    confirm = b.find_element(By.CSS_SELECTOR, ".quiz-confirm")
    assert confirm.is_displayed()
    assert f"Not answered: questions {n - 1}, {n}." in confirm.text and "Flagged for review: 2." in confirm.text
    b.find_element(By.CSS_SELECTOR, ".quiz-confirm__no").send_keys(Keys.ENTER)
    assert not confirm.is_displayed()
    b.find_element(By.CSS_SELECTOR, ".quiz-handin").send_keys(Keys.ENTER)
    b.find_element(By.CSS_SELECTOR, ".quiz-confirm__yes").send_keys(Keys.ENTER)
    title = wait(b).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".quiz-result__title")))
    right = n - 2
    assert f"Your score: {size['scaled'][right]} ({'passed' if size['passed'][right] else 'not passed'})" in title.text
    assert b.switch_to.active_element == title
    # the score is visible, not under the sticky header
    top = b.execute_script("return arguments[0].getBoundingClientRect().top", title)
    header = b.execute_script("return document.querySelector('.md-header').getBoundingClientRect().bottom")
    assert top >= header, (top, header)
    assert f"{right} of {n} right" in b.find_element(By.CSS_SELECTOR, ".quiz-result").text
    assert b.find_elements(By.CSS_SELECTOR, ".quiz-weakest li"), "the weakest objectives are named"
    missed = b.find_elements(By.CSS_SELECTOR, ".quiz-missed__item")
    assert [m.get_attribute("data-qid") for m in missed] == ids[-2:]
    for m in missed:
        hrefs = [a.get_attribute("href") for a in m.find_elements(By.CSS_SELECTOR, ".quiz-refs a")]
        assert len(hrefs) == 2 and all(anchor_resolves(site, b.current_url, h) for h in hrefs), hrefs
    screenshot(b, "site-exam-result.png")
    # follow one link: the browser lands on the section
    first = missed[0].find_element(By.CSS_SELECTOR, ".quiz-link--lesson")
    href = first.get_attribute("href")
    b.get(href)
    anchor = href.split("#", 1)[1]
    assert b.find_element(By.ID, anchor).is_displayed()
    # the past exam is listed, with a trend, and can be reviewed
    open_quiz(b, site_url + "quiz/exam.html")
    assert b.find_element(By.CSS_SELECTOR, ".quiz-trend svg").get_attribute("aria-label")
    b.find_element(By.CSS_SELECTOR, ".quiz-review").send_keys(Keys.ENTER)
    title = wait(b).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".quiz-result__title")))
    assert str(size["scaled"][right]) in title.text
    assert len(b.find_elements(By.CSS_SELECTOR, ".quiz-all .quiz-q")) == n


def test_practice_by_keyboard_alone(fresh, site_url, bank):
    """Tab to the answer, Space to choose (or type), Tab to Check, Enter: the feedback gets the focus; Tab on to Next."""
    b = fresh
    open_quiz(b, site_url + "quiz/index.html")
    qs = by_id(bank)
    b.find_element(By.CSS_SELECTOR, "select.quiz-pagesize").send_keys(Keys.HOME)  # focus in the toolbar
    actions = ActionChains(b)

    def tab_to(css: str, limit: int = 40):
        for _ in range(limit):
            actions.send_keys(Keys.TAB).perform()
            if b.execute_script("return document.activeElement.matches(arguments[0])", css):
                return b.switch_to.active_element
        pytest.fail(f"Tab never reached {css}")

    c = cards(b)[0]
    q = qs[c.get_attribute("data-qid")]
    tab_to(".quiz-q input")
    if q["type"] == "fill":
        actions.send_keys(q["answers"][0], Keys.ENTER).perform()
    else:
        for key in right_keys(q):  # the keyboard reaches each right choice: arrows in a radio group, Tab otherwise
            box = c.find_element(By.CSS_SELECTOR, f".quiz-choice[data-key='{key}'] input")
            if q["type"] == "single":
                for _ in range(len(q["choices"])):
                    if b.switch_to.active_element == box:
                        break
                    actions.send_keys(Keys.ARROW_DOWN).perform()
                if not box.is_selected():  # Tab lands on the first radio without choosing it
                    actions.send_keys(Keys.SPACE).perform()
                assert box.is_selected()
            else:
                while b.switch_to.active_element != box:
                    actions.send_keys(Keys.TAB).perform()
                actions.send_keys(Keys.SPACE).perform()
        tab_to(".quiz-check")
        actions.send_keys(Keys.ENTER).perform()
    fb = c.find_element(By.CSS_SELECTOR, ".quiz-feedback")
    wait(b).until(lambda d: "Correct" in fb.text)
    assert b.switch_to.active_element == fb
    tab_to(".quiz-next")
    actions.send_keys(Keys.ENTER).perform()
    assert cards(b)[0].get_attribute("data-qid") != q["id"]
    assert score_of(b) == (1, 1)


def test_visible_focus(fresh, site_url):
    b = fresh
    open_quiz(b, site_url + "quiz/index.html")
    box = b.find_element(By.CSS_SELECTOR, ".quiz-q input")
    box.send_keys(Keys.SHIFT)  # focus by keyboard
    styles = b.execute_script("""
        var el = document.activeElement, row = el.closest('.quiz-choice') || el;
        var s = getComputedStyle(el), r = getComputedStyle(row);
        return [s.outlineStyle, s.outlineWidth, r.outlineStyle, r.outlineWidth];""")
    assert any(v not in ("none", "0px") for v in styles[::2]) and any(w != "0px" for w in styles[1::2]), styles


# --- for everyone ----------------------------------------------------------------------------------------------
def _pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html"))


def _axe(driver) -> list[dict]:
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    # axe judges the page as it has settled: a transition still running (Material's header swaps the site
    # title for the page title with an opacity transition when the page scrolls) reads as low contrast for a
    # few frames. Wait for the finite animations to end (at most 3 s), then run axe.
    return driver.execute_async_script("""
        var done = arguments[0], until = Date.now() + 3000;
        function running() {
          return document.getAnimations().filter(a => a.playState === 'running' &&
            isFinite(a.effect.getComputedTiming().endTime)).length;
        }
        (function settle() {
          if (running() && Date.now() < until) { return setTimeout(settle, 50); }
          axe.run(document, {resultTypes: ['violations']}).then(function (r) {
            done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
              .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})));
          });
        })();""")


@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_axe_finds_no_serious_violation(browser, site_url, site, scheme):
    """axe-core 4 on every page, in light and in dark mode, also with a question answered and an exam result."""
    b = browser
    b.set_window_size(1366, 900)
    b.get(site_url + "index.html")
    b.execute_script("window.localStorage.clear();"
                     f"localStorage.setItem('/.__palette', JSON.stringify({{index: {int(scheme == 'slate')}, "
                     f"color: {{scheme: '{scheme}'}}}}))")
    found = {}
    for page in _pages(site):
        b.get(site_url + page)
        wait(b).until(lambda d: d.execute_script("return document.readyState") == "complete")
        assert b.find_element(By.TAG_NAME, "body").get_attribute("data-md-color-scheme") == scheme
        if b.find_elements(By.CSS_SELECTOR, ".quiz-app"):
            wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
        if b.find_elements(By.CSS_SELECTOR, "figure.course-diagram"):
            wait(b).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "figure.course-diagram:not([data-rendered])"))
        if page == "quiz/index.html":  # a checked question: feedback, marks and links
            c = cards(b)[0]
            c.find_element(By.CSS_SELECTOR, "input").send_keys(Keys.SPACE if c.get_attribute("data-type") != "fill" else "x")
            check(b, c)
        violations = _axe(b)
        if violations:
            found[page] = violations
    # the exam, running and handed in
    open_quiz(b, site_url + "quiz/exam.html")
    b.find_element(By.CSS_SELECTOR, ".quiz-start").click()
    found.update({"exam running": v for v in [_axe(b)] if v})
    b.find_element(By.CSS_SELECTOR, ".quiz-handin").click()
    b.find_element(By.CSS_SELECTOR, ".quiz-confirm__yes").click()
    wait(b).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".quiz-result__title")))
    b.execute_script("document.querySelector('.quiz-all').open = true")
    found.update({"exam result": v for v in [_axe(b)] if v})
    screenshot(b, f"site-exam-result-{scheme}.png")
    b.execute_script("window.localStorage.clear()")
    assert not found, json.dumps(found, indent=1)[:3000]


def test_no_page_is_wider_than_a_phone(browser, site_url, site):
    b = browser
    b.set_window_size(390, 844)
    b.get(site_url + "index.html")
    b.execute_script("window.localStorage.clear()")
    wide = {}
    for page in _pages(site):
        b.get(site_url + page)
        if b.find_elements(By.CSS_SELECTOR, ".quiz-app"):
            wait(b).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
        if b.find_elements(By.CSS_SELECTOR, "figure.course-diagram"):
            wait(b).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "figure.course-diagram:not([data-rendered])"))
        w = b.execute_script("return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
        inner = b.execute_script("return window.innerWidth")
        if w > inner:
            wide[page] = w
    open_quiz(b, site_url + "quiz/exam.html")
    b.find_element(By.CSS_SELECTOR, ".quiz-start").click()
    w = b.execute_script("return document.documentElement.scrollWidth")
    if w > b.execute_script("return window.innerWidth"):
        wide["exam running"] = w
    screenshot(b, "site-phone-exam.png")
    b.execute_script("window.localStorage.clear()")
    b.set_window_size(1366, 900)
    assert not wide, wide


def test_copy_buttons_copy_only_the_command(browser, site_url):
    """What Material's copy button takes (the block's text while data-md-copying is set) has no prompt or output."""
    browser.set_window_size(1366, 900)
    browser.get(site_url + "index.html")
    copied = browser.execute_script("""
        return [...document.querySelectorAll('.highlight code')].map(function (code) {
          var shown = code.innerText;
          code.setAttribute('data-md-copying', ''); var t = code.innerText; code.removeAttribute('data-md-copying');
          return [shown, t];
        });""")
    by_shown = {shown.strip(): text.strip() for shown, text in copied}
    assert by_shown["$ make lab"] == "make lab"
    clone = next(text for shown, text in by_shown.items() if shown.startswith("$ git clone"))
    assert re.fullmatch(r"git clone \S+\ncd postfix-tls-lab\nmake lab", clone), clone


def test_diagrams_render_as_svg_from_files(browser, tmp_path, site):
    """Opened from disk (file://), without a server or the internet: Mermaid draws every diagram as SVG."""
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    import diagrams

    browser.set_window_size(1366, 900)
    for page, expected in [("lessons/pictures.html", [d.id for d in diagrams.diagrams()])] + [
            (f"lessons/{stem}.html", [did for _s, did in places]) for stem, places in diagrams.LESSON_PLACES.items()]:
        browser.get((copy / page).as_uri())
        wait(browser, 30).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "figure.course-diagram:not([data-rendered])"))
        for did in expected:
            fig = browser.find_element(By.ID, f"diagram-{did}")
            assert fig.get_attribute("data-rendered") == "true", (page, did, fig.get_attribute("data-error"))
            svg = fig.find_element(By.CSS_SELECTOR, ".course-diagram__svg svg")
            assert svg.get_attribute("role") == "img" and svg.get_attribute("aria-describedby") == f"diagram-{did}-words"
            assert svg.size["height"] > 50 and svg.size["width"] > 100
            assert browser.find_element(By.ID, f"diagram-{did}-words").get_attribute("textContent").strip()
    browser.get((copy / "lessons" / "pictures.html").as_uri())
    wait(browser, 30).until(lambda d: not d.find_elements(By.CSS_SELECTOR, "figure.course-diagram:not([data-rendered])"))
    browser.execute_script("document.getElementById('smtp-with-starttls').scrollIntoView()")
    screenshot(browser, "site-diagrams.png")


def test_search_finds_a_parameter(browser, site_url):
    browser.set_window_size(1366, 900)
    browser.get(site_url + "index.html")
    box = wait(browser).until(EC.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    box.click()
    box.send_keys("smtpd_tls_security_level")
    try:
        wait(browser, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item"))
    except TimeoutException:
        pytest.fail("search gave no result: " + browser.find_element(By.CSS_SELECTOR, ".md-search-result__meta").text)
    items = browser.find_elements(By.CSS_SELECTOR, ".md-search-result__item")
    assert any("postconf" in i.text.lower() or "tls" in i.text.lower() for i in items)
    screenshot(browser, "site-search.png")


def test_dark_mode_toggle(browser, site_url):
    browser.set_window_size(1366, 900)
    browser.get(site_url + "config.html")
    before = browser.find_element(By.TAG_NAME, "body").get_attribute("data-md-color-scheme")
    toggle = browser.find_element(By.CSS_SELECTOR, "form[data-md-component='palette'] label:not([hidden])")
    toggle.click()
    wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-md-color-scheme") != before)
    # code annotations are rendered (the annotated main.cf)
    assert browser.find_elements(By.CSS_SELECTOR, ".md-annotation")
    screenshot(browser, "site-dark-config.png")
    browser.execute_script("window.localStorage.clear()")


def test_site_works_from_files(browser, tmp_path, site):
    """Opened from disk (file://), without a server: the quiz loads its bank and links through <script>s."""
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    browser.get((copy / "quiz" / "index.html").as_uri())
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
    assert cards(browser)
    assert browser.execute_script("return Object.keys(window.QUIZ_LINKS || {}).length") == \
        len(json.loads((site / "assets" / "quiz-bank.json").read_text(encoding="utf-8"))["questions"])
