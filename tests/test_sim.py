"""The simulator on its own: main.cf model, process control, and robustness (fuzz, stress, hostile clients).

Runs without root and without Postfix; parity with the real Postfix is tests/test_sim_parity.py.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from labsim.backends import postfix as lab_postfix
from labsim.errors import LabError, PortInUseError
from labsim.backends import sim as sim_backend
from labsim.maincf.model import MainCf, parse
from tests.sim_fixtures import TLS, new_settings, play, read_reply, remove_home, step, wait_for_log

pytestmark = pytest.mark.timeout(120)
RCPT = "student@lab.itpro.tv"


# --- main.cf model ---------------------------------------------------------------------------------------
def test_parse_comments_continuations_last_wins() -> None:
    text = "a = 1\n# note\nb = x\n  y\n\t# indented comment\n  z\n\na = 2\nnot a parameter\n"
    assert parse(text) == {"a": "2", "b": "x  y  z"}  # Postfix keeps the indentation, drops the newline


def test_expansion_forms_and_defaults(tmp_path) -> None:
    conf = MainCf.from_text(
        "myhostname = mx.lab.example\ncompatibility_level = 3.6\nx = ${myhostname?{yes}:{no}} ${nothing:fallback}"
        " $(mydomain) ${{$compatibility_level} <level {3.6} ? {old} : {new}}\n", tmp_path)
    assert conf.get("x") == "yes fallback lab.example new"
    assert conf.get("mydomain") == "lab.example"  # derived from myhostname, as Postfix does
    assert conf.get("smtpd_banner") == "mx.lab.example ESMTP Postfix"  # a 3.7 default, expanded
    assert conf.get("smtpd_relay_restrictions") == "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
    assert conf.raw("smtpd_tls_security_level") == ""


def test_edit_keeps_place_and_comments(tmp_path) -> None:
    (tmp_path / "main.cf").write_text("# top\nb = 1\n  continued\nc = 3\nb = dup\n")
    conf = MainCf.load(tmp_path)
    conf.save(changes={"b": "new", "d": "4"}, remove=["c"])
    assert (tmp_path / "main.cf").read_text() == "# top\nb = new\nd = 4\n"


# --- a running simulator ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim():
    s = new_settings()
    lab_postfix.create_config(s)
    lab_postfix.postconf(s, "-e", "smtpd_starttls_timeout=1s", "smtpd_timeout=3s", check=True)
    sim_backend.start(s)
    yield s
    sim_backend.stop(s)
    assert not sim_backend.is_running(s)
    remove_home(s)


def alive(port: int) -> None:
    """The server still answers a whole session after whatever the test did."""
    t = play(port, ["EHLO check", "NOOP", "QUIT"])
    assert t[-1] == "< 221 2.0.0 Bye", t


def test_start_is_idempotent_and_port_in_use_names_the_variable(sim) -> None:
    assert sim_backend.is_running(sim)
    assert sim_backend.start(sim) == int(sim_backend.pid_file(sim).read_text().split()[0])
    other = new_settings().with_(smtp_port=sim.smtp_port)
    lab_postfix.create_config(other)
    try:
        with pytest.raises(PortInUseError) as info:
            sim_backend.start(other)
        assert str(sim.smtp_port) in str(info.value) and "LABSIM_SMTP_PORT" in str(info.value)
    finally:
        remove_home(other)


def test_start_without_config_is_a_lab_error() -> None:
    s = new_settings()
    try:
        with pytest.raises(LabError, match="main.cf"):
            sim_backend.start(s)
    finally:
        remove_home(s)


def test_reload_rereads_main_cf(sim) -> None:
    lab_postfix.postconf(sim, "-e", "smtpd_banner=$myhostname ESMTP reloaded", check=True)
    sim_backend.reload(sim)
    wait_for_log(sim, "reload -- version 3.7.11")
    try:
        assert play(sim.smtp_port, ["QUIT"])[0] == "< 220 lab.itpro.tv ESMTP reloaded"
    finally:
        lab_postfix.postconf(sim, "-e", "smtpd_banner=$myhostname ESMTP $mail_name (Debian/GNU)", check=True)
        sim_backend.reload(sim)
        time.sleep(0.3)


def test_delivery_into_the_lab_maildir_with_received_header(sim) -> None:
    before = set(sim.mailbox.joinpath("new").glob("*"))
    t = play(sim.smtp_port, ["EHLO c.example", "STARTTLS", TLS, "EHLO c.example", "MAIL FROM:<a@example.org>",
                             f"RCPT TO:<{RCPT}>", "DATA", b"Subject: hi\r\n\r\n..x\r\n.\r\n", "QUIT"])
    assert any(line.startswith("< 250 2.0.0 Ok: queued as ") for line in t), t
    new = set(sim.mailbox.joinpath("new").glob("*")) - before
    assert len(new) == 1
    text = new.pop().read_text()
    assert "Received: from c.example (localhost [127.0.0.1])\n\tby lab.itpro.tv (Postfix) with ESMTPS id " in text
    assert text.rstrip().endswith("\n.x")
    log = wait_for_log(sim, "quit=1 commands=7")
    assert "status=sent (delivered to maildir)" in log
    assert "ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7" in log


def test_never_an_open_relay_from_loopback(sim) -> None:
    t = play(sim.smtp_port, ["EHLO x", "MAIL FROM:<a@b.example>", "RCPT TO:<victim@example.com>", "QUIT"])
    assert t[-3] == "< 454 4.7.1 <victim@example.com>: Relay access denied"
    assert "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: 454 4.7.1" in wait_for_log(sim, "NOQUEUE")


def test_listens_on_loopback_only(sim) -> None:
    """The kernel's table of listening sockets shows the simulator's port bound to 127.0.0.1 and nothing
    else (this holds on a host with no address but loopback too, where connecting elsewhere proves nothing)."""
    import psutil

    bound = {c.laddr.ip for c in psutil.net_connections(kind="inet")
             if c.status == psutil.CONN_LISTEN and c.laddr.port == sim.smtp_port}
    assert bound == {"127.0.0.1"}, bound
    others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1", "127.0.1.1"}
    for addr in others:
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex((addr, sim.smtp_port)) != 0


# --- hostile and broken clients ---------------------------------------------------------------------------
def test_plaintext_pipelined_behind_starttls_is_discarded(sim) -> None:
    t = play(sim.smtp_port, [step(b"EHLO h\r\nSTARTTLS\r\nMAIL FROM:<injected@x>\r\n", 2), TLS, "NOOP", "QUIT"])
    assert t[3] == "< 220 2.0.0 Ready to start TLS" and t[4].startswith("[TLS")
    assert t[6] == "< 250 2.0.0 Ok", "the injected MAIL FROM was answered inside TLS"


def test_second_starttls_and_garbage_handshake(sim) -> None:
    t = play(sim.smtp_port, ["EHLO h", "STARTTLS", TLS, "STARTTLS", "QUIT"])
    assert "< 554 5.5.1 Error: TLS already active" in t
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=5) as s:
        buf = bytearray()
        read_reply(s, buf)
        s.sendall(b"STARTTLS\r\n")
        assert read_reply(s, buf) == "220 2.0.0 Ready to start TLS"
        s.sendall(b"\x16\x03\x01 this is not a ClientHello" * 20 + b"\r\n")
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
    assert time.monotonic() - start < 4
    alive(sim.smtp_port)


def test_stalled_handshake_is_closed_at_starttls_timeout(sim) -> None:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=6) as s:
        buf = bytearray()
        read_reply(s, buf)
        s.sendall(b"STARTTLS\r\n")
        assert read_reply(s, buf) == "220 2.0.0 Ready to start TLS"
        try:
            assert s.recv(4096) == b""  # closed by the server, no handshake ever sent
        except ConnectionResetError:
            pass
    assert 0.8 < time.monotonic() - start < 4
    alive(sim.smtp_port)


def test_client_vanishing_mid_data_and_slow_client(sim) -> None:
    with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=5) as s:
        buf = bytearray()
        read_reply(s, buf)
        s.sendall(f"EHLO h\r\nMAIL FROM:<a@b>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n".encode())
        for _ in range(4):
            read_reply(s, buf)
        s.sendall(b"Subject: half a message\r\n")
    assert "lost connection after DATA from localhost[127.0.0.1]" in wait_for_log(sim, "lost connection after DATA")
    with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=5) as s:  # one byte at a time
        buf = bytearray()
        read_reply(s, buf)
        for byte in b"NOOP\r\n":
            s.sendall(bytes([byte]))
            time.sleep(0.02)
        assert read_reply(s, buf) == "250 2.0.0 Ok"
    alive(sim.smtp_port)


def test_idle_client_times_out(sim) -> None:
    with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=8) as s:
        buf = bytearray()
        read_reply(s, buf)
        start = time.monotonic()
        assert read_reply(s, buf, timeout=8) == "421 4.4.2 lab.itpro.tv Error: timeout exceeded"
        assert time.monotonic() - start < 6


def test_too_many_errors_ends_the_session(sim) -> None:
    t = play(sim.smtp_port, ["EHLO h", *["FOO"] * 20, "NOOP"])
    assert t[-1] == "< 421 4.7.0 lab.itpro.tv Error: too many errors"


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(min_size=0, max_size=300).map(lambda b: b.replace(b"\n", b"")), min_size=1, max_size=12))
def test_fuzz_every_line_gets_a_reply_or_a_close(sim, lines: list[bytes]) -> None:
    """Random bytes as command lines (no DATA/BDAT/STARTTLS, which change the framing): one reply each
    while the session lasts, well-formed, and the server keeps serving."""
    framing = (b"DATA", b"BDAT", b"STARTTLS", b"QUIT")
    with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=5) as s:
        buf = bytearray()
        assert read_reply(s, buf).startswith("220 ")
        for line in lines:
            if line.strip().upper().startswith(framing):
                continue
            try:
                s.sendall(line + b"\r\n")
            except OSError:
                break
            reply = read_reply(s, buf, timeout=3)
            if reply is None:  # a close: only after 221 (forbidden command) or 421 (too many errors)
                break
            code = reply[:3]
            assert code.isdigit() and code[0] in "2345", reply
            if code in ("221", "421"):
                break


def test_ten_thousand_malformed_lines_are_answered(sim) -> None:
    import random

    rnd = random.Random(202450)
    words = ["MAIL", "RCPT", "VRFY", "EHLO", "HELO", "NOOP", "RSET", "ETRN", "XYZZY", "mail from:", "RCPT TO:<"]
    sent = answered = 0
    deadline = time.monotonic() + 25
    while sent < 10_000 and time.monotonic() < deadline:
        batch = []
        for _ in range(19):  # stay under smtpd_hard_error_limit in each session
            junk = bytes(rnd.randrange(33, 127) for _ in range(rnd.randrange(0, 40)))
            batch.append(rnd.choice(words).encode() + b" " + junk.replace(b".", b"x"))
        with socket.create_connection(("127.0.0.1", sim.smtp_port), timeout=5) as s:
            buf = bytearray()
            read_reply(s, buf)
            s.sendall(b"".join(line + b"\r\n" for line in batch))
            for _ in batch:
                reply = read_reply(s, buf)
                if reply is None:
                    break
                answered += 1
        sent += len(batch)
    assert sent >= 10_000, f"only {sent} lines in the time allowed"
    assert answered == sent
    alive(sim.smtp_port)


def test_hundreds_of_concurrent_sessions(sim) -> None:
    def session(i: int) -> str:
        t = play(sim.smtp_port, ["EHLO c", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>", "DATA",
                                 f"Subject: {i}\r\n\r\nstress\r\n.".encode() + b"\r\n", "QUIT"])
        return t[-1]

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=300) as pool:
        results = list(pool.map(session, range(300)))
    elapsed = time.monotonic() - start
    assert results.count("< 221 2.0.0 Bye") == 300, {r for r in results}
    assert elapsed < 30, elapsed
    alive(sim.smtp_port)


# --- the master and its smtpd workers (labsim.sim.app) -------------------------------------------------------
def _procs_of(s) -> list[str]:
    """Processes still running that belong to lab ``s`` (its home on their command line or in their environment)."""
    from labsim import procs

    return procs.mentioning(str(s.home))


@pytest.fixture()
def workers_lab():
    """A simulator with three workers (more than this machine's CPUs, so the count is the setting's)."""
    s = new_settings().with_(sim_workers=3)
    lab_postfix.create_config(s)
    sim_backend.start(s)
    yield s
    sim_backend.stop(s)
    remove_home(s)


def _session_pids(s, text: str) -> set[int]:
    import re

    return {int(m) for m in re.findall(r"postfix/smtpd\[(\d+)\]: connect from", text)}


def _hold_sessions(port: int, count: int, hold: float = 0.3) -> list[str]:
    """``count`` clients at once, each reading the banner, waiting, then quitting: their banners."""
    def one(_: int) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            buf = bytearray()
            banner = read_reply(c, buf, timeout=10) or ""
            time.sleep(hold)
            c.sendall(b"QUIT\r\n")
            read_reply(c, buf)
            return banner

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_workers_exist_one_socket_each_with_its_pid(workers_lab) -> None:
    import psutil

    s = workers_lab
    master = sim_backend.master_pid(s)
    pids = sim_backend.workers(s)
    assert len(pids) == 3 and master not in pids, (master, pids)
    for pid in pids:
        assert psutil.Process(pid).ppid() == master
    # One listening socket on 127.0.0.1, shared: every listener of the port is the master or a worker.
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
                 and c.laddr.port == s.smtp_port]
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"} and {c.pid for c in listening} <= {master, *pids}
    assert sim_backend.worker_count(new_settings()) >= 1
    # Sessions are served by several workers, each logging with its own pid, as smtpd processes do.
    mark = s.log_file.stat().st_size
    seen: set[int] = set()
    for _ in range(10):
        _hold_sessions(s.smtp_port, 24)
        seen = _session_pids(s, wait_for_log(s, "disconnect from")[mark:])
        if len(seen) > 1:
            break
    assert len(seen) > 1 and seen <= set(pids), (seen, pids)
    text = s.log_file.read_text()
    assert text.count("daemon started -- version 3.7.11") == 1


def test_reload_reaches_every_worker_and_is_logged_once(workers_lab) -> None:
    s = workers_lab
    pids = set(sim_backend.workers(s))
    mark = s.log_file.stat().st_size
    lab_postfix.postconf(s, "-e", "smtpd_banner=$myhostname ESMTP reloaded", check=True)
    sim_backend.reload(s)  # returns once every worker has re-read main.cf
    seen: set[int] = set()
    banners: list[str] = []
    for _ in range(10):
        banners += _hold_sessions(s.smtp_port, 24)
        seen = _session_pids(s, wait_for_log(s, "disconnect from")[mark:])
        if seen == pids:
            break
    assert seen == pids, (seen, pids)  # every worker served a session after the reload ...
    assert set(banners) == {"220 lab.itpro.tv ESMTP reloaded"}, set(banners)  # ... with the new main.cf
    text = s.log_file.read_text()[mark:]
    assert text.count("postfix/master[") == text.count("reload -- version 3.7.11") == 1, text
    assert f"postfix/master[{sim_backend.master_pid(s)}]: reload -- version 3.7.11" in text
    assert set(sim_backend.workers(s)) == pids  # reloaded in place, as Postfix's master stays


def test_a_worker_that_dies_is_replaced(workers_lab) -> None:
    import os
    import signal

    s = workers_lab
    before = sim_backend.workers(s)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        now = sim_backend.workers(s)
        if len(now) == 3 and before[0] not in now:
            break
        time.sleep(0.1)
    assert len(now) == 3 and before[0] not in now, now
    assert f"pid {before[0]} killed by signal 9" in wait_for_log(s, f"pid {before[0]} killed")
    alive(s.smtp_port)


def test_down_leaves_no_process_even_after_the_master_is_killed() -> None:
    import os
    import signal

    import psutil

    for how in ("stop", "kill the master"):
        s = new_settings().with_(sim_workers=2)
        lab_postfix.create_config(s)
        try:
            master = sim_backend.start(s)
            pids = [master, *sim_backend.workers(s)]
            assert len(pids) == 3 and len(_procs_of(s)) == 3, _procs_of(s)
            if how == "kill the master":
                os.kill(master, signal.SIGKILL)  # the workers die with it (PR_SET_PDEATHSIG)
            sim_backend.stop(s)
            gone, running = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=5)
            assert not [p for p in running if p.status() != psutil.STATUS_ZOMBIE], (how, running)
            assert _procs_of(s) == [] and not sim_backend.is_running(s), (how, _procs_of(s))
            assert not sim_backend.pid_file(s).exists() and not sim_backend.state_file(s).exists()
            with socket.socket() as c:
                assert c.connect_ex(("127.0.0.1", s.smtp_port)) != 0, "something still listens"
        finally:
            sim_backend.stop(s)
            remove_home(s)


def test_queue_ids_are_unique_under_concurrent_sessions(workers_lab) -> None:
    import re

    s = workers_lab

    def session(i: int) -> str:
        t = play(s.smtp_port, ["EHLO c", "MAIL FROM:<a@b>", f"RCPT TO:<{RCPT}>", "DATA",
                               f"Subject: {i}\r\n\r\nids\r\n.".encode() + b"\r\n", "QUIT"], quiet=0.3)
        return next((line.rsplit(" ", 1)[1] for line in t if "queued as" in line), "")

    with ThreadPoolExecutor(max_workers=60) as pool:
        ids = list(pool.map(session, range(300)))
    assert all(re.fullmatch(r"[0-9A-F]{10,12}", q) for q in ids), [q for q in ids if not re.fullmatch(r"[0-9A-F]+", q)]
    assert len(set(ids)) == 300, len(set(ids))
    text = wait_for_log(s, ids[-1])
    served = {int(m) for m in re.findall(r"postfix/smtpd\[(\d+)\]: [0-9A-F]+: client=", text)}
    assert len(served) > 1, served  # the ids came from several workers


def test_fatal_configuration_is_logged_once_for_all_workers(workers_lab) -> None:
    """While smtpd cannot start, one fatal and one throttling line however many workers get clients."""
    s = workers_lab
    mark = s.log_file.stat().st_size
    lab_postfix.postconf(s, "-e", "smtpd_tls_security_level=encrpyt", check=True)
    sim_backend.reload(s)
    try:
        def knock(_: int) -> bytes:
            with socket.create_connection(("127.0.0.1", s.smtp_port), timeout=1.5) as c:
                try:
                    return c.recv(100)
                except socket.timeout:
                    return b""

        with ThreadPoolExecutor(max_workers=12) as pool:
            assert set(pool.map(knock, range(12))) == {b""}  # no banner for anyone
        text = wait_for_log(s, "throttling")[mark:]
        assert text.count('fatal: Invalid TLS level "encrpyt"') == 1, text
        assert text.count("bad command startup -- throttling") == 1, text
    finally:
        lab_postfix.postconf(s, "-e", "smtpd_tls_security_level=may", check=True)


def test_worker_count_setting() -> None:
    from labsim.settings import Settings

    assert Settings.from_env({"LABSIM_SIM_WORKERS": "3"}).sim_workers == 3
    assert sim_backend.worker_count(Settings(sim_workers=5)) == 5
    assert sim_backend.worker_count(Settings()) >= 1  # 0: one per CPU
    for bad in ("x", "-1", "1000"):
        with pytest.raises(LabError, match="LABSIM_SIM_WORKERS"):
            Settings.from_env({"LABSIM_SIM_WORKERS": bad})
