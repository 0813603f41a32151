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


def test_the_printer_keeps_lines_whole_and_brackets_as_text(capfd) -> None:
    """Into a file or pipe (a simulator's sim.err, which its backend quotes) no line is wrapped, and a
    bracket in a message (a client's [127.0.0.1]) is text, not rich markup."""
    from labsim.cli.tools import print_error
    from labsim.errors import LabError

    line = "Dec  3 17:00:00 lab postfix/smtpd[4242]: warning: cannot get RSA certificate from file " + "/x" * 40
    print_error(LabError("client [127.0.0.1] " + "m" * 100, detail=line, hint="do [this] " + "h" * 100))
    err = capfd.readouterr().err.splitlines()
    assert err == ["labsim: client [127.0.0.1] " + "m" * 100, line, "Hint: do [this] " + "h" * 100], err


def test_labsim_sim_reports_through_the_one_printer(tmp_path) -> None:
    """labsim sim's errors are LabErrors printed like every command's: 'labsim sim: <message>', a hint, exit 1."""
    env = {**os.environ, "LABSIM_HOME": str(tmp_path / "none")}
    p = subprocess.run([*LABSIM, "sim", "--listen", "127.0.0.1:0"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert lines[0].startswith("labsim sim: ") and "main.cf" in lines[0], lines
    assert lines[-1] == "Hint: Create the lab configuration first: labsim up --backend sim", lines
