"""``labsim reset [LESSON]`` puts the lab at the start of a lesson (after a confirmation or --yes), and
``labsim progress`` shows which lesson steps the checks have passed; notebooks 2 and 3 start from the
stock TLS settings their text shows. On the simulator (no root needed) with the real lab CA and certbot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labsim import checks, lab, notebook
from labsim.maincf.model import MainCf
from tests.conftest import destroy, make_settings

LABSIM = str(Path(sys.executable).parent / "labsim")
pytestmark = pytest.mark.timeout(300)


def run(s, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABSIM, *args], capture_output=True, text=True, input=stdin,
                          env={**os.environ, **s.env()}, timeout=240)


def test_reset_to_a_lesson_and_progress() -> None:
    s = make_settings("sim")
    try:
        lab.up(s, "sim")
        assert run(s, "solve", "encrypt").returncode == 0  # certificate, postfix-tls, then encrypt
        assert run(s, "check").returncode == 1  # every step: all but opportunistic pass (encrypt excludes it)
        prog = json.loads(run(s, "progress", "--json").stdout)
        done = {p["step"] for p in prog if p["first_passed"]}
        assert {"certificate", "postfix-tls", "encrypt"} <= done and "opportunistic" not in done
        assert "3 configuring-postfix-tls" in run(s, "progress").stdout

        refused = run(s, "reset", "4", stdin="n\n")
        assert refused.returncode == 1 and "Nothing changed" in refused.stderr
        assert MainCf.load(s.config_dir).get("smtpd_tls_security_level") == "encrypt"

        p = run(s, "reset", "4", "--yes")
        assert p.returncode == 0, p.stderr
        assert "ready for lesson 4 (opportunistic-tls)" in p.stdout
        conf = MainCf.load(s.config_dir)
        assert conf.get("smtpd_tls_security_level") == "may"
        assert conf.get("smtpd_tls_cert_file") == str(s.live_dir() / "fullchain.pem")
        assert checks.run_check(s, "opportunistic").ok  # lesson 4's own step is not done, but its start is right

        p = run(s, "reset", "1", "--yes")
        assert p.returncode == 0, p.stderr
        assert not s.letsencrypt_dir.exists()
        assert MainCf.load(s.config_dir).get("smtpd_tls_cert_file") == str(s.snakeoil_cert)
        assert lab.backend_running(s) and lab.probe(s)
        # progress is kept across resets: what was passed once stays passed
        assert {p["step"] for p in json.loads(run(s, "progress", "--json").stdout) if p["first_passed"]} >= done
        assert run(s, "reset", "9", "--yes").returncode == 1
    finally:
        destroy(s)


def test_notebooks_2_and_3_start_from_the_stock_tls_settings(capsys) -> None:
    s = make_settings("sim")
    env = {k: v for k, v in os.environ.items()}
    try:
        os.environ.update(s.env())
        lab.up(s, "sim")
        notebook._solve_certificate(s)
        notebook._solve_postfix_tls(s)  # a learner who did lesson 3's terminal steps first
        notebook.setup("certificate")
        out = capsys.readouterr().out
        assert "put back to the stock ones" in out and "smtpd_tls_cert_file" in out
        conf = MainCf.load(s.config_dir)
        assert conf.get("smtpd_tls_cert_file") == str(s.snakeoil_cert) and "smtpd_tls_loglevel" not in conf.params
        notebook.setup("certificate")
        assert capsys.readouterr().out.strip() == "Ready: lab up, certificate issued."  # nothing to put back
    finally:
        os.environ.clear()
        os.environ.update(env)
        destroy(s)
