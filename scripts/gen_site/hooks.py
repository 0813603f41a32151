"""MkDocs hooks of the course site (mkdocs.yml: ``hooks:``). The data work is in sitegen.py.

* on_config: every ``notebooks/NN-*.ipynb`` becomes a page under "Lessons" in the navigation.
* on_files: the notebooks are added as pages *from notebooks/* (symbolic links in a temporary
  directory, no copies in docs/), before
  mkdocs-jupyter turns them into notebook pages; the question bank is written as
  ``assets/quiz-bank.json`` and ``assets/quiz-bank.js`` (the JS form loads from file:// too).
* on_page_markdown: ``<!-- gen:NAME -->`` markers in pages are replaced by generated Markdown
  (postconf, replies, ports, commands, objectives, notebooks, bank-note).
* on_post_page: notebook pages lose nbconvert's CDN scripts (MathJax, RequireJS, the mermaid.js import):
  the site must work without the internet, and the lessons have no mathematics or diagrams.

Anything missing or broken stops the build with a message that says what to do.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.utils.meta import get_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
import diagrams  # noqa: E402
import quizdata  # noqa: E402
import sitegen  # noqa: E402

log = logging.getLogger("mkdocs.hooks.course")
LESSONS_TITLE = "Lessons"
_state: dict[str, Any] = {}


def _guard(fn, *args):
    try:
        return fn(*args)
    except sitegen.SiteDataError as exc:
        raise PluginError(f"course site: {exc}") from exc


def on_config(config, **_kw):
    nbs = _guard(sitegen.notebooks)
    _state["notebooks"] = nbs
    url, source = sitegen.repo_url_from(os.environ, sitegen.ROOT, config.get("repo_url") or "")
    if source == "placeholder":
        # not a mkdocs warning: `mkdocs build --strict` must still pass on a clone with no origin
        logging.getLogger("course_site").warning(
            "course site: no COURSE_REPO_URL and no git remote origin; the home page and header show the "
            "placeholder address %s", url)
    else:
        log.info("course site: repository address %s (from %s)", url, source)
    config["repo_url"] = url
    _state["repo_url"] = url
    _state["bank"] = _guard(sitegen.load_site_bank)
    nav = config.get("nav") or []
    for entry in nav:
        if isinstance(entry, dict) and LESSONS_TITLE in entry:
            section = [e for e in entry[LESSONS_TITLE] if not _is_notebook(e)]
            section += [{nb.title: nb.site_path} for nb in nbs]
            entry[LESSONS_TITLE] = section
            break
    else:
        raise PluginError(f'course site: mkdocs.yml nav needs a "{LESSONS_TITLE}" section for the notebooks')
    return config


def _is_notebook(entry: Any) -> bool:
    value = next(iter(entry.values())) if isinstance(entry, dict) else entry
    return isinstance(value, str) and value.endswith(".ipynb")


@event_priority(100)  # before mkdocs-jupyter's on_files, so that it renders these notebooks
def on_files(files: Files, config, **_kw):
    # mkdocs-jupyter wraps a File and computes its source path from src_dir + src_uri, so a notebook page
    # needs a real src_dir: a temporary directory of symbolic links lessons/NN-*.ipynb -> notebooks/.
    if _state["notebooks"]:
        links = Path(tempfile.mkdtemp(prefix="course-site-notebooks-"))
        atexit.register(shutil.rmtree, links, True)
        (links / "lessons").mkdir()
        for nb in _state["notebooks"]:
            if files.get_file_from_path(nb.site_path) is None:
                (links / nb.site_path).symlink_to(nb.path)
                files.append(File(nb.site_path, str(links), config["site_dir"], config["use_directory_urls"]))
    data = dict(_state["bank"].data)
    try:
        data.update(quizdata.plan(data))
    except Exception as exc:  # the quizzes package is the authority: a failure there stops the build
        raise PluginError(f"course site: the exam plan from quizzes.exam.site_plan failed: {exc}") from exc
    data["lessons"] = quizdata.lessons(_state["notebooks"])
    _state["quiz_data"] = data
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    files.append(File.generated(config, "assets/quiz-bank.json", content=text))
    # A <script> works from file:// where fetch() of a JSON file does not.
    files.append(File.generated(config, "assets/quiz-bank.js",
                                content=f"window.QUIZ_BANK = {text};\n"))
    pages = {}
    for f in files.documentation_pages():
        if not f.src_uri.endswith(".md") or f.abs_src_path is None:
            continue
        source = Path(f.abs_src_path).read_text(encoding="utf-8")
        _body, meta = get_data(source)
        if meta.get("objectives") or meta.get("areas"):
            m = re.search(r"^#\s+(.+)$", _body, re.M)
            pages[f.src_uri] = {"title": meta.get("title") or (m.group(1).strip() if m else f.src_uri),
                                "objectives": [str(o) for o in meta.get("objectives", [])],
                                "areas": list(meta.get("areas", []))}
    _state["pages"] = pages
    return files


_MARKER = re.compile(r"<!--\s*gen:([a-z-]+)\s*-->")


def on_page_markdown(markdown: str, page, config, files, **_kw):
    def generate(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "postconf":
            return _guard(sitegen.postconf_reference_md)
        if name == "replies":
            return _guard(sitegen.replies_md)
        if name == "ports":
            return _guard(sitegen.ports_md)
        if name == "commands":
            return _guard(sitegen.commands_md)
        if name == "objectives":
            return _relink(sitegen.objectives_md(_state["bank"], _state["pages"], _state["notebooks"]), page)
        if name == "notebooks":
            return _notebook_list(page)
        if name == "bank-note":
            return _bank_note()
        if name == "clone":
            return sitegen.clone_md(_state["repo_url"])
        if name == "course-time":
            return _relink(sitegen.course_time_md(_state["notebooks"]), page)
        if name == "diagrams":
            return diagrams.page_md()
        if name == "pass-rule":
            from quizzes import exam

            return f"counts {round(100 * exam.PASS_FRACTION)}% right as 500"
        raise PluginError(f"course site: {page.file.src_uri}: unknown marker gen:{name}")

    return _MARKER.sub(generate, markdown)


def _relink(md: str, page) -> str:
    """Links in generated Markdown are written from docs/; make them relative to PAGE."""
    depth = page.file.src_uri.count("/")
    if not depth:
        return md
    up = "../" * depth
    return re.sub(r"\]\((?!https?:|#|\.\./)([^)]+)\)", lambda m: f"]({up}{m.group(1)})", md)


def _notebook_list(page) -> str:
    nbs = _state["notebooks"]
    if not nbs:
        return ('!!! note "The notebooks are on their way"\n'
                "    No lesson notebook is in `notebooks/` yet. Each one will appear here, and in the menu, "
                "as soon as it is added: the site picks up every `notebooks/NN-*.ipynb` when it is built.\n")
    up = "../" * page.file.src_uri.count("/")
    rows = ["| # | lesson | notebook |", "|---|---|---|"]
    for nb in nbs:
        # mkdocs-jupyter copies each .ipynb beside its page (include_source); a raw <a> is not rewritten to .html
        rows.append(f"| {nb.path.name[:2]} | [{nb.title}]({up}{nb.site_path}) | "
                    f'<a href="{up}{nb.site_path}" download>{nb.path.name}</a> |')
    return "\n".join(rows) + "\n"


def _bank_note() -> str:
    bank = _state["bank"]
    n = len(bank.data["questions"])
    return f"*{n} questions from the course's question bank (`quizzes/bank/`), the same bank as `quizzes` and the notebooks.*\n"


_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


_INLINE_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.S | re.I)


def _rel(page) -> str:
    """From PAGE's built file to the site root."""
    return "../" * page.file.dest_uri.count("/")


_QUIZ_OUTPUT = re.compile(
    r'<div class="jp-OutputArea-child jp-OutputArea-executeResult">\s*'
    r'<div class="jp-OutputPrompt jp-OutputArea-prompt">Out\[\d+\]:</div>\s*'
    r'<div class="jp-RenderedText[^>]*>\s*<pre>(Quiz: \d+ question\(s\)\..*?)</pre>\s*</div>\s*</div>', re.S)
_HEADING = re.compile(r'<h([1-6]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_COPY_TEXT = re.compile(r'(<div class="clipboard-copy-txt" id="[^"]*">)(.*?)(</div>)', re.S)


def _lesson_quiz(page, output: str) -> str:
    stem = page.file.src_uri.rsplit("/", 1)[-1].removesuffix(".ipynb")

    def widget(m: re.Match[str]) -> str:
        text = m.group(1)
        ids = re.findall(r"--id (\S+)", text.split("\n", 1)[0])
        if not ids:
            raise PluginError(f"course site: {page.file.src_uri}: a quiz output names no question")
        return (f'<div class="jp-OutputArea-child course-lesson-quiz">'
                f'<div class="quiz-app" data-mode="lesson" data-lesson="{stem}" data-ids="{" ".join(ids)}">'
                f'<p class="quiz-loading">Loading the questions…</p>'
                f'<noscript><pre>{text}</pre></noscript></div></div>')

    out, n = _QUIZ_OUTPUT.subn(widget, output)
    nb = next((nb for nb in _state["notebooks"] if nb.path.stem == stem), None)
    if nb is not None and nb.quiz and n == 0:
        raise PluginError(f"course site: {page.file.src_uri}: its quiz cell has no stored output to turn into a quiz")
    return out


def _fix_toc(output: str) -> str:
    """mkdocs-jupyter's table of contents drops code from headings (and so their anchors): point each such
    entry at the heading it stands for, with the heading's own text."""
    headings = {hid: re.sub(r'<a class="anchor-link".*?</a>', "", inner, flags=re.S).strip()
                for _lvl, hid, inner in _HEADING.findall(output)}

    def fix(m: re.Match[str]) -> str:
        bad = m.group(2)
        if bad in headings:
            return m.group(0)
        for hid, inner in headings.items():
            pre = len(os.path.commonprefix([bad, hid]))
            suf = len(os.path.commonprefix([bad[::-1], hid[::-1]]))
            if pre and suf and pre + suf >= len(bad):
                return f'{m.group(1)}#{hid}"{m.group(3)}{inner}{m.group(5)}'
        return m.group(0)

    return re.sub(r'(<a href=")#([^"]+)"( class="md-nav__link">\s*<span class="md-ellipsis">\s*)(.*?)(\s*</span>)',
                  fix, output, flags=re.S)


def _diagram_figures(page, output: str) -> str:
    stem = page.file.src_uri.rsplit("/", 1)[-1].removesuffix(".ipynb")
    by_id = {d.id: d for d in diagrams.diagrams()}
    for section, did in reversed(diagrams.LESSON_PLACES.get(stem, [])):
        m = re.search(rf'<h2 id="{re.escape(section)}"[^>]*>.*?</h2>', output, re.S)
        if not m:
            raise PluginError(f"course site: {page.file.src_uri} has no section #{section} for the diagram {did} "
                              f"(scripts/gen_site/diagrams.py LESSON_PLACES)")
        fig = diagrams.figure_html(by_id[did])
        link = (f'<p class="course-diagram__more"><a href="pictures.html#{did}">All the pictures of the lesson</a></p>')
        output = output[: m.end()] + fig + link + output[m.end():]
    return output


def _fold_long_outputs(output: str, lines: int = 25) -> str:
    def fold(m: re.Match[str]) -> str:
        n = m.group(2).count("\n") + 1
        if n <= lines:
            return m.group(0)
        return (f'<details class="course-fold" open><summary>Output: {n} lines (fold or unfold)</summary>'
                f"{m.group(0)}</details>")

    return re.sub(r'(<div class="jp-RenderedText[^>]*>\s*<pre>)(.*?)(</pre>\s*</div>)', fold, output, flags=re.S)


def _glossary_anchors(output: str) -> str:
    def anchor(m: re.Match[str]) -> str:
        text = re.sub(r"<[^>]+>", "", m.group(1))
        slug = "term-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        return f'<dt id="{slug}">{m.group(1)} <a class="headerlink" href="#{slug}" title="Link to this term">¶</a></dt>'

    return re.sub(r"<dt>(.*?)</dt>", anchor, output, flags=re.S)


def _name_search(output: str) -> str:
    """Material's search dialog has no accessible name (axe: aria-dialog-name)."""
    return output.replace('<div class="md-search" data-md-component="search" role="dialog">',
                          '<div class="md-search" data-md-component="search" role="dialog" aria-label="Search the course">')


def on_post_template(output: str, template_name: str, config, **_kw):
    """404.html: relative asset paths (it is at the site's root; root-absolute /assets/ breaks from file://
    and under a sub-path), and the named search dialog."""
    if template_name == "404.html":
        output = re.sub(r'((?:href|src)=")/(?!/)', r"\1", output)
        output = _name_search(output)
    return output


def on_post_page(output: str, page, config, **_kw):
    src = page.file.src_uri
    if src.endswith(".ipynb"):
        output = _MATHJAX_CONFIG.sub("", output)
        output = _EXTERNAL_SCRIPT.sub("", output)
        # nbconvert's lab template imports mermaid.js from a CDN when a notebook has a diagram
        output = _INLINE_SCRIPT.sub(lambda m: "" if re.search(r"import\(\s*[\"']https?://", m.group(1)) else m.group(0),
                                    output)
        output = output.replace("\r\r\n", "\n").replace("\r\n", "\n")  # swaks' CRLF, stored as text
        output = _lesson_quiz(page, output)
        output = _fix_toc(output)
        output = _diagram_figures(page, output)
        output = _fold_long_outputs(output)
        # the copy button copies the command a learner would type: no Jupyter "!" shell escapes
        output = _COPY_TEXT.sub(lambda m: m.group(1) + re.sub(r"(?m)^!", "", m.group(2)) + m.group(3), output)
        # scrollable code and outputs take keyboard focus (axe: scrollable-region-focusable)
        output = output.replace('<div class="highlight-ipynb hl-python"><pre>',
                                '<div class="highlight-ipynb hl-python"><pre tabindex="0">')
    output = _name_search(output)
    if src == "reference/glossary.md":
        output = _glossary_anchors(output)
    if 'class="course-diagram"' in output:
        up = _rel(page)
        scripts = (f'<script src="{up}assets/vendor/mermaid.min.js"></script>'
                   f'<script src="{up}assets/diagrams.js"></script>')
        output = output.replace("</body>", scripts + "</body>", 1)
    return output


def on_post_build(config, **_kw):
    """Link every question to the lesson section and reference row that teach it (assets/quiz-links.js),
    from the built pages' real anchors; stop the build when a question has no such link or one does not
    resolve."""
    site = Path(config["site_dir"])
    sections = quizdata.lesson_sections(site, _state["notebooks"])
    rows = quizdata.reference_rows(site)
    data = _state["quiz_data"]
    found, problems = quizdata.links(data, sections, rows, data["lessons"])
    if sitegen.NOTEBOOKS.resolve() != (sitegen.ROOT / "notebooks").resolve():
        # lessons from elsewhere (COURSE_SITE_NOTEBOOKS: the tests' sample notebook) need not teach the bank
        problems = [p for p in problems if "no lesson section" not in p]
    for qid, entry in found.items():
        for kind, link in entry.items():
            path, _, anchor = link["href"].partition("#")
            target = site / path
            if not target.is_file() or (anchor and f'id="{anchor}"' not in target.read_text(encoding="utf-8")):
                problems.append(f"{qid}: its {kind} link {link['href']} does not resolve")
    if problems:
        raise PluginError("course site: questions without working links to what teaches them:\n  "
                          + "\n  ".join(problems[:40]) + (f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""))
    text = json.dumps(found, ensure_ascii=False, separators=(",", ":"))
    (site / "assets" / "quiz-links.json").write_text(text, encoding="utf-8")
    (site / "assets" / "quiz-links.js").write_text(f"window.QUIZ_LINKS = {text};\n", encoding="utf-8")
