"""FACTS.md names, for each fact, the tests that verify it: every one of them must exist.

A renamed or deleted test would otherwise leave a fact that nothing checks any more, while the page still
says it is verified.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
            out.add(node.name)
    return out


def test_every_test_named_in_facts_md_exists() -> None:
    text = (ROOT / "FACTS.md").read_text()
    refs = NODE.findall(text)
    assert len(refs) >= 20, "FACTS.md should name the tests that verify its facts"
    missing = []
    for file, name in refs:
        path = ROOT / file
        if not path.is_file():
            missing.append(file)
        elif name and name not in _tests_in(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"FACTS.md names tests that do not exist: {missing}"


def test_every_fact_section_says_where_it_comes_from() -> None:
    sections = re.split(r"^## ", (ROOT / "FACTS.md").read_text(), flags=re.M)[1:]
    assert sections
    for s in sections:
        title = s.splitlines()[0]
        assert "Source:" in s or "Verified by:" in s, f"section {title!r} has neither a source nor a test"
