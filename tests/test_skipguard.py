"""The skip guard itself: under CI=true a skip (in a test, a fixture or at import) fails the run."""

from __future__ import annotations

import pytest

GUARD = ("-p", "tests.skipguard", "-W", "ignore::pytest.PytestAssertRewriteWarning")

SKIPPING = """
import pytest

@pytest.fixture
def needs_something():
    pytest.skip("a fixture that cannot run here")

def test_skips_itself():
    pytest.skip("nothing to test here")

def test_skips_in_fixture(needs_something):
    pass

def test_passes():
    assert True
"""

SKIPPING_MODULE = """
import pytest
pytest.skip("this module needs something missing", allow_module_level=True)

def test_never_runs():
    assert False
"""


def test_ci_turns_skips_into_failures(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_some=SKIPPING)
    result = pytester.runpytest(*GUARD)
    result.assert_outcomes(passed=1, failed=1, errors=1)  # a skip in a fixture fails its setup
    result.stdout.fnmatch_lines(["*skipped under CI=true*nothing to test here*"])
    assert result.ret != 0


def test_ci_fails_a_module_skipped_at_import(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_mod=SKIPPING_MODULE)
    result = pytester.runpytest(*GUARD)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*skipped under CI=true*needs something missing*"])


def test_outside_ci_skips_are_allowed_and_counted(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(test_some=SKIPPING)
    result = pytester.runpytest(*GUARD)
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 0
    line = next(x for x in result.stdout.lines if x.startswith("skipped: 2 ("))
    assert "a fixture that cannot run here" in line and "nothing to test here" in line
