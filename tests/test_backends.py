"""The two mail servers behind one protocol (labsim.backends); lab.py dispatches through it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from labsim import backends, lab
from labsim.errors import LabError

from .conftest import destroy, make_settings

METHODS = ("prepare", "start", "stop", "reload", "running", "problems", "pid")


def test_both_backends_have_the_whole_protocol():
    wanted = {n for n, _ in inspect.getmembers(backends.Backend, inspect.isfunction) if not n.startswith("_")}
    assert wanted == set(METHODS)
    for b in backends.all_backends():
        assert b.name in backends.NAMES
        for m in METHODS:
            assert callable(getattr(b, m)), (b.name, m)
        for m in ("start", "stop", "reload", "is_running", "master_pid"):  # what each module itself must provide
            assert callable(getattr(b.module, m)), (b.name, m)


def test_an_unknown_backend_is_a_clear_error():
    with pytest.raises(LabError) as e:
        backends.get("exim")
    assert "exim" in e.value.message and "postfix, sim" in e.value.hint


def test_lab_does_not_reach_into_a_backend_module():
    """lab.py starts, stops and reloads servers only through labsim.backends."""
    tree = ast.parse(Path(lab.__file__).read_text())
    calls = {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)}
    assert not calls & {f"{m}.{f}" for m in ("postfix", "sim", "sim_backend")
                        for f in ("start", "stop", "reload", "is_running")}
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not {m for m, _ in imported} & {"sim", "backends.sim", "labsim.sim", "labsim.backends.sim"}
    assert ("backends", "sim") not in imported and ("labsim.backends", "sim") not in imported


def test_the_simulator_through_the_protocol():
    s = make_settings("sim")
    try:
        lab.up(s, "sim", with_ca=False)
        sim = backends.get("sim")
        assert sim.running(s) and lab.backend_running(s)
        assert isinstance(sim.pid(s), int) and backends.get("postfix").pid(s) is None
        sim.reload(s)
        assert sim.running(s)
        assert sim.problems(s) == []
        lab.down(s)
        assert not sim.running(s) and not backends.get("postfix").running(s) and sim.pid(s) is None
    finally:
        destroy(s)


@pytest.mark.parametrize("backend", ["postfix", "sim"])
def test_chain_files_win_over_the_cert_and_key_files(backend):
    """smtpd_tls_chain_files, when set, names what smtpd serves, whatever smtpd_tls_cert_file says (Postfix
    3.4+); the one rule (MainCf.server_tls_files) says the same as the server the learner talks to."""
    import ssl

    from labsim import certs, checks
    from labsim.backends import postfix
    from labsim.maincf import MainCf, TLSFiles
    from labsim.smtpprobe import Conn

    from .conftest import need_postfix

    if backend == "postfix":
        need_postfix()
    s = make_settings(backend)
    try:
        lab.up(s, backend, with_ca=False)
        key, cert = s.ssl_dir / "chain-key.pem", s.ssl_dir / "chain-cert.pem"
        certs.self_signed(cert, key, ["chain.lab.itpro.tv"])
        postfix.postconf(s, "-e", f"smtpd_tls_chain_files = {key}, {cert}", check=True)
        lab.reload(s)
        files = MainCf.load(s.config_dir).server_tls_files()
        assert files == TLSFiles(str(cert), str(key), (str(key), str(cert)))
        assert checks.configured_files(s) == (str(cert), str(key))
        assert postfix.get(s, "smtpd_tls_cert_file") == str(s.snakeoil_cert)  # still set, and ignored
        with Conn(s.host, s.smtp_port) as c:
            c.cmd("EHLO probe.lab")
            served = c.starttls(s.domain, verify=False).getpeercert(binary_form=True)
        assert served == ssl.PEM_cert_to_DER_cert(cert.read_text())
    finally:
        destroy(s)


def test_the_one_tail_reader_starts_at_a_line(tmp_path):
    """backends.postfix.tail, the reader of a file's end (the lab log, the simulator's stderr): a line the cut
    lands inside is dropped, one the cut lands at the start of is kept, no file is ''."""
    from labsim.backends.postfix import tail

    f = tmp_path / "maillog"
    f.write_text("first line\nsecond\nthird\n")
    assert tail(f) == "first line\nsecond\nthird\n"
    assert tail(f, len("second\nthird\n")) == "second\nthird\n"  # the cut at a line start
    assert tail(f, len("econd\nthird\n")) == "third\n"  # inside "second": dropped
    assert tail(f, 3) == ""  # inside the last line
    assert tail(tmp_path / "none") == ""


def test_a_simulator_that_exits_at_once_says_why():
    """The simulator's own words (its stderr, read by the one tail reader) are the error's detail."""
    from labsim.backends import postfix, sim

    s = make_settings("sim")
    try:
        postfix.create_config(s)
        postfix.postconf(s, "-e", "append_at_myorigin = perhaps", check=True)
        with pytest.raises(LabError) as e:
            sim.start(s)
        assert "exited at once" in e.value.message
        assert "fatal: bad boolean configuration: append_at_myorigin = perhaps" in e.value.detail
        assert not sim.is_running(s)
    finally:
        destroy(s)
