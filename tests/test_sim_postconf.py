"""The postconf work-alike against the real postconf: same output, same warnings, same exit status, same edit.

The real postconf needs no root and no running Postfix, only the Debian package.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labsim.backends import postfix as lab_postfix
from labsim.maincf import postconf_alike
from tests.sim_fixtures import new_settings, remove_home

if shutil.which("postconf") is None:
    pytest.skip("the real postconf is not installed", allow_module_level=True)

CASES = [
    [], ["-n"], ["myhostname"], ["-h", "myhostname"], ["nosuchparam"], ["-d", "smtpd_tls_security_level"],
    ["-d", "nosuch"], ["-x", "smtpd_banner", "mydestination", "virtual_mailbox_domains"], ["-n", "-h"],
    ["-nh", "myhostname"], ["-d", "-n"], ["-e"], ["-e", "bad"], ["-X"], ["-c", "/nonexistent", "-n"],
    ["-e", "smtpd_tls_security_level=encrypt", "new_thing=1"], ["smtpd_tls_loglevel=1"], ["-X", "bogus", "mynetworks"],
    ["-Z"], ["-c"], ["-d", "myhostname", "mydomain"], ["-H", "myhostname"], ["-d"],
    ["-e", "smtpd_tls_cert_file=/etc/letsencrypt/live/lab.itpro.tv/fullchain.pem",
     "smtpd_tls_key_file=/etc/letsencrypt/live/lab.itpro.tv/privkey.pem"],
]


@pytest.fixture(scope="module")
def lab():
    s = new_settings()
    lab_postfix.create_config(s)
    _restore(s.config_dir / "main.cf", (s.config_dir / "main.cf").read_text())
    yield s
    remove_home(s)


def _restore(main_cf: Path, text: str) -> None:
    """Put main.cf back, dated in the past: postconf waits ~2 s on a main.cf changed in the last seconds."""
    main_cf.write_text(text)
    old = time.time() - 60
    os.utime(main_cf, (old, old))


def _run(cmd: list[str] | None, config_dir: Path, args: list[str]) -> tuple[int, str, list[str], str]:
    """Run the real postconf (cmd) or the work-alike in this process (cmd None: the same code as -m)."""
    main_cf = config_dir / "main.cf"
    before = main_cf.read_text()
    argv = ["-c", str(config_dir), *args]
    if cmd:
        proc = subprocess.run([*cmd, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:
        out, err = io.StringIO(), io.StringIO()
        code = postconf_alike.run(argv, out, err, env={})
        stdout, stderr = out.getvalue(), err.getvalue()
    after = main_cf.read_text()
    _restore(main_cf, before)
    stdout = "\n".join(line for line in stdout.splitlines() if not line.startswith("process_id ="))
    return code, stdout, sorted(stderr.splitlines()), after


@pytest.mark.parametrize("args", CASES, ids=[" ".join(a) or "(none)" for a in CASES])
def test_work_alike_matches_postconf(lab, args: list[str]) -> None:
    want = _run(["postconf"], lab.config_dir, args)
    got = _run(None, lab.config_dir, args)
    assert got[0] == want[0], (want, got)
    assert got[2] == want[2], "stderr differs"
    assert got[1] == want[1], "stdout differs"
    assert got[3] == want[3], "main.cf after the command differs"


def test_unused_parameter_warnings_match(lab) -> None:
    """Unknown names in main.cf: postconf warns (and tries syslog, so this one case is slow on Postfix)."""
    main_cf = lab.config_dir / "main.cf"
    original = main_cf.read_text()
    _restore(main_cf, original + "bogus = 1\nlong_one = first\n  second line\nused = $long_one\n")
    try:
        want = _run(["postconf"], lab.config_dir, ["-n"])
        got = _run(None, lab.config_dir, ["-n"])
    finally:
        _restore(main_cf, original)
    assert got == want
    assert any("unused parameter: bogus=1" in line for line in got[2])


def test_mail_config_is_honoured(lab) -> None:
    env = {"MAIL_CONFIG": str(lab.config_dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    want = subprocess.run(["postconf", "-n"], capture_output=True, text=True, env=env).stdout
    got = subprocess.run([sys.executable, "-m", "labsim.maincf.postconf_alike", "-n"], capture_output=True, text=True,
                         env=env, cwd=Path(__file__).resolve().parents[1]).stdout
    assert got == want and "smtpd_tls_security_level = may" in got
