"""Under ``CI=true`` a skipped test is a failure; elsewhere skips are allowed and counted in one line.

CI runs as root with everything ``scripts/setup.sh --test`` installs, so nothing has a reason to skip there:
a skip in CI would hide a missing package or a broken fixture behind a green run. The hooks live here (not
only in ``conftest.py``) so that ``tests/test_skipguard.py`` can load the very same hooks into a pytester run
(``-p tests.skipguard``). ``conftest.py`` imports them, so every pytest call in CI obeys them, not only
``make test``. A skip at import (``pytest.skip(..., allow_module_level=True)``) fails the collection.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest


def in_ci() -> bool:
    """CI sets ``CI=true`` (as GitHub, GitLab and this project's CI do)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


_GUARD = "skipped under CI=true, which counts as a failure (in CI everything is installed, so a skip hides a defect): "


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = _GUARD + _reason(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci():
        report.outcome = "failed"
        report.longrepr = _GUARD + _reason(report.longrepr)


def pytest_terminal_summary(terminalreporter):
    """Outside CI: one line that counts the skips and gives their reasons."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons = Counter(_reason(r.longrepr) for r in skipped)
    text = "; ".join(f"{n} x {why}" if n > 1 else why for why, n in reasons.most_common())
    terminalreporter.write_line(f"skipped: {len(skipped)} ({text})", yellow=True)
