"""The course site: `mkdocs build --strict` passes, and what it generates agrees with its sources.

The site states facts that other parts own (the question bank, `postconf -d`, the simulator's replies, the
labsim commands, the notebooks); these tests check that the built pages say what those sources say now.
The build runs once per test session (``built_site()``), shared with tests/test_site_browser.py.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from html import unescape
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "gen_site"))
import sitegen  # noqa: E402

pytestmark = pytest.mark.slow


@lru_cache(maxsize=1)
def built_site() -> tuple[Path, str, float]:
    """Build the site once into a temporary directory: (site dir, build output, seconds)."""
    return build(Path(tempfile.mkdtemp(prefix="course-site-")))


def build(out: Path, **env_extra: str) -> tuple[Path, str, float]:
    atexit.register(shutil.rmtree, out, True)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", **env_extra}
    env.pop("MAIL_CONFIG", None)  # postconf -d must read the packaged defaults
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    took = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    return out / "", log, took


@pytest.fixture(scope="module")
def site() -> Path:
    return built_site()[0]


def page_text(path: Path) -> str:
    """The visible text of a built page, roughly: tags dropped, entities decoded."""
    html = path.read_text(encoding="utf-8")
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"</?(span|code|a|strong|em|b|i|kbd|abbr)\b[^>]*>", "", html)  # inline: no word break
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_build_is_strict_and_warning_free():
    _site, log, took = built_site()
    assert "WARNING" not in log, log
    assert took < 90, f"the site build took {took:.0f} s"


def test_every_nav_page_is_built(site: Path):
    for page in ("index.html", "objectives.html", "lessons/index.html", "lab/index.html", "lab/commands.html",
                 "lab/troubleshooting.html", "config.html", "quiz/index.html", "quiz/exam.html",
                 "reference/postconf.html", "reference/smtp-replies.html", "reference/glossary.html",
                 "instructor.html", "search/search_index.js"):
        assert (site / page).is_file(), page


def test_each_page_has_one_title(site: Path):
    """A stray "# word" at the start of a line in Markdown becomes a second <h1> (and a bogus TOC entry)."""
    for page in site.rglob("*.html"):
        if page.name == "404.html":
            continue
        n = len(re.findall(r"<h1\b", page.read_text(encoding="utf-8")))
        assert n == 1, f"{page.relative_to(site)} has {n} <h1>"


def test_home_says_how_to_start(site: Path):
    text = page_text(site / "index.html")
    assert "make lab" in text and "make test" in text
    assert "202-450" in text and "211.1" in text


def test_nothing_is_loaded_from_the_internet(site: Path):
    """Offline: no script, stylesheet, font or image from another host (links to read are fine)."""
    bad = []
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for m in re.finditer(r"<(script|link|img|iframe|source)\b[^>]*?\b(src|href)=[\"']?((?:https?:)?//[^\"' >]+)", html):
            tag, _attr, url = m.groups()
            if tag == "link" and re.search(r'rel="?(canonical|alternate)', m.group(0)):
                continue
            bad.append(f"{page.relative_to(site)}: <{tag}> {url}")
        if re.search(r"import\(\s*[\"']https?://", html):
            bad.append(f"{page.relative_to(site)}: a script imports a module from the internet")
        if "fonts.googleapis" in html or "fonts.gstatic" in html:
            bad.append(f"{page.relative_to(site)}: Google fonts")
    assert not bad, "\n".join(sorted(set(bad))[:20])


def test_postconf_reference_matches_live_postconf(site: Path):
    """Every default on the reference page is what `postconf -d` says on this machine, now."""
    if not shutil.which("postconf") and not Path("/usr/sbin/postconf").exists():
        pytest.skip("postconf is not installed")
    live = sitegen.postconf_defaults()
    assert not live.unknown
    html = (site / "reference" / "postconf.html").read_text(encoding="utf-8")
    assert f"Postfix {live.version}" in unescape(html)
    rows = {}
    for m in re.finditer(r'<tr>\s*<td><span id="([a-z_A-Z]+)"></span><code>\1</code></td>\s*<td>(.*?)</td>', html, re.S):
        cell = unescape(re.sub(r"<[^>]+>", "", m.group(2))).strip()
        rows[m.group(1)] = "" if cell == "(empty)" else cell
    assert set(rows) == {name for _g, name, _d in sitegen.TLS_PARAMETERS}
    for name, value in live.values.items():
        assert rows[name] == value, f"{name}: page says {rows[name]!r}, postconf -d says {value!r}"
    # the facts the lessons lean on
    assert rows["smtpd_tls_security_level"] == ""
    assert rows["smtpd_tls_key_file"] == "$smtpd_tls_cert_file"


def test_reply_table_comes_from_the_simulator(site: Path):
    from labsim.sim import replies

    text = page_text(site / "reference" / "smtp-replies.html")
    for name in ("READY_TLS", "MUST_STARTTLS", "TLS_ALREADY_ACTIVE", "NOT_IMPLEMENTED", "TLS_NOT_AVAILABLE",
                 "SYNTAX_STARTTLS", "UNKNOWN_COMMAND", "BYE"):
        assert getattr(replies, name) in text, name


def test_labsim_commands_are_listed(site: Path):
    text = page_text(site / "lab" / "commands.html")
    for name, _help, _opts in sitegen.labsim_commands():
        assert f"labsim {name}" in text


def test_quiz_bank_json_is_the_bank(site: Path):
    data = json.loads((site / "assets" / "quiz-bank.json").read_text(encoding="utf-8"))
    js = (site / "assets" / "quiz-bank.js").read_text(encoding="utf-8")
    assert js.startswith("window.QUIZ_BANK = {")
    from quizzes import bank as qbank

    assert any(qbank.bank_dir().glob("*.yaml")), "the bank is missing"
    exported = json.loads(qbank.to_json())
    assert "sample" not in data  # no stand-in bank: the site's questions are the bank's
    assert [q["id"] for q in data["questions"]] == [q["id"] for q in exported["questions"]]
    by_id = {q["id"]: q for q in exported["questions"]}
    for q in data["questions"]:
        src = by_id[q["id"]]
        for key in ("type", "objectives", "area", "answers", "case_sensitive", "choose"):
            assert q[key] == src[key], (q["id"], key)
        assert [c["correct"] for c in q["choices"]] == [c["correct"] for c in src["choices"]]
        assert q["prompt_html"]
    assert set(data["objectives"]) == set(exported["objectives"])
    assert set(data["areas"]) == set(exported["areas"])


def test_an_empty_bank_fails_the_build_with_what_to_do(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QUIZZES_BANK", str(tmp_path))
    with pytest.raises(sitegen.SiteDataError, match=r"no question files .*git checkout -- quizzes/bank"):
        sitegen.load_site_bank()


def test_objectives_map_counts_come_from_the_bank(site: Path):
    data = json.loads((site / "assets" / "quiz-bank.json").read_text(encoding="utf-8"))
    qs = data["questions"]
    text = page_text(site / "objectives.html")
    assert f"The bank holds {len(qs)} questions" in text
    for oid in data["objectives"]:
        n = sum(oid in q["objectives"] for q in qs)
        single = sum(oid in q["objectives"] and q["type"] == "single" for q in qs)
        assert f"{n} ({single} single," in text, oid
    for aid, area in data["areas"].items():
        n = sum(q["area"] == aid for q in qs)
        assert re.search(rf"\({re.escape(aid)}\) {area['weight']} {n}\b", text), aid


def test_text_to_html_escapes_and_marks_code():
    assert sitegen.text_to_html("Use `postconf -e` for <user@domain>") == \
        "<p>Use <code>postconf -e</code> for &lt;user@domain&gt;</p>"
    assert "<pre><code>a &lt; b</code></pre>" in sitegen.text_to_html("x\n```\na < b\n```\n")


def test_every_notebook_is_a_lesson_page_with_a_download(site: Path):
    nbs = sitegen.notebooks()
    lessons = page_text(site / "lessons" / "index.html")
    assert nbs, "no lesson notebook found: the site would show an empty lessons page"
    for nb in nbs:
        page = site / "lessons" / (nb.path.stem + ".html")
        assert page.is_file(), page
        assert (site / "lessons" / nb.path.name).read_bytes() == nb.path.read_bytes()
        html = page.read_text(encoding="utf-8")
        assert f'href="{nb.path.name}" download' in html
        assert nb.title in lessons
    assert not list((ROOT / "docs").rglob("*.ipynb")), "notebooks are brought in at build time, not copied"


def test_a_notebook_becomes_a_lesson_page(tmp_path: Path):
    """The notebook pipeline, with a sample notebook, whether or not notebooks/ has any yet."""
    nbformat = pytest.importorskip("nbformat")
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["course"] = {"objectives": ["lesson-1"], "areas": ["smtp-security"]}
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 Sample: STARTTLS by hand\n\nSome text."),
                nbformat.v4.new_code_cell("print(reply)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="stored output 220 2.0.0 Ready\n")]
    nbformat.write(nb, nbs / "01-sample.ipynb")
    site, log, _took = build(tmp_path / "site", COURSE_SITE_NOTEBOOKS=str(nbs))
    assert "WARNING" not in log, log
    html = (site / "lessons" / "01-sample.html").read_text(encoding="utf-8")
    assert "stored output 220 2.0.0 Ready" in html  # the stored output, not re-executed
    assert 'href="01-sample.ipynb" download' in html
    assert (site / "lessons" / "01-sample.ipynb").read_bytes() == (nbs / "01-sample.ipynb").read_bytes()
    assert not re.search(r"(src=[\"']?https?://|import\(\s*[\"']https?://)", html), "CDN script left in a lesson"
    assert "01 Sample: STARTTLS by hand" in page_text(site / "lessons" / "index.html")
    objectives = (site / "objectives.html").read_text(encoding="utf-8")
    assert '<a href="lessons/01-sample.html">01 Sample: STARTTLS by hand</a>' in objectives


# --- issue 15: home, diagrams, lesson quizzes, exam data from Python, links that resolve ---------------------------
def _ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


def test_normalise_git_url():
    assert sitegen.normalise_git_url("git@github.com:o/n.git") == "https://github.com/o/n"
    assert sitegen.normalise_git_url("ssh://git@host.example/o/n.git") == "https://host.example/o/n"
    assert sitegen.normalise_git_url("https://user:pw@host.example/o/n.git/") == "https://host.example/o/n"
    with pytest.raises(sitegen.SiteDataError):
        sitegen.normalise_git_url("/srv/git/n.git")


def test_repo_url_from_prefers_env_then_origin_then_placeholder(tmp_path: Path):
    import subprocess

    assert sitegen.repo_url_from({"COURSE_REPO_URL": "https://h.example/o/n/"}, tmp_path, "P") == \
        ("https://h.example/o/n", "COURSE_REPO_URL")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert sitegen.repo_url_from({}, tmp_path, "P") == ("P", "placeholder")
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@h.example:o/n.git"], check=True)
    assert sitegen.repo_url_from({}, tmp_path, "P") == ("https://h.example/o/n", "git remote origin")
    subprocess.run(["git", "-C", str(tmp_path), "remote", "set-url", "origin", "/srv/git/n.git"], check=True)
    assert sitegen.repo_url_from({}, tmp_path, "P") == ("P", "placeholder")  # a local path links nowhere


def test_home_gives_the_repository_and_the_clone_line(site: Path):
    import yaml

    class _Env(yaml.SafeLoader):
        pass

    _Env.add_constructor("!ENV", lambda loader, node: loader.construct_sequence(node)[-1])
    _Env.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    cfg = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=_Env)
    url, _src = sitegen.repo_url_from(dict(os.environ), ROOT, cfg["repo_url"])
    html = (site / "index.html").read_text(encoding="utf-8")
    text = page_text(site / "index.html")
    assert f"git clone {url}" in text and "cd postfix-tls-lab" in text and "make lab" in text and "make test" in text
    assert f'href="{url}"' in html and 'class="md-source"' in html  # the repository link in the header
    assert "https://www.lpi.org/our-certifications/exam-202-objectives/" in html
    assert "Prerequisites" in text
    total = sum(nb.minutes for nb in sitegen.notebooks())
    assert total and f"{total} min" in text
    if "example.invalid" in url:  # the placeholder says what it is
        assert "built without the repository's address" in text


def test_diagrams_are_served_by_the_site_with_text_alternatives(site: Path):
    import diagrams

    assert (site / "assets" / "vendor" / "mermaid.min.js").stat().st_size > 1_000_000
    assert (ROOT / "docs" / "assets" / "vendor" / "mermaid.LICENSE").is_file()
    pics = (site / "lessons" / "pictures.html").read_text(encoding="utf-8")
    for d in diagrams.diagrams():
        assert f'id="diagram-{d.id}"' in pics and f'id="diagram-{d.id}-words"' in pics, d.id
        assert "sequenceDiagram" in d.source or "flowchart" in d.source
    assert "assets/vendor/mermaid.min.js" in pics and "assets/diagrams.js" in pics
    for stem, places in diagrams.LESSON_PLACES.items():
        html = (site / "lessons" / f"{stem}.html").read_text(encoding="utf-8")
        for _section, did in places:
            assert f'id="diagram-{did}"' in html, (stem, did)
        assert '<script src="../assets/vendor/mermaid.min.js">' in html
    # the replies in the pictures are the simulator's
    from labsim.sim import replies

    clear = next(d for d in diagrams.diagrams() if d.id == "smtp-in-the-clear").source
    assert replies.MAIL_OK in clear and replies.BYE in clear


def test_each_lesson_has_its_quiz_as_an_interactive_quiz(site: Path):
    for nb in sitegen.notebooks():
        html = (site / nb.page).read_text(encoding="utf-8")
        if not nb.quiz:
            continue
        m = re.search(r'<div class="quiz-app" data-mode="lesson" data-lesson="([^"]+)" data-ids="([^"]+)"', html)
        assert m, nb.page
        assert m.group(1) == nb.path.stem and m.group(2).split() == nb.quiz
        # the text form stays only for browsers without JavaScript
        visible = re.sub(r"<noscript>.*?</noscript>", "", html, flags=re.S)
        assert "Quiz: " not in re.sub(r'<div class="clipboard-copy-txt".*?</div>', "", visible, flags=re.S)
        # the notebook itself keeps its text form for Jupyter
        assert "Quiz: " in nb.path.read_text(encoding="utf-8")


def test_exam_data_comes_from_quizzes_exam():
    """The site's quotas are those of quizzes.exam.draw, for any seed; the scores those of score()."""
    import quizdata
    from quizzes import exam
    from quizzes.bank import load_bank

    bank = load_bank()
    plan = quizdata.exam_plan(bank)
    pool = set(plan["pool"])
    assert pool == set(exam.draw(bank, n=len(bank), seed=7))
    for size in plan["sizes"]:
        for seed in (0, 1, 2, 12345):
            drawn = exam.draw(bank, n=size["n"], seed=seed)
            counts: dict[str, int] = {}
            for qid in drawn:
                g = quizdata.group_of(bank.get(qid))
                counts[g] = counts.get(g, 0) + 1
            assert counts == size["quotas"], (size["n"], seed)
        assert sum(size["quotas"].values()) == size["n"]
        for k in (0, size["n"] // 2, size["n"]):
            ids = drawn
            sc = exam.score(bank, ids, {q: bank.get(q).canonical_answer for q in ids[:k]})
            assert size["scaled"][k] == sc["scaled"] and size["passed"][k] == sc["passed"]
    assert all(plan["group"][q] == quizdata.group_of(bank.get(q)) for q in pool)
    # the pass mark the site shows is the one score() applies
    for size in plan["sizes"]:
        assert size["passed"] == [v >= plan["scale"]["pass"] for v in size["scaled"]]
    assert plan["scale"]["min"] == exam.scale(0.0) and plan["scale"]["max"] == exam.scale(1.0)


def test_quiz_js_has_no_copy_of_the_exam_rules():
    js = (ROOT / "docs" / "assets" / "quiz.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", js, flags=re.S)
    for banned in ("READY_MARK", "weight", "0.8", "0.65", "500 ", ">= 500", "SECONDS_PER_QUESTION"):
        assert banned not in code, banned
    assert "size.scaled[right]" in code and "size.passed[right]" in code and "size.quotas" in code


def test_every_question_links_to_a_lesson_section_and_a_reference_row(site: Path):
    data = json.loads((site / "assets" / "quiz-bank.json").read_text(encoding="utf-8"))
    links = json.loads((site / "assets" / "quiz-links.json").read_text(encoding="utf-8"))
    assert set(links) == {q["id"] for q in data["questions"]}
    cache: dict[str, set[str]] = {}
    for qid, entry in links.items():
        assert set(entry) == {"lesson", "reference"}, qid
        for link in entry.values():
            path, _, anchor = link["href"].partition("#")
            ids = cache.setdefault(path, _ids((site / path).read_text(encoding="utf-8")))
            assert anchor in ids, (qid, link)
        assert entry["lesson"]["href"].startswith("lessons/0")
    # the lesson quiz questions point into their own lesson
    for stem, lesson in data["lessons"].items():
        for qid in lesson["quiz"]:
            assert links[qid]["lesson"]["href"].startswith(f"lessons/{stem}.html#"), qid


def test_a_broken_question_link_fails_the_build(tmp_path: Path, monkeypatch):
    """The build stops when a question has nothing to link to (here: a glossary and replies page without anchors)."""
    import quizdata

    data = {"questions": [{"id": "x-nothing", "prompt": "Zzz qqq?", "display_prompt": "Zzz qqq?", "choices": [],
                           "answers": ["zzz"], "explanation": "", "references": []}]}
    found, problems = quizdata.links(data, {"01-a": [{"id": "s", "title": "S", "text": "unrelated words"}]},
                                     {}, {"01-a": {"title": "A", "page": "lessons/01-a.html", "quiz": []}})
    assert any("no lesson section" in p for p in problems) and any("no reference row" in p for p in problems)


def test_anchors_and_toc_entries_resolve(site: Path):
    """Every in-page link (#x) has its target, among them the TOC entries of headings with code."""
    bad = []
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        ids = _ids(html)
        for anchor in set(re.findall(r'href="#([^"]+)"', html)):
            if anchor not in ids and not anchor.startswith("__"):
                bad.append(f"{page.relative_to(site)}#{anchor}")
    assert not bad, bad[:20]
    lesson2 = (site / "lessons" / "02-certificates.html").read_text(encoding="utf-8")
    assert re.search(r'href="#which-key-did-rsa-key-size-4096-give" class="md-nav__link">\s*<span class="md-ellipsis">\s*'
                     r"Which key did <code>--rsa-key-size 4096</code> give\?", lesson2)


def test_glossary_terms_and_reply_rows_have_anchors(site: Path):
    gl = (site / "reference" / "glossary.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<dt id="term-', gl)) == len(re.findall(r"<dt\b", gl)) > 20
    replies = (site / "reference" / "smtp-replies.html").read_text(encoding="utf-8")
    assert 'id="reply-must-starttls"' in replies


def test_copy_buttons_copy_only_the_command(site: Path):
    css = (ROOT / "docs" / "assets" / "site.css").read_text(encoding="utf-8")
    assert "[data-md-copying] .gp, [data-md-copying] .go { display: none; }" in css
    for nb in sitegen.notebooks():
        html = (site / nb.page).read_text(encoding="utf-8")
        for text in re.findall(r'<div class="clipboard-copy-txt" id="[^"]*">(.*?)</div>', html, flags=re.S):
            assert not re.search(r"(?m)^!", text), (nb.page, text[:80])
        assert "\r" not in html


def test_404_page_has_relative_paths(site: Path):
    html = (site / "404.html").read_text(encoding="utf-8")
    assert not re.search(r'(?:href|src)="/(?!/)', html)
