"""The repository is launchable by repo2docker (Binder, JupyterHub): binder/ parsed, its steps run here.

apt.txt: every package exists (apt-cache policy on this Debian 12). runtime.txt: a Python the project
supports. postBuild: valid bash, and its pip command resolves the project with the course extra (pip
--dry-run). start: really starts a simulator lab in a temporary home on free ports, with the per-user port
block of a shared hub, and exec's the command it is given (same pid).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from labsim import classroom, lab
from labsim.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
BIN = Path(sys.executable).parent


def lines(path: Path) -> list[str]:
    return [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines() if ln.split("#", 1)[0].strip()]


def test_apt_packages_exist_here():
    pkgs = lines(BINDER / "apt.txt")
    assert {"postfix", "pebble", "certbot", "swaks"} <= set(pkgs)
    for pkg in pkgs:
        out = subprocess.run(["apt-cache", "policy", pkg], capture_output=True, text=True).stdout
        m = re.search(r"Candidate: (\S+)", out)
        assert m and m.group(1) != "(none)", f"{pkg}: no candidate in apt-cache policy (apt-get update?)"


def test_runtime_is_a_supported_python():
    (runtime,) = lines(BINDER / "runtime.txt")
    m = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert m, runtime
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    low = tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)", requires).groups())
    assert (int(m.group(1)), int(m.group(2))) >= low


def test_postbuild_installs_the_project_with_the_course_extra():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pip_lines = [ln for ln in lines(script) if re.search(r"\bpip install\b", ln)]
    assert pip_lines
    for ln in pip_lines:
        args = shlex.split(ln)
        args = args[args.index("install") + 1:]
        assert "-e" in args and any(a.startswith(".[") for a in args)
        assert "course" in re.search(r"\.\[([^\]]+)\]", ln).group(1).split(",") and "course" in extras
        # The command as repo2docker runs it (from the repository root), without installing anything.
        proc = subprocess.run([str(BIN / "python"), "-m", "pip", "install", "--dry-run", "--no-deps", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "Would install postfix-tls-lab" in proc.stdout


def test_start_starts_a_sim_lab_and_execs_the_command():
    script = BINDER / "start"
    assert os.access(script, os.X_OK)
    assert script.read_text().rstrip().endswith('exec "$@"')
    home = Path(tempfile.mkdtemp(prefix="labsim-binder-", dir="/tmp"))
    os.chmod(home, 0o711)
    base = classroom.find_base(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABSIM_", "QUIZZES_", "MAIL_CONFIG"))}
    # As on a hub: the user's home, this user's port block; the simulator, as `auto` picks without root
    # (this test runs as root, where auto would pick the real Postfix).
    env.update(HOME=str(home), LABSIM_PORT_BASE=str(base), LABSIM_BACKEND="sim",
               PATH=f"{BIN}:/usr/bin:/bin")
    settings = Settings(home=home / ".local/state/labsim", **classroom.block(base))
    try:
        proc = subprocess.Popen(
            [str(script), "bash", "-c", 'echo "pid $$"; echo "mail_config $MAIL_CONFIG"; labsim status --json'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
        first, second, rest = out.split("\n", 2)
        assert first == f"pid {proc.pid}"  # exec: the command replaced the script, same process
        assert second == f"mail_config {settings.config_dir}"  # terminals' postconf aims at the lab
        st = json.loads(rest)
        assert st["backend"] == "sim" and st["running"]
        assert st["home"] == str(settings.home) and st["smtp_port"] == base
        assert st["banner"].startswith("220 ")
        assert st["ca_running"]
        assert lab.backend_running(settings, "sim")
    finally:
        lab.down(settings)
        shutil.rmtree(home, ignore_errors=True)


def test_start_lets_the_server_start_when_the_lab_cannot(tmp_path):
    """A broken lab never keeps a user out of their notebook server: start says why, then exec's."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABSIM_", "QUIZZES_", "MAIL_CONFIG"))}
    env.update(HOME=str(home), LABSIM_BACKEND="nonsense", PATH=f"{BIN}:/usr/bin:/bin")
    proc = subprocess.run([str(BINDER / "start"), "echo", "server started"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "server started\n"
    assert "the lab did not start" in proc.stderr and "labsim doctor" in proc.stderr


@pytest.mark.parametrize("name", ["apt.txt", "runtime.txt", "postBuild", "start"])
def test_binder_files_are_committed_text(name):
    data = (BINDER / name).read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
