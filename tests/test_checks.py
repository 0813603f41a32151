"""labsim check / solve: every step fails on a fresh lab, passes after its solve, on both backends.

The solves do what the lesson does (its certbot command, postconf -e on the lab config, restart, reload); the checks are run
through the `labsim` command as a notebook or a student runs them, and their exit status is what counts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labsim import checks, lab
from labsim.backends import postfix

from .conftest import LESSON_CERTBOT, destroy, make_settings, need_postfix

LABSIM = str(Path(sys.executable).parent / "labsim")


def labsim(settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.env()}
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run([LABSIM, *args], capture_output=True, text=True, env=env, timeout=300)


def check_json(settings, step: str) -> dict:
    proc = labsim(settings, "check", step, "--json")
    data = json.loads(proc.stdout)
    assert (proc.returncode == 0) == data["ok"], proc.stdout
    (result,) = data["steps"]
    return result


def failing(result: dict) -> dict[str, str]:
    return {c["id"]: c["message"] for c in result["conditions"] if not c["ok"]}


@pytest.fixture(params=["sim", "postfix"])
def fresh_lab(request):
    if request.param == "postfix":
        need_postfix()
    s = make_settings(request.param)
    lab.up(s, request.param)
    yield s
    destroy(s)


def test_lesson_certbot_is_the_lessons():
    assert checks.LESSON_CERTBOT == LESSON_CERTBOT
    assert checks.lesson_certbot("mx.example.net")[-1] == "mx.example.net"


def test_every_step_fails_then_passes_after_its_solve(fresh_lab):
    s = fresh_lab
    # --- the lab's starting state: a stock Debian install (snakeoil certificate, level may) -------------
    start = {r["step"]: r for r in json.loads(labsim(s, "check", "--json").stdout)["steps"]}
    assert not any(r["ok"] for r in start.values())
    assert "issued" in failing(start["certificate"])
    pt = failing(start["postfix-tls"])
    assert "self-signed snakeoil" in pt["starttls"] and "cert-file" in pt
    op = failing(start["opportunistic"])
    assert set(op) == {"offered"} and "verifying client fails" in op["offered"]
    enc = failing(start["encrypt"])
    assert enc["level"] == "smtpd_tls_security_level is may, not encrypt"
    assert "250 2.1.0 Ok" in enc["plain-refused"]
    # one line per failing condition with a hint; the solution only when asked
    plain = labsim(s, "check", "encrypt")
    assert plain.returncode == 1 and "hint:" in plain.stdout and "solution:" not in plain.stdout
    with_solution = labsim(s, "check", "encrypt", "--solution")
    assert "solution: labsim postconf -e 'smtpd_tls_security_level = encrypt'" in with_solution.stdout

    # --- solve, then check, step by step -------------------------------------------------------------------
    for step in ("certificate", "postfix-tls", "opportunistic", "encrypt"):
        done = checks.solve(s, step)
        assert done
        result = check_json(s, step)
        assert result["ok"], failing(result)
    assert checks.solve(s, "certificate") == ["certificate already issued"]  # a second solve changes nothing
    live = s.live_dir()
    assert checks.configured_files(s) == (str(live / "fullchain.pem"), str(live / "privkey.pem"))
    # encrypt and opportunistic exclude each other
    bad = failing(check_json(s, "opportunistic"))
    assert bad["level"] == "smtpd_tls_security_level is encrypt, not may"
    assert bad["plain-mail"].endswith("MAIL FROM -> 530 5.7.0 Must issue a STARTTLS command first")
    # `labsim solve` and `check --solve` are the same solve, through the command line
    proc = labsim(s, "check", "opportunistic", "--solve")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS opportunistic" in proc.stdout
    assert labsim(s, "check", "encrypt").returncode == 1
    proc = labsim(s, "solve", "encrypt")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert checks.history(s).keys() >= {"opportunistic", "encrypt"}

    # --- a change without a reload is not in effect: the check says so on both backends, though a fresh
    # smtpd of the real Postfix would already read the new main.cf (so a live probe alone could not tell).
    time.sleep(1.1)  # log stamps have whole seconds: the change must come in a later second
    postfix.postconf(s, "-e", "smtpd_tls_security_level=may", check=True)
    bad = failing(check_json(s, "opportunistic"))
    assert "loaded" in bad and "after the server last read it" in bad["loaded"]
    lab.reload(s)
    assert checks.wait_loaded(s, 20)
    result = check_json(s, "opportunistic")
    assert result["ok"], failing(result)


def test_one_registry_for_the_lesson_and_the_notebooks():
    """The lesson's steps and the notebooks' exercises are steps of one registry, each solved one way."""
    lesson = checks.lab_steps()
    assert lesson == ["certificate", "postfix-tls", "opportunistic", "encrypt"]
    exercises = {n: st for n, st in checks.REGISTRY.items() if st.exercise}
    assert {"tamper", "rsa-4096", "client-encrypt", "tlsa", "mta-sts", "tls-protocols"} <= exercises.keys()
    for name, step in checks.REGISTRY.items():
        assert step.name == name and 1 <= step.lesson <= 8 and callable(step.check) and callable(step.solve)
        assert set(step.requires) <= set(checks.REGISTRY), name
    with pytest.raises(ValueError, match="registered twice"):  # another module taking a step's name
        checks.register(dataclasses.replace(checks.REGISTRY["tamper"], check=lambda s: []))
    from labsim import notebook

    assert notebook.lesson_steps(2) == ("certificate", "rsa-4096")
    assert notebook.lesson_steps(5) == ("encrypt", "client-encrypt")


def test_library_modules_do_not_import_click():
    """click lives in the command layer (labsim/cli/, quizzes/cli.py) only."""
    import ast

    root = Path(__file__).resolve().parent.parent
    offenders = []
    for path in sorted([*(root / "labsim").rglob("*.py"), *(root / "quizzes").rglob("*.py")]):
        rel = path.relative_to(root).parts
        if rel[:2] == ("labsim", "cli") or rel == ("quizzes", "cli.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "click" or n.startswith("click.") for n in names):
                offenders.append(str(path.relative_to(root)))
    assert not offenders, f"library modules that import click: {offenders}"


def test_not_running_and_no_lab():
    s = make_settings("sim")
    try:
        result = checks.run_check(s, "certificate")
        assert not result.ok and result.conditions[0].message.startswith("there is no lab in")
        lab.up(s, "sim", with_ca=False)
        lab.down(s)
        bad = {c.id: c for c in checks.run_check(s, "encrypt").failing()}
        assert "not running" in bad["running"].message and bad["running"].solution == "labsim up"
        # a notebook's exercise is checked from a shell too, and `labsim check` alone runs the lesson's steps
        proc = labsim(s, "check", "tamper")
        assert proc.returncode == 1 and proc.stdout.startswith("FAIL tamper:") and "hint:" in proc.stdout
        steps = [r["step"] for r in json.loads(labsim(s, "check", "--json").stdout)["steps"]]
        assert steps == checks.lab_steps()
        for step in ("tlsa", "mta-sts"):  # lesson 6's, without the lab DNS: a failing condition, no traceback
            result = checks.run_check(s, step)
            assert not result.ok and result.failing()[0].hint, (step, result)
    finally:
        destroy(s)


def test_log_stamps_and_other_labs_lines(tmp_path):
    now = dt.datetime(2026, 1, 2, 10, 0, 0)
    assert dt.datetime.fromtimestamp(checks.probes._stamp("Dec 31 23:59:59", now)).year == 2025
    assert dt.datetime.fromtimestamp(checks.probes._stamp("Jan  2 09:59:00", now)).year == 2026
    s = make_settings("sim").with_(home=tmp_path)
    s.log_dir.mkdir(parents=True)
    stamp = time.strftime("%b %d %H:%M:%S")
    s.log_file.write_text(
        f"{stamp} lab postfix/master[1]: daemon started -- version 3.7.11, configuration {s.config_dir}\n"
        f"{stamp} lab postfix/master[2]: reload -- version 3.7.11, configuration /somewhere/else\n"
        f"{stamp} lab postfix/smtpd[3]: connect from localhost[127.0.0.1]\n"
    )
    when, what = checks.last_load(s)
    assert what == "daemon started" and abs(when - time.time()) < 5


def test_a_module_run_again_replaces_its_steps():
    """IPython's %autoreload (or importlib.reload) runs a steps module again: its steps are replaced in
    place, in the same order, with the new functions; the registry does not raise or grow."""
    import importlib

    from labsim.checks import exercises, lesson

    before = list(checks.REGISTRY)
    old = {n: st.check for n, st in checks.REGISTRY.items()}
    for module in (lesson, exercises):
        importlib.reload(module)
    assert list(checks.REGISTRY) == before
    assert checks.REGISTRY["tamper"].check is exercises.check_tamper is not old["tamper"]
    assert checks.REGISTRY["encrypt"].check.__module__ == "labsim.checks.lesson"
    assert all(checks.REGISTRY[n].check is not old[n] for n in before)
    assert checks.lab_steps() == ["certificate", "postfix-tls", "opportunistic", "encrypt"]
