"""Classroom mode: a small class, each student in their own lab, through solve + check + report + down."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labsim import classroom, procs
from labsim.errors import LabError
from labsim.settings import PORTS

from .conftest import need_postfix

BIN = Path(sys.executable).parent
STEPS = ["certificate", "postfix-tls", "opportunistic", "encrypt"]


def labsim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "labsim"), *args], capture_output=True, text=True, timeout=600,
                          env=env or dict(os.environ))


def as_student(env_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    """A student's shell: eval their env file, then type the command."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABSIM_", "QUIZZES_", "MAIL_CONFIG"))}
    env["PATH"] = f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin"
    return subprocess.run(["bash", "-c", f'eval "$(cat {env_file})" && {command}'], capture_output=True,
                          text=True, env=env, timeout=600)


def processes_mentioning(marker: str) -> list[str]:
    """Every process whose command line or environment names the classroom directory."""
    return procs.mentioning(marker)


@pytest.fixture
def room_dir():
    root = Path(tempfile.mkdtemp(prefix="labsim-class-", dir="/tmp"))
    os.chmod(root, 0o711)
    yield root
    try:
        classroom.down(root, purge=True)
    except LabError:
        pass
    import shutil

    shutil.rmtree(root, ignore_errors=True)


# --- ports and names ---------------------------------------------------------------------------------------

def test_blocks_do_not_overlap_and_cover_every_port():
    ports = [p for i in range(30) for p in classroom.block(20000, i).values()]
    assert len(ports) == len(set(ports)) == 30 * len(PORTS)
    stride = classroom.DEFAULT_STRIDE
    assert stride >= len(PORTS) and stride % 10 == 0
    assert classroom.block(20000, 2) == {**{a: 20000 + 2 * stride + i for i, a in enumerate(classroom.BLOCK)}}
    with pytest.raises(LabError, match="too small"):
        classroom.block(20000, 0, stride=5)
    exports = classroom.block_exports(30000, 1)
    assert f"export LABSIM_SMTP_PORT={30000 + stride}" in exports
    assert f"export LABSIM_JUPYTER_PORT={30000 + stride + 9}" in exports  # the first ten keep their offsets


def test_find_base_skips_a_taken_port():
    base = classroom.find_base(3)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier tests' connections may linger
    inside = base + classroom.DEFAULT_STRIDE + 2  # inside the second block
    taken.bind(("127.0.0.1", inside))
    taken.listen()
    try:
        again = classroom.find_base(3, start=base)
        assert again > inside
        assert all(classroom.busy_ports(list(classroom.block(again, i).values())) == [] for i in range(3))
    finally:
        taken.close()


def test_names(tmp_path):
    assert classroom.names_from(3) == ["student01", "student02", "student03"]
    roster = tmp_path / "roster.txt"
    roster.write_text("# class 2B\nalice\n\nbob  # late\n")
    assert classroom.names_from(roster=roster) == ["alice", "bob"]
    roster.write_text("alice\n../etc\n")
    with pytest.raises(LabError, match="student name"):
        classroom.names_from(roster=roster)
    roster.write_text("alice\nalice\n")
    with pytest.raises(LabError, match="twice"):
        classroom.names_from(roster=roster)


def test_a_taken_port_stops_up_before_anything_starts(room_dir):
    base = classroom.find_base(2)
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier tests' connections may linger
    taken.bind(("127.0.0.1", base + classroom.DEFAULT_STRIDE))  # student02's smtp port
    taken.listen()
    try:
        with pytest.raises(LabError, match=f"{base + classroom.DEFAULT_STRIDE} \\(student02, smtp_port\\)"):
            classroom.up(room_dir, ["a", "student02"], "sim", base)
        assert not any((room_dir / "students").glob("*/lab/run/*.pid"))
    finally:
        taken.close()


# --- a small class, both backends --------------------------------------------------------------------------

def _answer_quizzes(db: Path) -> None:
    from quizzes.store import Store

    store = Store(db)
    s = store.start_session("practice", ["q1", "q2", "q3"])
    for qid, ok in (("q1", True), ("q2", False), ("q3", True)):
        store.record(s.id, qid, "x", ok)
    store.finish_session(s.id, {"score": 2})
    e = store.start_session("exam", ["q1"])
    store.record(e.id, "q1", "x", True)
    store.finish_session(e.id, {"scaled": 620, "passed": True})
    store.close()


@pytest.mark.parametrize("backend", ["sim", "postfix"])
def test_small_class_solve_check_report_down(room_dir, backend, tmp_path):
    if backend == "postfix":
        need_postfix()
    roster = tmp_path / "roster.txt"
    roster.write_text("ada\nbrian\nchen\n")
    up = labsim("classroom", "up", "--roster", str(roster), "--backend", backend, "--base-port", "auto",
                "--dir", str(room_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    room = classroom.load(room_dir)
    assert room.backend == backend and [s.name for s in room.students] == ["ada", "brian", "chen"]
    homes = {s.settings.home for s in room.students}
    ports = [p for s in room.students for p in s.settings.ports().values()]
    assert len(homes) == 3 and len(ports) == len(set(ports))

    # Each student, in their own shell aimed at their own lab by the env file, all at once.
    def student_run(s: classroom.Student) -> list[tuple[str, int, str]]:
        out = [("start", as_student(s.env_file, "labsim check certificate").returncode, "")]
        for step in STEPS:
            p = as_student(s.env_file, f"labsim check {step} --solve --json")
            out.append((step, p.returncode, p.stdout))
        p = as_student(s.env_file, 'echo "$LABSIM_HOME $QUIZZES_DB"; postconf -h smtpd_tls_cert_file')
        out.append(("env", p.returncode, p.stdout))
        return out

    with ThreadPoolExecutor(3) as pool:
        runs = dict(zip(room.students, pool.map(student_run, room.students)))
    for s, run in runs.items():
        assert run[0][1] == 1  # the starting state fails
        for step, rc, text in run[1:-1]:
            assert rc == 0, f"{s.name} {step}: {text}"
            assert json.loads(text)["ok"]
        home, db = run[-1][2].split()[:2]
        assert (home, db) == (str(s.settings.home), str(s.quiz_db))
        assert run[-1][2].split()[2] == str(s.settings.live_dir() / "fullchain.pem")  # their own main.cf
    # one CA per student: three different roots
    assert len({s.settings.lab_ca.read_text() for s in room.students}) == 3

    _answer_quizzes(room.students[1].quiz_db)
    rep = labsim("classroom", "report", "--dir", str(room_dir))
    assert rep.returncode == 0, rep.stderr
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((room_dir / "report.csv").read_text()))}
    assert set(rows) == {"ada", "brian", "chen"}
    for r in rows.values():
        assert (r["check_certificate"], r["check_postfix-tls"], r["check_encrypt"]) == ("pass",) * 3
        assert r["check_opportunistic"] == "fail"  # encrypt came last: may and encrypt exclude each other
        assert r["first_passed_opportunistic"] and r["steps_passed_ever"] == "4"
        assert r["running"] == "1"
    assert (rows["brian"]["quiz_answers"], rows["brian"]["quiz_correct"]) == ("4", "3")
    assert (rows["brian"]["last_exam_scaled"], rows["brian"]["last_exam_passed"]) == ("620", "1")
    assert rows["ada"]["quiz_answers"] == "0" and not room.students[0].quiz_db.exists()
    page = (room_dir / "report.html").read_text()
    assert all(n in page for n in ("ada", "brian", "chen")) and "620 (pass)" in page
    for external in ("http://", "https://", "<script", "<link", "src=", "@import"):
        assert external not in page  # self-contained
    st = json.loads(labsim("classroom", "status", "--json", "--dir", str(room_dir)).stdout)
    assert [r["checks"]["encrypt"]["ok"] for r in st] == [True] * 3

    down = labsim("classroom", "down", "--dir", str(room_dir))
    assert down.returncode == 0, down.stderr
    assert "leftover" not in down.stdout  # lab.down stopped everything itself
    assert processes_mentioning(str(room_dir)) == []


def test_html_report_escapes_what_students_control():
    """The report is rendered by jinja2 with autoescape: a hostile name or failing text stays text."""
    from html.parser import HTMLParser

    evil = '<script>alert("x")</script>&'
    rows = [{"student": evil, "running": True, "checks": {n: {"ok": False, "failing": [evil]} for n in STEPS},
             "quiz": {"answers": 0, "correct": 0}}]
    page = classroom.to_html(rows, title="report <b>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "report &lt;b&gt;" in page

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

    parser = Tags()
    parser.feed(page)
    assert "script" not in parser.tags and parser.tags.count("tr") == 2
