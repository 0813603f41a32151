"""Errors that teach, settings from the environment, and the lab's safety promises."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labsim import lab
from labsim.backends import postfix
from labsim.errors import LabError, MissingPackageError, PortInUseError
from labsim.settings import PORTS, Settings

from .conftest import ETC_POSTFIX, make_settings, tree_digest

LABSIM = str(Path(sys.executable).parent / "labsim")


def run_cli(settings: Settings, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.env()}
    cmd = [LABSIM, *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_settings_from_env_and_back():
    env = {"LABSIM_HOME": "/tmp/x-lab", "LABSIM_SMTP_PORT": "3025", "LABSIM_DOMAIN": "Mail.Example.ORG"}
    s = Settings.from_env(env)
    assert s.home == Path("/tmp/x-lab") and s.smtp_port == 3025 and s.domain == "mail.example.org"
    assert s.config_dir == Path("/tmp/x-lab/postfix")
    assert s.live_dir() == Path("/tmp/x-lab/letsencrypt/live/mail.example.org")
    assert Settings.from_env(s.env()) == s
    assert s.env()["MAIL_CONFIG"] == "/tmp/x-lab/postfix"
    # every port has its own variable, and defaults are distinct
    defaults = [d for _a, _v, d in PORTS]
    assert len(set(defaults)) == len(defaults)
    assert Settings.from_env({}).smtp_port == 2525


@pytest.mark.parametrize("raw", ["abc", "0", "70000", "-1"])
def test_bad_port_variable_is_explained(raw):
    with pytest.raises(LabError) as e:
        Settings.from_env({"LABSIM_SMTP_PORT": raw})
    assert f"LABSIM_SMTP_PORT={raw!r} is not a TCP port" in e.value.message
    assert "LABSIM_SMTP_PORT" in e.value.hint


def test_bad_backend_is_explained():
    with pytest.raises(LabError, match="not a backend"):
        Settings.from_env({"LABSIM_BACKEND": "exim"})


def test_port_in_use_names_port_and_variable(lab_settings):
    s = lab_settings
    with socket.socket() as blocker:
        blocker.bind((s.host, s.smtp_port))
        blocker.listen()
        with pytest.raises(PortInUseError) as e:
            lab.up(s, "postfix", with_ca=False)
        assert f"Port {s.smtp_port}" in e.value.message
        assert "export LABSIM_SMTP_PORT=" in e.value.hint
        proc = run_cli(s, "up", "--backend", "postfix")
    assert proc.returncode == 1
    assert "already in use" in proc.stderr and "LABSIM_SMTP_PORT" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not postfix.is_running(s)


def test_ca_port_in_use_is_named(lab_settings):
    s = lab_settings
    with socket.socket() as blocker:
        blocker.bind((s.host, s.acme_port))
        blocker.listen()
        with pytest.raises(PortInUseError, match=str(s.acme_port)) as e:
            lab.up(s, "postfix")
    assert "LABSIM_ACME_PORT" in e.value.hint


def test_not_root_says_what_works(lab_settings):
    s = lab_settings
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    postfix.create_config(s)
    proc = run_cli(s, "up", "--backend", "postfix", user="65534")
    assert proc.returncode == 1
    assert "needs root" in proc.stderr and "--backend sim" in proc.stderr
    assert "postconf" in proc.stderr  # what still works without root
    # ...and it does work: reading the lab configuration as an ordinary user
    proc = run_cli(s, "postconf", "-h", "smtpd_tls_security_level", user="65534")
    assert proc.returncode == 0 and proc.stdout.strip() == "may"


def test_auto_backend_without_root_picks_simulator(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    backend, why = lab.choose_backend(Settings(home=Path("/nonexistent"), backend="auto"))
    assert backend == "sim" and "root" in why


def test_missing_postfix_gives_the_install_command(monkeypatch):
    # Postfix cannot be uninstalled under a running suite; pretend its commands are absent.
    monkeypatch.setattr(postfix, "find", lambda cmd: None)
    with pytest.raises(MissingPackageError) as e:
        postfix.require_installed()
    assert "apt-get install -y postfix" in e.value.hint and "--backend sim" in e.value.hint
    backend, why = lab.choose_backend(Settings(home=Path("/nonexistent"), backend="auto"))
    assert backend == "sim" and "apt-get install postfix" in why


def test_status_json_cli_and_second_up_is_safe(lab_settings):
    s = lab_settings
    first = run_cli(s, "up", "--backend", "postfix")
    assert first.returncode == 0, first.stderr
    main_cf = (s.config_dir / "main.cf").read_text()
    again = run_cli(s, "up", "--backend", "postfix")
    assert again.returncode == 0, again.stderr
    assert (s.config_dir / "main.cf").read_text() == main_cf  # a second up changes nothing
    st = json.loads(run_cli(s, "status", "--json").stdout)
    for key in ("backend", "running", "smtp_port", "config_dir", "cert_file", "key_file",
                "tls_security_level", "lab_ca"):
        assert key in st
    assert st["backend"] == "postfix" and st["running"] is True and st["smtp_port"] == s.smtp_port
    assert st["config_dir"] == str(s.config_dir) and st["tls_security_level"] == "may"
    assert Path(st["lab_ca"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    down = run_cli(s, "down")
    assert down.returncode == 0 and not postfix.is_running(s)


def test_lab_stays_in_its_home_and_on_loopback(lab_settings):
    s = lab_settings
    before = tree_digest(ETC_POSTFIX)
    lab.up(s, "postfix")
    postfix.postconf(s, "-e", "smtpd_tls_security_level=encrypt", check=True)
    lab.restart(s)
    # every listening socket of the lab's processes is on 127.0.0.1
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    lab_ports = {str(p) for p in s.ports().values()}
    for line in out.splitlines():
        local = line.split()[3]
        port = local.rsplit(":", 1)[1]
        if port in lab_ports:
            assert local.startswith("127.0.0.1:"), line
    # nothing on port 25, and /etc/postfix is untouched
    assert not any(line.split()[3].endswith(":25") for line in out.splitlines())
    lab.down(s)
    assert tree_digest(ETC_POSTFIX) == before
    # private keys the lab made are 0600
    for key in (s.snakeoil_key, s.acme_dir / "endpoint.key"):
        assert key.stat().st_mode & 0o777 == 0o600


def test_unreachable_home_is_explained(tmp_path):
    # pytest's tmp_path sits below a 0700 directory: the postfix user cannot get through.
    s = make_settings()
    shutil.rmtree(s.home)
    s = s.with_(home=tmp_path / "lab")
    postfix.create_config(s)
    with pytest.raises(LabError, match="postfix user cannot reach") as e:
        postfix.check_home_reachable(s)
    assert "LABSIM_HOME" in e.value.hint


def test_without_postfix_the_lesson_postconf_runs_the_work_alike(monkeypatch, lab_settings):
    # Pretend Postfix is absent: the lab's main.cf is still written, and a `postconf` on PATH answers.
    s = lab_settings
    monkeypatch.setattr(postfix, "find", lambda cmd: None)
    postfix.create_config(s)
    bindir = postfix.work_alike_bin(s)
    assert bindir is not None
    env = {**os.environ, "MAIL_CONFIG": str(s.config_dir), "PATH": f"/usr/bin:/bin:{bindir}"}
    out = subprocess.run(["bash", "-c", "postconf smtpd_tls_security_level; postconf -e smtpd_tls_loglevel=1; "
                          "postconf -n | grep smtpd_tls_loglevel"], capture_output=True, text=True, env=env)
    assert out.stdout.splitlines() == ["smtpd_tls_security_level = may", "smtpd_tls_loglevel = 1"], out.stderr
    assert "smtpd_tls_loglevel = 1" in (s.config_dir / "main.cf").read_text()


def test_a_main_cf_too_broken_to_expand_is_reported_not_fatal():
    """status and doctor go on when main.cf's $names call each other: the error is a problem line."""
    s = make_settings("sim")
    try:
        postfix.create_config(s)
        main_cf = s.config_dir / "main.cf"
        main_cf.write_text(main_cf.read_text() + "smtpd_tls_cert_file = $smtpd_tls_key_file\n"
                           "smtpd_tls_key_file = $smtpd_tls_cert_file\n")
        st = lab.status(s)
        assert st["cert_file"] == "" and any("unreasonable macro call nesting" in p for p in st["problems"])
        assert lab.doctor(s)  # findings, not a traceback
    finally:
        shutil.rmtree(s.home, ignore_errors=True)


def test_pid_files_with_group_numbers_name_no_process(tmp_path):
    """0 and negative pids mean process groups to kill(2): a pid file holding one names no process."""
    from labsim import procs

    for text in ("-1\n", "0\n", "-4242 1.0 x\n"):
        (tmp_path / "x.pid").write_text(text)
        assert procs.read_pidfile(tmp_path / "x.pid") is None
    assert not procs.alive(0) and not procs.alive(-1)
