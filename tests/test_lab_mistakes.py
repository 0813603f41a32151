"""Each mistake the docs describe, made through the ``labsim`` command on both backends, and what the lab
says about it: a misspelt parameter, an invalid TLS level, a wrong certificate path, a key of another
certificate, the lab port taken, ``up`` twice, a stale pid file. The wording asserted is what a learner
reads; the log lines quoted are the server's own (real Postfix 3.7.11, or the simulator's copy)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim import acme, certs, lab
from labsim.backends import postfix
from labsim.settings import Settings
from tests.conftest import destroy, make_settings, need_postfix

LABSIM = str(Path(sys.executable).parent / "labsim")
BACKENDS = ["postfix", "sim"]
pytestmark = pytest.mark.timeout(300)


def run(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **s.env(), "COLUMNS": "200"}
    return subprocess.run([LABSIM, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module", params=BACKENDS)
def running(request) -> Iterator[Settings]:
    if request.param == "postfix":
        need_postfix()
    s = make_settings(request.param)
    lab.up(s, request.param, with_ca=False)
    yield s
    destroy(s)


def test_misspelt_parameter_is_flagged_with_the_nearest_name(running: Settings) -> None:
    s = running
    p = run(s, "postconf", "-e", f"smtpd_tls_cert_fle={s.snakeoil_cert}")
    assert p.returncode == 0  # as postconf: the edit is made
    assert "smtpd_tls_cert_fle, which is not a Postfix parameter (did you mean smtpd_tls_cert_file" in p.stderr
    assert "Undo: labsim postconf -X smtpd_tls_cert_fle" in p.stderr
    st = run(s, "status", "--json")
    assert any("smtpd_tls_cert_fle" in u for u in __import__("json").loads(st.stdout)["unused_parameters"])
    chk = run(s, "check", "postfix-tls")
    assert "note main.cf sets smtpd_tls_cert_fle" in chk.stdout
    doc = run(s, "doctor")
    assert "smtpd_tls_cert_fle, which is not a Postfix parameter" in doc.stdout
    assert run(s, "postconf", "-X", "smtpd_tls_cert_fle").returncode == 0
    assert "smtpd_tls_cert_fle" not in run(s, "check", "postfix-tls").stdout
    ok = run(s, "postconf", "-e", "smtpd_tls_loglevel=1")
    assert ok.returncode == 0 and "not a Postfix parameter" not in ok.stderr


def test_invalid_level_reload_says_not_serving_and_restart_fixes(running: Settings) -> None:
    s = running
    run(s, "postconf", "-e", "smtpd_tls_security_level=encrpyt")
    p = run(s, "reload")
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"reloaded, but the mail server does not serve on {s.host}:{s.smtp_port}" in p.stderr
    assert 'fatal: Invalid TLS level "encrpyt"' in p.stderr
    assert "smtpd_tls_security_level takes none, may or encrypt" in p.stderr
    assert "reloaded\n" not in p.stdout
    run(s, "postconf", "-e", "smtpd_tls_security_level=may")
    p = run(s, "restart")
    assert p.returncode == 0 and p.stdout.strip() == "restarted" and not p.stderr, p.stderr


def test_wrong_certificate_path(running: Settings) -> None:
    s = running
    run(s, "postconf", "-e", f"smtpd_tls_cert_file={s.home}/no-such-cert.pem")
    try:
        p = run(s, "reload")
        assert p.returncode == 0  # it serves, without TLS
        assert "the server answers, but TLS does not work: STARTTLS refused: 454 4.7.0 TLS not available" in p.stderr
        assert "no-such-cert.pem" in p.stderr and "check the path" in p.stderr
        doc = run(s, "doctor")
        assert f"certificate file {s.home}/no-such-cert.pem does not exist" in doc.stdout
        assert "check the path in smtpd_tls_cert_file" in doc.stdout
    finally:
        run(s, "postconf", "-e", f"smtpd_tls_cert_file={s.snakeoil_cert}")
        assert run(s, "reload").stdout.strip() == "reloaded"


def test_key_of_another_certificate(running: Settings) -> None:
    s = running
    certs.self_signed(s.home / "other.pem", s.home / "other.key", ["other.example"])
    run(s, "postconf", "-e", f"smtpd_tls_key_file={s.home}/other.key")
    try:
        p = run(s, "reload")
        assert "TLS does not work" in p.stderr
        assert "disabling TLS support" in p.stderr
        assert "smtpd_tls_key_file must be the key of smtpd_tls_cert_file" in p.stderr
        assert "must name a readable PEM certificate" not in p.stderr
        run(s, "postconf", "-e", "smtpd_tls_security_level=encrypt")
        assert run(s, "reload").returncode == 1  # at encrypt nobody can send
    finally:
        run(s, "postconf", "-e", f"smtpd_tls_key_file={s.snakeoil_key}", "smtpd_tls_security_level=may")
        assert run(s, "reload").stdout.strip() == "reloaded"


def test_up_twice_is_harmless(running: Settings) -> None:
    s = running
    p = run(s, "up", "--backend", lab.backend_of(s))
    assert p.returncode == 0 and "lab up" in p.stdout, p.stderr
    assert "Backend:" not in p.stderr  # asked for: no explanation
    if lab.backend_of(s) == "sim":
        env = {k: v for k, v in s.env().items() if k != "LABSIM_BACKEND"}
        q = subprocess.run([LABSIM, "up"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, **env, "LABSIM_BACKEND": "auto"})
        # auto on a running simulator lab: as root it picks postfix and refuses to switch; else it says why
        if os.geteuid() == 0 and postfix.installed():
            assert q.returncode == 1 and "The lab is running with the sim backend" in q.stderr
        else:
            assert q.returncode == 0 and "Backend: sim (starting a real Postfix needs root" in q.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_port_taken_fails_and_rolls_back(backend: str) -> None:
    if backend == "postfix":
        need_postfix()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    s = make_settings(backend, smtp_port=blocker.getsockname()[1])
    try:
        p = run(s, "up", "--backend", backend)
        assert p.returncode == 1
        assert str(s.smtp_port) in p.stderr and "LABSIM_SMTP_PORT" in p.stderr, p.stderr
        assert not acme.is_running(s), "a failed up left the lab CA running"
        assert not lab.backend_running(s, backend)
        doc = run(s, "doctor")
        assert f"port {s.smtp_port} (LABSIM_SMTP_PORT) is in use by another program" in doc.stdout
        assert "this lab's own" not in doc.stdout
    finally:
        blocker.close()
        destroy(s)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stale_pid_file_and_own_leftovers(backend: str) -> None:
    if backend == "postfix":
        need_postfix()
    s = make_settings(backend)
    try:
        postfix.create_config(s)
        # A pid file left by a crash, naming a pid now used by another program (this test's own process).
        if backend == "postfix":
            pidfile = s.queue_dir / "pid" / "master.pid"
        else:
            pidfile = s.run_dir / "sim.pid"
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{os.getpid():>10}\n")
        assert not lab.backend_running(s, backend)
        p = run(s, "up", "--backend", backend)
        assert p.returncode == 0, p.stderr
        assert lab.backend_running(s, backend) and lab.probe(s)
        # The lab's own CA left running while the lab's state says down: doctor names it as the lab's.
        if acme.is_running(s):
            lab.down(s)
            acme.start(s)
            doc = run(s, "doctor")
            assert f"port {s.acme_port} (LABSIM_ACME_PORT) is held by this lab's own pebble" in doc.stdout, doc.stdout
            assert "labsim down stops every process of the lab" in doc.stdout
    finally:
        destroy(s)
