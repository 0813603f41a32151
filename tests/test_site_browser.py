"""The course site in a real browser: Debian's chromium, headless, driven by Selenium.

The built site (built once, see tests/test_site.py) is served on 127.0.0.1 by http.server in a thread.
A learner answers quiz questions wrongly and then rightly, sees the feedback and the score change, finds
the progress kept after a reload, takes a short exam, reads a lesson's stored output, and searches.
Screenshots go to artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
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

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def site_url():
    site = built_site()[0]
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, monkeypatch_module):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed (scripts/setup.sh --test)")
    monkeypatch_module.setenv("SE_OFFLINE", "true")  # never let Selenium Manager look for downloads
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def bank():
    return json.loads((built_site()[0] / "assets" / "quiz-bank.json").read_text(encoding="utf-8"))


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


def score_of(driver) -> tuple[int, int]:
    el = driver.find_element(By.CSS_SELECTOR, ".quiz-score")
    return int(el.get_attribute("data-correct")), int(el.get_attribute("data-answered"))


def card(driver, qid: str):
    el = driver.find_element(By.ID, f"q-{qid}")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    return el


def choose(card_el, keys: list[str]):
    for li in card_el.find_elements(By.CSS_SELECTOR, ".quiz-choice"):
        box = li.find_element(By.TAG_NAME, "input")
        if (li.get_attribute("data-key") in keys) != box.is_selected():
            li.find_element(By.TAG_NAME, "label").click()


def check(driver, card_el) -> str:
    card_el.find_element(By.CSS_SELECTOR, ".quiz-check").click()
    fb = card_el.find_element(By.CSS_SELECTOR, ".quiz-feedback")
    wait(driver).until(lambda d: fb.is_displayed() and fb.text.strip())
    return fb.text


def test_practice_wrong_then_right_score_and_progress(browser, site_url, bank):
    open_quiz(browser, site_url + "quiz/index.html")
    assert score_of(browser) == (0, 0)
    single = next(q for q in bank["questions"] if q["type"] == "single")
    right = [c["key"] for c in single["choices"] if c["correct"]]
    wrong = [next(c["key"] for c in single["choices"] if not c["correct"])]

    c = card(browser, single["id"])
    choose(c, wrong)
    text = check(browser, c)
    assert "Incorrect" in text
    assert "The answer: " + right[0] in text
    assert "quiz-q--wrong" in c.get_attribute("class")
    assert score_of(browser) == (0, 1)
    if single["explanation_html"]:
        assert c.find_element(By.CSS_SELECTOR, ".quiz-explanation").is_displayed()

    assert not c.find_element(By.CSS_SELECTOR, ".quiz-check").is_displayed()
    c.find_element(By.CSS_SELECTOR, ".quiz-retry").click()
    assert not c.find_element(By.CSS_SELECTOR, ".quiz-retry").is_displayed()
    choose(c, right)
    text = check(browser, c)
    assert "Correct" in text and "Incorrect" not in text
    assert score_of(browser) == (1, 1)

    # Fill-in: exact after trimming, case-sensitive (unless the question says otherwise).
    fill = next((q for q in bank["questions"] if q["type"] == "fill" and q["case_sensitive"]
                 and q["answers"][0].swapcase() not in q["answers"] and q["answers"][0].swapcase() != q["answers"][0]),
                None)
    if fill is not None:
        c = card(browser, fill["id"])
        box = c.find_element(By.CSS_SELECTOR, "input.quiz-fill")
        box.send_keys(fill["answers"][0].swapcase())
        assert "Incorrect" in check(browser, c)
        assert score_of(browser) == (1, 2)
        c.find_element(By.CSS_SELECTOR, ".quiz-retry").click()
        box.send_keys("  " + fill["answers"][0] + " ", Keys.ENTER)  # Enter checks, like the button
        wait(browser).until(lambda d: "Correct" in c.find_element(By.CSS_SELECTOR, ".quiz-feedback").text)
        assert score_of(browser) == (2, 2)

    # Multiple choice: all or nothing.
    multi = next((q for q in bank["questions"] if q["type"] == "multiple"), None)
    if multi is not None:
        c = card(browser, multi["id"])
        assert "(Choose " in c.find_element(By.CSS_SELECTOR, ".quiz-q__prompt").text
        keys = [ch["key"] for ch in multi["choices"] if ch["correct"]]
        choose(c, keys[:1])
        assert "Incorrect" in check(browser, c)

    browser.execute_script("document.querySelector('.quiz-score').scrollIntoView({block: 'start'}); window.scrollBy(0, -80)")
    screenshot(browser, "site-quiz-practice.png")

    # Progress is kept in the browser: a reload shows the same score and feedback.
    expected = score_of(browser)
    open_quiz(browser, site_url + "quiz/index.html")
    assert score_of(browser) == expected
    assert "Correct" in card(browser, single["id"]).find_element(By.CSS_SELECTOR, ".quiz-feedback").text

    # Per-objective practice: the filter keeps only that objective's questions.
    obj = next(iter(bank["objectives"]))
    Select(browser.find_element(By.CSS_SELECTOR, "select.quiz-filter")).select_by_value(f"objective={obj}")
    shown = browser.find_elements(By.CSS_SELECTOR, ".quiz-q")
    assert len(shown) == sum(obj in q["objectives"] for q in bank["questions"])


def test_exam_simulation_scores_per_objective(browser, site_url, bank):
    open_quiz(browser, site_url + "quiz/exam.html")
    size = Select(browser.find_element(By.CSS_SELECTOR, "select.quiz-exam-size"))
    n = int(size.options[0].get_attribute("value"))
    size.select_by_index(0)
    browser.find_element(By.CSS_SELECTOR, ".quiz-start").click()
    cards = browser.find_elements(By.CSS_SELECTOR, ".quiz-q")
    assert len(cards) == n
    assert len({c.get_attribute("data-qid") for c in cards}) == n  # no question twice
    assert "Time left" in browser.find_element(By.CSS_SELECTOR, ".quiz-timer").text
    # answer the first question rightly, leave the rest
    first = next(q for q in bank["questions"] if q["id"] == cards[0].get_attribute("data-qid"))
    if first["type"] == "fill":
        cards[0].find_element(By.CSS_SELECTOR, "input.quiz-fill").send_keys(first["answers"][0])
    else:
        choose(cards[0], [c["key"] for c in first["choices"] if c["correct"]])
    browser.find_element(By.CSS_SELECTOR, ".quiz-handin").click()
    result = wait(browser).until(EC.visibility_of_element_located((By.CSS_SELECTOR, ".quiz-result")))
    assert f"Your score: 1 / {n}" in result.text
    table = result.find_element(By.CSS_SELECTOR, ".quiz-table").text
    assert any(oid in table for oid in bank["objectives"])
    assert len(browser.find_elements(By.CSS_SELECTOR, ".quiz-feedback")) == n  # every answer explained
    assert not any(b.is_displayed() for b in browser.find_elements(By.CSS_SELECTOR, ".quiz-check"))
    screenshot(browser, "site-quiz-exam.png")


def test_lesson_shows_a_notebooks_stored_output(browser, site_url):
    nbs = sitegen.notebooks()
    if not nbs:
        pytest.skip("no notebooks in notebooks/ yet")
    for nb in nbs:
        expected = _first_stored_output(nb.path)
        if expected:
            break
    else:
        pytest.fail("no notebook has a stored text output")
    browser.get(site_url + f"lessons/{nb.path.stem}.html")
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".jp-OutputArea-output")))
    outputs = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))
    assert expected in " ".join(outputs.split()), f"{expected!r} not on the page of {nb.path.name}"
    link = browser.find_element(By.CSS_SELECTOR, f'a[href="{nb.path.name}"][download]')
    assert link.is_displayed() or link.get_attribute("href").endswith(".ipynb")
    screenshot(browser, "site-lesson.png")


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
                if len(line) >= 12 and "<" not in line and "\x1b" not in line:
                    return line
    return None


def test_search_finds_a_parameter(browser, site_url):
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
    browser.get(site_url + "config.html")
    before = browser.find_element(By.TAG_NAME, "body").get_attribute("data-md-color-scheme")
    toggle = browser.find_element(By.CSS_SELECTOR, "form[data-md-component='palette'] label:not([hidden])")
    toggle.click()
    wait(browser).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-md-color-scheme") != before)
    # code annotations are rendered (the annotated main.cf)
    assert browser.find_elements(By.CSS_SELECTOR, ".md-annotation")
    screenshot(browser, "site-dark-config.png")


def test_site_works_from_files(browser, tmp_path):
    """Opened from disk (file://), without a server: the quiz loads its bank through a <script>."""
    site = tmp_path / "site"
    shutil.copytree(built_site()[0], site)
    browser.get((site / "quiz" / "index.html").as_uri())
    wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".quiz-app[data-ready='true']")))
    assert browser.find_elements(By.CSS_SELECTOR, ".quiz-q")
