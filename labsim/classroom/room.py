"""The classroom itself: its students, their labs (up, down), and the processes that belong to them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import acme, backends, lab, procs
from ..errors import LabError
from ..ports import is_free
from ..settings import DEFAULT_DOMAIN, Settings, state_dir
from .ports import DEFAULT_BASE_PORT, DEFAULT_STRIDE, block, find_base

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
STATE = "classroom.json"


def default_root() -> Path:
    if os.environ.get("LABSIM_CLASSROOM"):
        return Path(os.environ["LABSIM_CLASSROOM"]).expanduser().absolute()
    return state_dir("labsim-classroom")


# --- the classroom -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Student:
    name: str
    index: int
    dir: Path
    settings: Settings

    @property
    def env_file(self) -> Path:
        return self.dir / "env"

    @property
    def quiz_db(self) -> Path:
        return self.dir / "quizzes.sqlite3"

    def env(self) -> dict[str, str]:
        """Everything a student's shell needs: the lab's variables, their quiz database, PATH to postconf."""
        out = self.settings.env()
        out["QUIZZES_DB"] = str(self.quiz_db)
        out["QUIZZES_LEARNER"] = self.name
        out["LABSIM_STUDENT"] = self.name
        out["LABSIM_SIM_WORKERS"] = str(self.settings.sim_workers)  # also when the student restarts the lab
        return out


@dataclass
class Classroom:
    root: Path
    backend: str
    base_port: int
    stride: int
    domain: str
    students: list[Student]

    @property
    def state_file(self) -> Path:
        return self.root / STATE

    def student(self, name: str) -> Student:
        for s in self.students:
            if s.name == name:
                return s
        raise LabError(f"No student {name!r} in {self.root}.",
                       hint="labsim classroom status lists them.")

    def save(self) -> None:
        data = {"backend": self.backend, "base_port": self.base_port, "stride": self.stride,
                "domain": self.domain,
                "students": [{"name": s.name, "index": s.index, "home": str(s.settings.home),
                              **s.settings.ports()} for s in self.students]}
        self.state_file.write_text(json.dumps(data, indent=2))


def _student(root: Path, name: str, index: int, backend: str, base: int, stride: int, domain: str) -> Student:
    d = root / "students" / name
    # One smtpd worker each: a student's lab needs no throughput, and a class server has many students.
    settings = Settings(home=d / "lab", backend=backend, domain=domain, sim_workers=1, **block(base, index, stride))
    return Student(name, index, d, settings)


def load(root: Path | None = None) -> Classroom:
    root = Path(root or default_root()).absolute()
    try:
        data = json.loads((root / STATE).read_text())
    except FileNotFoundError:
        raise LabError(f"There is no classroom in {root}.",
                       hint="labsim classroom up --students N (or --dir to point at another one)") from None
    students = [_student(root, s["name"], s["index"], data["backend"], data["base_port"], data["stride"],
                         data["domain"]) for s in data["students"]]
    return Classroom(root, data["backend"], data["base_port"], data["stride"], data["domain"], students)


def names_from(count: int | None = None, roster: Path | None = None) -> list[str]:
    """Student names: ``student01`` ... from a count, or one name per line of a roster (# comments)."""
    if roster is not None:
        names = []
        for line in Path(roster).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    elif count:
        width = max(2, len(str(count)))
        names = [f"student{i + 1:0{width}d}" for i in range(count)]
    else:
        raise LabError("No students given.", hint="--students N or --roster FILE (one name per line)")
    bad = [n for n in names if not NAME_RE.match(n)]
    if bad:
        raise LabError(f"Not usable as a student name: {', '.join(map(repr, bad[:5]))}.",
                       hint="Letters, digits, '.', '_' and '-' (a name becomes a directory name).")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise LabError(f"Names listed twice: {', '.join(dup)}.", hint="Each student needs a unique name.")
    return names


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, 0o711)  # the postfix user must pass through to each lab's queue


def write_env(student: Student) -> Path:
    lines = [f"# labsim classroom: {student.name}'s lab. In a shell or notebook: eval \"$(cat {student.env_file})\""]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in student.env().items()]
    student.env_file.write_text("\n".join(lines) + "\n")
    return student.env_file


def up(root: Path | None, names: list[str], backend: str = "auto", base_port: int | str | None = None,
       stride: int = DEFAULT_STRIDE, jobs: int = 8, domain: str = DEFAULT_DOMAIN,
       with_ca: bool = True) -> Classroom:
    """Give every student a running lab (idempotent: students already up keep their lab and ports)."""
    root = Path(root or default_root()).absolute()
    _mkdir(root)
    _mkdir(root / "students")
    try:
        existing: Classroom | None = load(root)
    except LabError:
        existing = None
    if existing:
        chosen = existing.backend
        if backend not in ("auto", chosen):
            raise LabError(f"The classroom in {root} runs the {chosen} backend.",
                           hint=f"labsim classroom down --purge first, then up with --backend {backend}")
        base, stride, domain = existing.base_port, existing.stride, existing.domain
        students = list(existing.students)
    else:
        chosen = lab.choose_backend(Settings(home=root / "students"), backend)[0]
        if base_port in (None, "", "auto"):
            base = find_base(len(names), stride) if base_port == "auto" else DEFAULT_BASE_PORT
        else:
            base = int(base_port)
        students = []
    known = {s.name for s in students}
    for name in names:
        if name not in known:
            students.append(_student(root, name, len(students), chosen, base, stride, domain))
            known.add(name)
    wanted = [s for s in students if s.name in set(names)] if names else students
    # Every port of every lab that is not running yet must be free, before anything starts.
    conflicts = []
    for s in wanted:
        if lab.backend_running(s.settings, chosen):
            continue
        for attr, port in s.settings.ports().items():
            if attr != "jupyter_port" and not is_free(port, s.settings.host):
                conflicts.append(f"{port} ({s.name}, {attr})")
    if conflicts:
        raise LabError(f"Ports already in use: {', '.join(conflicts[:6])}{' ...' if len(conflicts) > 6 else ''}.",
                       hint="Pick free blocks: --base-port auto (or another --base-port / --stride).")
    room = Classroom(root, chosen, base, stride, domain, students)
    room.save()

    def start(s: Student) -> None:
        _mkdir(s.dir)
        _mkdir(s.settings.home)
        write_env(s)
        lab.up(s.settings, chosen, with_ca=with_ca)

    errors = _parallel(start, wanted, jobs)
    if errors:
        raise LabError(f"{len(errors)} of {len(wanted)} labs did not start.",
                       detail="\n".join(f"{n}: {e}" for n, e in errors.items()),
                       hint="Fix the cause, then labsim classroom up again (running labs are kept).")
    return room


def _parallel(fn, students: list[Student], jobs: int) -> dict[str, str]:
    """Run fn(student) for each, ``jobs`` at a time; {name: error} for those that raised."""
    errors: dict[str, str] = {}

    def one(s: Student) -> None:
        try:
            fn(s)
        except Exception as e:  # noqa: BLE001 - one student's broken lab never stops the class
            errors[s.name] = str(e)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, students))
    return errors


# --- processes -----------------------------------------------------------------------------------------

def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, comm) for every process."""
    return procs.table()


def lab_processes(settings: Settings) -> dict[str, list[int]]:
    """The processes of one lab, by part: ``mail`` (Postfix master and children, or the simulator) and
    ``ca`` (pebble, its mock DNS), found from their pid files and the process tree."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _comm) in table.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int | None) -> list[int]:
        if pid is None or pid not in table:
            return []
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    mail = [p for b in backends.all_backends() for p in tree(b.pid(settings))]
    ca = tree(acme.pid(settings, "pebble")) + tree(acme.pid(settings, "challtestsrv"))
    return {"mail": sorted(set(mail)), "ca": sorted(set(ca))}


def memory(pids: list[int]) -> dict[str, int]:
    """Sum of PSS and RSS (kB) over pids (labsim.procs.memory)."""
    return procs.memory(pids)


#: Programs a lab runs with its paths on the command line (the simulator and certbot are found by name).
LAB_PROGRAMS = ("pebble", "pebble-challtestsrv")


def leftover_processes(root: Path) -> list[int]:
    """Processes of this classroom still alive: a command line under the classroom directory, or a Postfix
    daemon whose MAIL_CONFIG is one of its labs. Only lab programs count: never a student's shell or editor,
    which may well have the classroom's paths in its environment or on its command line."""
    marker = str(Path(root).absolute()) + "/"
    out = []
    for p, cmd in procs.others():
        try:
            exe = p.exe()
        except procs.psutil.Error:
            continue
        ours = Path(exe).name in LAB_PROGRAMS or any(w in cmd for w in ("labsim.sim", "certbot"))
        if marker in cmd and ours:
            out.append(p.pid)
        elif exe.startswith("/usr/lib/postfix/") and procs.environ(p).get("MAIL_CONFIG", "").startswith(marker):
            out.append(p.pid)
    return out


def down(root: Path | None = None, purge: bool = False, jobs: int = 8) -> dict[str, Any]:
    """Stop every lab of the classroom, then make sure no process of it is left (and end any that is)."""
    room = load(root)
    # Stopping is mostly waiting for processes to exit: do them all at once.
    errors = _parallel(lambda s: lab.down(s.settings), room.students, max(jobs, len(room.students)))
    killed = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = leftover_processes(room.root)
        for pid in left:
            try:
                os.kill(pid, sig)
                killed.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            for pid in left:  # reap our own children
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            left = [pid for pid in left if procs.alive(pid)]
            time.sleep(0.05)
        if not left:
            break
    if purge:
        shutil.rmtree(room.root, ignore_errors=True)
    return {"stopped": len(room.students), "errors": errors, "killed_leftovers": sorted(set(killed))}
