"""The lesson's commands as typed in a learner's own shell, as root and as an ordinary user:
``eval "$(labsim env)"`` puts this venv's labsim, the Postfix commands (``/usr/sbin``, not on an ordinary
user's PATH) and ``MAIL_CONFIG`` in place, so plain ``postconf`` reads the lab's main.cf."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim.backends import postfix

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
USER = "nobody"


def _site(python: str) -> str:
    return subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def user_bin() -> Iterator[Path]:
    """A bin directory with python and labsim that the unprivileged user can run: this venv's, or, when its
    interpreter is out of that user's reach (pyenv under /root), a venv of the system python3 that reads
    this venv's packages (what scripts/test.sh does for its unprivileged nbval stage)."""
    if os.geteuid() != 0:
        yield VENV_BIN  # we are the ordinary user already
        return
    ok = subprocess.run(["runuser", "-u", USER, "--", str(VENV_BIN / "python"), "-c", "import labsim"],
                        capture_output=True).returncode == 0
    if ok:
        yield VENV_BIN
        return
    py = os.environ.get("NONROOT_PYTHON", "/usr/bin/python3")
    assert subprocess.run([py, "-c", f"import sys; sys.exit(sys.version_info[:2] != {sys.version_info[:2]})"]
                          ).returncode == 0, f"{py} is not Python {sys.version_info[:2]}: set NONROOT_PYTHON"
    tmp = Path(tempfile.mkdtemp(prefix="labsim-uservenv-", dir="/tmp"))
    os.chmod(tmp, 0o755)
    try:
        subprocess.run([py, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
        Path(_site(str(tmp / "venv" / "bin" / "python")), "labsim-venv.pth").write_text(
            f"import site; site.addsitedir({_site(sys.executable)!r})\n")
        for name, mod in (("labsim", "labsim.cli"), ("quizzes", "quizzes.cli")):
            script = tmp / "venv" / "bin" / name
            script.write_text(f"#!{tmp}/venv/bin/python\nimport sys\nfrom {mod} import main\nsys.exit(main())\n")
            script.chmod(0o755)
        yield tmp / "venv" / "bin"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def as_user(user_bin: Path, home: Path, script: str, extra: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run a shell script as the unprivileged user with an ordinary user's PATH (no /usr/sbin)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LABSIM_HOME": str(home / "lab"),
           "LABSIM_BIN": str(user_bin), "LC_ALL": "C.UTF-8", **(extra or {})}
    cmd = ["bash", "-c", script]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/tmp")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd="/tmp", env=env)


@pytest.fixture
def user_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="labsim-userhome-", dir="/tmp"))
    os.chmod(home, 0o755)
    if os.geteuid() == 0:
        shutil.chown(home, USER)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_labsim_env_as_an_ordinary_user(user_bin: Path, user_home: Path) -> None:
    proc = as_user(user_bin, user_home, """
        set -e
        command -v labsim >/dev/null && { echo "labsim already on PATH"; exit 3; }
        command -v postconf >/dev/null && { echo "postconf already on PATH"; exit 3; }
        "$LABSIM_BIN/python" -c 'from labsim.backends import postfix; from labsim.settings import Settings; postfix.create_config(Settings.from_env())'
        eval "$("$LABSIM_BIN/labsim" env)"
        echo "labsim=$(command -v labsim)"
        echo "postconf=$(command -v postconf)"
        echo "MAIL_CONFIG=$MAIL_CONFIG"
        postconf smtpd_tls_security_level
        postconf -e smtpd_tls_security_level=encrypt
        labsim postconf -h smtpd_tls_security_level
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"labsim={user_bin}/labsim" in out
    want = "postconf=/usr/sbin/postconf" if postfix.installed() else f"postconf={user_home}/lab/bin/postconf"
    assert want in out
    assert f"MAIL_CONFIG={user_home}/lab/postfix" in out
    assert "smtpd_tls_security_level = may" in out
    assert out.rstrip().endswith("encrypt")  # plain postconf -e edited the lab's main.cf
    assert "smtpd_tls_security_level = encrypt" in (user_home / "lab" / "postfix" / "main.cf").read_text()


def test_labsim_env_as_root_adds_sbin_and_the_venv(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": "/usr/bin:/bin", "LABSIM_HOME": str(tmp_path / "lab")}
    proc = subprocess.run([str(VENV_BIN / "labsim"), "env"], capture_output=True, text=True, env=env, check=True)
    path = [ln for ln in proc.stdout.splitlines() if ln.startswith("export PATH=")][0].split("=", 1)[1].strip("'")
    parts = path.split(":")
    assert parts[0] == str(VENV_BIN)
    assert "/usr/sbin" in parts and "/sbin" in parts and len(parts) == len(set(parts))
    assert f"export MAIL_CONFIG={tmp_path}/lab/postfix" in proc.stdout
    shell = subprocess.run(["bash", "-c", f'eval "$({VENV_BIN}/labsim env)"; command -v labsim; echo $MAIL_CONFIG'],
                           capture_output=True, text=True, env=env, check=True)
    assert shell.stdout.splitlines() == [str(VENV_BIN / "labsim"), f"{tmp_path}/lab/postfix"]


def test_up_as_an_ordinary_user_picks_the_simulator_and_says_why(user_bin: Path, user_home: Path) -> None:
    from labsim.ports import free_ports
    from labsim.settings import PORTS

    ports = {var: str(p) for (_a, var, _d), p in zip(PORTS, free_ports(len(PORTS)))}
    proc = as_user(user_bin, user_home, """
        eval "$("$LABSIM_BIN/labsim" env)"
        labsim up; echo "up=$?"
        labsim reload; echo "reload=$?"
        labsim down; echo "down=$?"
    """, ports)
    out = proc.stdout + proc.stderr
    assert "up=0" in out and "reload=0" in out and "down=0" in out, out
    assert "Backend: sim (starting a real Postfix needs root, so the lab uses the simulator)" in out \
        or "Backend: sim (Postfix is not installed" in out, out
    assert "lab up: sim on 127.0.0.1:" in out and "reloaded" in out


def test_labsim_shell_is_a_shell_aimed_at_the_lab(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": "/usr/bin:/bin", "LABSIM_HOME": str(tmp_path / "lab"), "SHELL": "/bin/bash"}
    proc = subprocess.run([str(VENV_BIN / "labsim"), "shell"], input='echo "MC=$MAIL_CONFIG"; command -v labsim\n',
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"MC={tmp_path}/lab/postfix", str(VENV_BIN / "labsim")]
    assert "a shell aimed at the lab" in proc.stderr
