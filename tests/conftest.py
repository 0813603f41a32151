"""Shared fixtures: labs on free ports in temporary homes, and the /etc/postfix safety net.

Every lab a test starts has its own home under /tmp (mode 0711, so the postfix user can reach its
queue) and ports the kernel says are free, so tests never collide with a running lab or with each other.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from labsim import lab
from labsim.backends import postfix
from labsim.ports import free_ports
from labsim.settings import PORTS, Settings
from tests.skipguard import (  # noqa: F401  the CI skip guard's hooks, registered by name
    pytest_make_collect_report, pytest_runtest_makereport, pytest_terminal_summary)

pytest_plugins = ["pytester"]

ETC_POSTFIX = Path("/etc/postfix")


def tree_digest(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file (and link target) under root; {} when root does not exist."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir"
    return out


@pytest.fixture(scope="session", autouse=True)
def etc_postfix_untouched():
    """The whole suite must leave the system's /etc/postfix byte-identical."""
    before = tree_digest(ETC_POSTFIX)
    yield
    assert tree_digest(ETC_POSTFIX) == before, "the test suite changed /etc/postfix"


def make_settings(backend: str = "postfix", **overrides) -> Settings:
    """A Settings with a fresh home (mode 0711) and every port freshly free."""
    home = Path(tempfile.mkdtemp(prefix="labsim-test-", dir="/tmp"))
    os.chmod(home, 0o711)
    ports = dict(zip([attr for attr, _v, _d in PORTS], free_ports(len(PORTS))))
    ports.update(overrides)
    return Settings(home=home, backend=backend, **ports)


def destroy(settings: Settings) -> None:
    try:
        lab.down(settings)
    finally:
        shutil.rmtree(settings.home, ignore_errors=True)


def need_postfix() -> None:
    if not postfix.installed():
        pytest.fail("Postfix is not installed: run `make test`, which installs it")
    if os.geteuid() != 0:
        pytest.skip("the real Postfix backend needs root")


@pytest.fixture
def lab_settings():
    """A fresh, not yet started lab (backend postfix) with a temporary home and free ports."""
    s = make_settings()
    yield s
    destroy(s)


@pytest.fixture(scope="module")
def postfix_lab():
    """A running real Postfix lab with its CA, shared by the tests of one module."""
    need_postfix()
    s = make_settings("postfix")
    lab.up(s, "postfix")
    yield s
    destroy(s)


@pytest.fixture(scope="module")
def sim_lab():
    """A running simulator lab with its CA, shared by the tests of one module."""
    s = make_settings("sim")
    lab.up(s, "sim")
    yield s
    destroy(s)


LESSON_CERTBOT = [
    "certonly", "--standalone", "--rsa-key-size", "4096", "--agree-tos",
    "--preferred-challenges", "http", "-d", "lab.itpro.tv",
]


def mta_sts_lab():
    """A real Postfix lab as notebook 06 builds it: the lab CA's certificate served, the signed lab zone, the
    MTA-STS policy (enforce) and a sending Postfix at ``may``. Use as ``yield from mta_sts_lab()`` in a
    fixture; afterwards nothing of it runs any more (asserted)."""
    from labsim import dane, dns, mtasts, notebook, procs

    need_postfix()
    s = make_settings("postfix")
    try:
        lab.up(s, "postfix")
        notebook._solve_certificate(s)  # the lab server serves the lab CA's certificate for lab.itpro.tv
        notebook._solve_postfix_tls(s)
        dns.up(s)
        mtasts.up(s, "enforce")
        dane.up(s, "may")
        yield s
    finally:
        home = str(s.home)
        destroy(s)
        assert procs.mentioning(home) == []
