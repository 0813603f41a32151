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
    _state["bank"] = _guard(sitegen.load_site_bank)
    if _state["bank"].sample:
        log.info("course site: the question bank is empty; the quiz pages use the sample bank")
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
    data = _state["bank"].data
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
    if bank.sample:
        return ('!!! warning "Sample questions"\n    The course\'s question bank has no questions yet, so this '
                f"page uses a sample of {n}. The same page shows the whole bank as soon as it lands.\n")
    return f"*{n} questions from the course's question bank (`quizzes/bank/`), the same bank as `quizzes` and the notebooks.*\n"


_EXTERNAL_SCRIPT = re.compile(r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


_INLINE_SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.S | re.I)


def on_post_page(output: str, page, config, **_kw):
    if page.file.src_uri.endswith(".ipynb"):
        output = _MATHJAX_CONFIG.sub("", output)
        output = _EXTERNAL_SCRIPT.sub("", output)
        # nbconvert's lab template imports mermaid.js from a CDN when a notebook has a diagram
        output = _INLINE_SCRIPT.sub(lambda m: "" if re.search(r"import\(\s*[\"']https?://", m.group(1)) else m.group(0),
                                    output)
    return output
