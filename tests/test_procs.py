"""The lab's pid files: a stale one never makes the lab signal a stranger's process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from labsim import procs


def test_pidfile_round_trip_and_stop(tmp_path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pidfile = tmp_path / "x.pid"
        procs.write_pidfile(pidfile, child.pid)
        assert procs.read_pidfile(pidfile) == child.pid
        assert procs.read_pidfile(pidfile, expect="python") == child.pid
        assert procs.read_pidfile(pidfile, expect="nsd") is None  # alive, but not what the file is for
        assert procs.stop_pidfile(pidfile, timeout=5)
        child.wait(5)
        assert not pidfile.exists() and procs.read_pidfile(pidfile) is None
    finally:
        child.kill()


def test_a_stale_pidfile_naming_a_strangers_process_is_not_ours(tmp_path) -> None:
    """After a reboot the recorded pid may be someone else's: the start time recorded beside it differs."""
    stranger = os.getppid()  # alive, and certainly not started at the recorded time
    pidfile = tmp_path / "stale.pid"
    pidfile.write_text(f"{stranger} 1000.00 /usr/sbin/nsd -c /old/home/nsd.conf\n")
    assert procs.read_pidfile(pidfile) is None
    assert procs.stop_pidfile(pidfile) is False  # nothing signalled
    assert procs.alive(stranger) and not pidfile.exists()


def test_garbage_and_missing_pidfiles(tmp_path) -> None:
    (tmp_path / "g.pid").write_text("not a pid\n")
    assert procs.read_pidfile(tmp_path / "g.pid") is None
    assert procs.read_pidfile(tmp_path / "none.pid") is None


def test_a_stale_ca_pid_file_does_not_make_stop_signal_a_stranger(tmp_path) -> None:
    """acme.stop signals a process group: only after the pid file's process is shown to be the lab's."""
    from labsim import acme
    from tests.conftest import make_settings

    s = make_settings("sim")
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        s.run_dir.mkdir(parents=True, exist_ok=True)
        (s.run_dir / "pebble.pid").write_text(f"{stranger.pid}\n")  # a bare pid, as an old lab wrote it
        assert acme.pid(s, "pebble") is None and not acme.is_running(s)
        acme.stop(s)
        assert stranger.poll() is None, "acme.stop signalled a process that is not the lab's pebble"
    finally:
        stranger.kill()
        shutil.rmtree(s.home, ignore_errors=True)
