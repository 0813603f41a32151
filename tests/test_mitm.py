"""The attacker in the middle, against real clients (swaks, posttls-finger, smtplib) and a real Postfix lab.

Who is fooled and who refuses, through the stripper, with the lab's server at ``smtpd_tls_security_level
= may``: an opportunistic client goes on in clear and the attacker reads the mail; a client that requires
TLS refuses to send. posttls-finger is a probe, not a policy: at any ``-l`` level it only reports that no
TLS happened.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labsim import mailbox
from labsim.backends import postfix
from labsim.mitm import hello as mitm_tls
from labsim.errors import LabError, PortInUseError
from labsim.mitm import STARTTLS_REFUSED, Mitm, transcript_file
from labsim.ports import free_ports
from labsim.settings import Settings


def _tmp_home(prefix: str) -> Path:
    """A temporary home the postfix user can pass through (pytest's own tmp dirs are mode 0700)."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(home, 0o711)
    return home


@pytest.fixture()
def bare() -> Iterator[Settings]:
    """Settings with free ports and a temporary home, no server."""
    home = _tmp_home("labsim-mitm-bare-")
    smtp, mitm = free_ports(2)
    yield Settings(home=home / "lab", smtp_port=smtp, mitm_port=mitm)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module", params=["postfix", "sim"])
def lab(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """A lab at smtpd_tls_security_level=may (the stock Debian setting), for this module: the real Postfix,
    then the simulator (an attacker must fool a client the same way whichever server is behind it)."""
    backend = request.param
    if backend == "postfix" and (not postfix.installed() or os.geteuid() != 0):
        pytest.skip("needs root and Debian's postfix package")
    home = _tmp_home("labsim-mitm-")
    smtp, mitm = free_ports(2)
    s = Settings(home=home / "lab", smtp_port=smtp, mitm_port=mitm, backend=backend)
    postfix.create_config(s)
    if backend == "postfix":
        postfix.start(s)
    else:
        from labsim.backends import sim as sim_backend

        sim_backend.start(s)
    try:
        yield s
    finally:
        if backend == "postfix":
            postfix.stop(s)
        else:
            sim_backend.stop(s)
        shutil.rmtree(home, ignore_errors=True)


def token() -> str:
    return uuid.uuid4().hex[:12]


def swaks(s: Settings, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("swaks"):
        pytest.skip("needs swaks")
    return subprocess.run(
        ["swaks", "--server", f"{s.host}:{s.mitm_port}", "--to", f"student@{s.domain}", "--from",
         "alice@example.org", "--body", body, "--timeout", "15", *args],
        capture_output=True, text=True, timeout=60,
    )




# --- without a server ---------------------------------------------------------------------------------

def test_client_hello_sni_and_versions_are_readable() -> None:
    """What the attacker reads from a real ClientHello (Python's ssl, i.e. OpenSSL, as every client here)."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="lab.itpro.tv")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = mitm_tls.parse_client_hello(outgoing.read())
    assert hello is not None
    assert hello.sni == "lab.itpro.tv"
    assert "TLS 1.3" in hello.versions
    assert "SNI lab.itpro.tv" in hello.describe()
    assert mitm_tls.parse_client_hello(b"EHLO x\r\n") is None


def fake_server(port: int, ehlo_reply: bytes, seen: list[bytes]) -> threading.Thread:
    """A one-connection SMTP server that records the commands it receives."""
    srv = socket.create_server(("127.0.0.1", port))

    def run() -> None:
        conn, _ = srv.accept()
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"220 fake ESMTP\r\n")
            for line in f:
                seen.append(line)
                verb = line.split()[0].upper() if line.strip() else b""
                if verb == b"EHLO":
                    conn.sendall(ehlo_reply)
                elif verb == b"QUIT":
                    conn.sendall(b"221 2.0.0 Bye\r\n")
                    break
                else:
                    conn.sendall(b"250 2.0.0 Ok\r\n")
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_strip_keeps_the_ehlo_reply_well_formed_and_refuses_starttls_itself(bare: Settings) -> None:
    """STARTTLS as the *last* EHLO line: the line before it must become ``250 `` or the client hangs."""
    import smtplib

    seen: list[bytes] = []
    t = fake_server(bare.smtp_port, b"250-fake\r\n250-PIPELINING\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n", seen)
    with Mitm(bare, "strip") as m:
        with smtplib.SMTP(bare.host, bare.mitm_port, timeout=5) as c:
            code, _ = c.ehlo("client.example")
            assert code == 250
            assert c.has_extn("smtputf8") and not c.has_extn("starttls")
            assert c.docmd("STARTTLS") == (502, b"5.5.1 Error: command not implemented")
            assert c.noop()[0] == 250  # still talking, in clear
        m.wait_closed(1)
    t.join(5)
    assert not any(ln.upper().startswith(b"STARTTLS") for ln in seen), "the server must never see STARTTLS"
    assert STARTTLS_REFUSED.startswith(b"502 5.5.1 Error: command not implemented")  # FACTS.md, level none
    text = m.text()
    assert "STRIPPED: deleted '250 STARTTLS'" in text and "'250-SMTPUTF8' became '250 SMTPUTF8'" in text
    assert "(forged by the attacker)" in text


def test_upstream_down_gets_a_421_and_a_hint(bare: Settings) -> None:
    with Mitm(bare, "observe") as m:
        with socket.create_connection((bare.host, bare.mitm_port), timeout=5) as c:
            assert c.recv(200).startswith(b"421 4.3.0 ")
        m.wait_closed(1)
    assert "labsim up" in m.text()


def test_listen_port_in_use_and_non_loopback_are_clear_errors(bare: Settings) -> None:
    with socket.create_server((bare.host, bare.mitm_port)):
        with pytest.raises(PortInUseError) as e:
            Mitm(bare).start()
        assert "LABSIM_MITM_PORT" in e.value.hint
    with pytest.raises(LabError):
        Mitm(bare, upstream=("192.0.2.1", 25))
    with pytest.raises(LabError):
        Mitm(bare, mode="sniff")


# --- against the real Postfix lab ----------------------------------------------------------------------

def test_observe_plaintext_session_shows_the_message(lab: Settings) -> None:
    t = token()
    with Mitm(lab, "observe") as m:
        r = swaks(lab, f"secret {t}")  # no TLS option: swaks stays in clear
        assert r.returncode == 0, r.stdout + r.stderr
        m.wait_closed(1)
    text = m.text()
    assert f"C: secret {t}" in text
    assert "S: 250-STARTTLS" in text  # offered, not used
    assert mailbox.find(lab, f"secret {t}")
    assert f"secret {t}" in transcript_file(lab).read_text()


def test_observe_starttls_session_shows_only_the_handshake_and_byte_counts(lab: Settings) -> None:
    t = token()
    with Mitm(lab, "observe") as m:
        r = swaks(lab, f"secret {t}", "--tls")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "TLS started with cipher TLSv1.3" in r.stdout
        # A client that vanishes mid-session (RST) must not disturb the proxy.
        c = socket.create_connection((lab.host, lab.mitm_port))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.sendall(b"EHLO gone.example\r\n")
        c.close()
        m.wait_closed(2)
    text = m.text(session=1)
    assert t not in m.text()
    assert "S: 220 2.0.0 Ready to start TLS" in text
    assert "STARTTLS accepted" in text
    assert "TLS ClientHello in clear" in text and "TLS ServerHello in clear: TLS 1.3" in text
    enc = [ln for ln in m.lines if ln.session == 1 and ln.text.startswith("encrypted: ")]
    assert enc and int(enc[0].text.split()[1]) > 100
    assert mailbox.find(lab, f"secret {t}")


def test_a_client_that_half_closes_still_gets_the_last_reply(lab: Settings) -> None:
    """``printf 'EHLO x\\r\\nQUIT\\r\\n' | nc -N``: the client stops sending before the server answers."""
    with Mitm(lab, "observe") as m:
        with socket.create_connection((lab.host, lab.mitm_port), timeout=10) as c:
            assert c.recv(512).startswith(b"220 ")
            c.sendall(b"EHLO halfclose.example\r\nQUIT\r\n")
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(4096):
                got += chunk
        m.wait_closed(1)
    assert got.endswith(b"221 2.0.0 Bye\r\n"), got


def test_strip_fools_tls_optional_and_tls_required_refuses(lab: Settings) -> None:
    fooled, careful = token(), token()
    with Mitm(lab, "strip") as m:
        r = swaks(lab, f"pay {fooled}", "--tls-optional")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "STARTTLS" not in r.stdout  # the client never saw it offered
        r2 = swaks(lab, f"pay {careful}", "--tls")
        assert r2.returncode != 0
        assert "*** Host did not advertise STARTTLS" in r2.stderr
        m.wait_closed(2)
    assert f"C: pay {fooled}" in m.text(session=1)
    assert "STRIPPED: deleted '250-STARTTLS'" in m.text(session=1)
    assert "C: MAIL FROM" not in m.text(session=2)
    assert mailbox.find(lab, f"pay {fooled}")
    assert mailbox.find(lab, f"pay {careful}", timeout=1.0) is None


def test_posttls_finger_reports_no_tls_through_the_stripper_at_any_level(lab: Settings) -> None:
    """posttls-finger never sends mail, so it neither goes on nor refuses: it reports. Directly it prints
    "Untrusted TLS connection established" (self-signed snakeoil); behind the stripper, at -l may and at
    -l encrypt alike, it sees no STARTTLS in the EHLO reply and just QUITs (exit 0, no TLS line)."""
    finger = postfix.find("posttls-finger")
    if not finger:
        pytest.skip("needs posttls-finger")
    env = {**os.environ, "MAIL_CONFIG": str(lab.config_dir)}  # it reads main.cf; never /etc/postfix

    def run(port: int, level: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([finger, "-l", level, f"[{lab.host}]:{port}"], capture_output=True, text=True,
                              env=env, timeout=60)

    for level in ("may", "encrypt"):
        direct = run(lab.smtp_port, level)
        established = f"Untrusted TLS connection established to {lab.host}[{lab.host}]:{lab.smtp_port}: TLSv1.3"
        assert established in direct.stdout + direct.stderr
    with Mitm(lab, "strip") as m:
        for level in ("may", "encrypt"):
            r = run(lab.mitm_port, level)
            out = r.stdout + r.stderr
            assert r.returncode == 0
            assert "TLS connection established" not in out
            assert "< 250 CHUNKING" in out and "STARTTLS" not in out and "> QUIT" in out
        m.wait_closed(2)
    assert m.text().count("STRIPPED") == 2


def test_tamper_changes_the_delivered_message(lab: Settings) -> None:
    t = token()
    with Mitm(lab, "tamper") as m:
        r = swaks(lab, f"Invoice {t}: pay account 1234 today.", "--tls-optional")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "pay account 1234" in r.stdout  # what the sender believes it sent
        m.wait_closed(1)
    msg = mailbox.find(lab, f"Invoice {t}")
    assert msg is not None
    assert f"Invoice {t}: pay account 6666 today." in msg and "pay account 1234" not in msg
    assert "TAMPERED: " in m.text() and "pay account 6666" in m.text()


def test_policies_are_small_and_separate():
    """observe, strip and tamper are three policies the proxy calls (labsim.mitm.policies)."""
    from labsim.mitm import Observe, Strip, Tamper, policy_for

    seen: list[tuple[str, str]] = []
    log = lambda who, text: seen.append((who, text))  # noqa: E731
    ehlo = [b"250-lab.itpro.tv\r\n", b"250-PIPELINING\r\n", b"250 STARTTLS\r\n"]
    assert Observe().ehlo_reply(ehlo, log) is None and Observe().client_starttls(log) is None
    assert Observe().data_line(b"pay account 1234\r\n", log) == b"pay account 1234\r\n" and not seen
    assert Strip().ehlo_reply(ehlo, log) == [b"250-lab.itpro.tv\r\n", b"250 PIPELINING\r\n"]
    assert any(who == "MITM" and text.startswith("STRIPPED:") for who, text in seen)
    assert Strip().ehlo_reply([b"250-x\r\n", b"250 SIZE 1\r\n"], log) is None  # nothing to strip
    assert Strip().client_starttls(log) == STARTTLS_REFUSED
    t = Tamper(b"1234", b"6666")
    assert t.data_line(b"pay account 1234\r\n", log) == b"pay account 6666\r\n"
    assert seen[-1][1].startswith("TAMPERED:") and t.client_starttls(log) == STARTTLS_REFUSED
    quiet = Tamper(b"1234", b"6666", strip=False)
    assert quiet.client_starttls(log) is None and quiet.ehlo_reply(ehlo, log) is None
    assert [type(policy_for(m)).__name__ for m in ("observe", "strip", "tamper")] == ["Observe", "Strip", "Tamper"]
    assert policy_for("observe", strip=True).strips and not policy_for("strip", strip=False).strips
