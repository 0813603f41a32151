"""`make lab`'s last step: `labsim course` starts the lab and JupyterLab on 127.0.0.1, URL printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from labsim import lab
from labsim.ports import wait_listening

LABSIM = str(Path(sys.executable).parent / "labsim")


def test_course_opens_jupyterlab_on_loopback(lab_settings):
    s = lab_settings
    env = {**os.environ, **s.env(), "LABSIM_BACKEND": "postfix", "JUPYTER_RUNTIME_DIR": str(s.home / "jr")}
    proc = subprocess.Popen([LABSIM, "course"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    try:
        if not wait_listening(s.jupyter_port, "127.0.0.1", timeout=90):
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("JupyterLab did not start:\n" + proc.communicate()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{s.jupyter_port}/lab", timeout=10) as r:
            assert r.status == 200  # redirected to the login page without the token, which is fine
        out = subprocess.run(["ss", "-ltnH", f"sport = :{s.jupyter_port}"], capture_output=True, text=True).stdout
        assert out and all(line.split()[3].startswith("127.0.0.1:") for line in out.splitlines())
        assert lab.status(s)["running"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
    assert f"http://127.0.0.1:{s.jupyter_port}/" in output
    assert "token=" in output  # JupyterLab's own URL with its token
