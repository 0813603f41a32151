"""The two mail servers behind one protocol (labsim.backends); lab.py dispatches through it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from labsim import backends, lab
from labsim.errors import LabError

from .conftest import destroy, make_settings

METHODS = ("prepare", "start", "stop", "reload", "running", "problems", "pid")


def test_both_backends_have_the_whole_protocol():
    wanted = {n for n, _ in inspect.getmembers(backends.Backend, inspect.isfunction) if not n.startswith("_")}
    assert wanted == set(METHODS)
    for b in backends.all_backends():
        assert b.name in backends.NAMES
        for m in METHODS:
            assert callable(getattr(b, m)), (b.name, m)
        for m in ("start", "stop", "reload", "is_running", "master_pid"):  # what each module itself must provide
            assert callable(getattr(b.module, m)), (b.name, m)


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(LabError) as e:
        backends.get("exim")
    assert "exim" in e.value.message and "postfix, sim" in e.value.hint


def test_lab_does_not_reach_into_a_backend_module():
    """lab.py starts, stops and reloads servers only through labsim.backends."""
    tree = ast.parse(Path(lab.__file__).read_text())
    calls = {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)}
    assert not calls & {f"{m}.{f}" for m in ("postfix", "sim", "sim_backend")
                        for f in ("start", "stop", "reload", "is_running")}
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not {m for m, _ in imported} & {"sim", "backends.sim", "labsim.sim", "labsim.backends.sim"}
    assert ("backends", "sim") not in imported and ("labsim.backends", "sim") not in imported


def test_the_simulator_through_the_protocol():
    s = make_settings("sim")
    try:
        lab.up(s, "sim", with_ca=False)
        sim = backends.get("sim")
        assert sim.running(s) and lab.backend_running(s)
        assert isinstance(sim.pid(s), int) and backends.get("postfix").pid(s) is None
        sim.reload(s)
        assert sim.running(s)
        assert sim.problems(s) == []
        lab.down(s)
        assert not sim.running(s) and not backends.get("postfix").running(s) and sim.pid(s) is None
    finally:
        destroy(s)
