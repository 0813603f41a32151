"""The command layer's one error printer: a LabError is a message and a hint, Ctrl-C is quiet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LABSIM = [str(Path(sys.executable).parent / "labsim")]


def test_ctrl_c_in_logs_follow_prints_no_traceback(tmp_path) -> None:
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "maillog").write_text("Dec 02 10:00:00 lab postfix/master[1]: daemon started\n")
    env = {**os.environ, "LABSIM_HOME": str(tmp_path)}
    p = subprocess.Popen([*LABSIM, "logs", "-f"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert "daemon started" in out
    assert "Traceback" not in err and p.returncode == 130, (p.returncode, err)


def test_a_lab_error_is_a_message_and_a_hint(tmp_path) -> None:
    env = {**os.environ, "LABSIM_HOME": str(tmp_path / "none"), "LABSIM_SMTP_PORT": "not-a-port"}
    for argv in (["status"], ["mitm"], ["classroom", "ports", "--base", "1"]):
        p = subprocess.run([*LABSIM, *argv], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "Traceback" not in p.stderr, (argv, p.stderr)
        assert p.stderr.startswith("labsim"), (argv, p.stderr)
