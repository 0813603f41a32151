"""Start, stop, reload the simulator as a background process (the lab's ``up --backend sim``).

The process is ``python -m labsim.sim --config-dir ... --listen 127.0.0.1:{smtp_port} --workers N``, detached
in its own session: a master and its N smtpd workers (``labsim.sim.app``; N from ``settings.sim_workers``,
``LABSIM_SIM_WORKERS``, default one per CPU). The master's pid is in ``settings.run_dir/sim.pid`` (written by
``labsim.procs``, with its start time), its stderr in ``sim.err``, and what it reports (its workers, its
reload count) in ``sim.state``. ``reload`` sends SIGHUP, which re-reads main.cf like ``postfix reload``, and
returns once every worker has; ``stop`` leaves no process behind, workers included.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import LabError
from ..ports import require_free, wait_listening
from ..procs import alive, read_pidfile, write_pidfile
from ..settings import Settings
from .postfix import tail


def pid_file(settings: Settings) -> Path:
    return settings.run_dir / "sim.pid"


def err_file(settings: Settings) -> Path:
    return settings.run_dir / "sim.err"


def state_file(settings: Settings) -> Path:
    return settings.run_dir / "sim.state"


def worker_count(settings: Settings) -> int:
    """How many smtpd workers a start makes: ``settings.sim_workers``, else one per CPU."""
    if settings.sim_workers:
        return settings.sim_workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def master_pid(settings: Settings) -> int | None:
    """The running master's pid (a recycled pid that is not ours is not the simulator)."""
    return read_pidfile(pid_file(settings), expect="labsim.sim")


def is_running(settings: Settings) -> bool:
    return master_pid(settings) is not None


def _state(settings: Settings) -> dict:
    try:
        return json.loads(state_file(settings).read_text())
    except (OSError, ValueError):
        return {}


def workers(settings: Settings) -> list[int]:
    """The pids of the running simulator's smtpd workers (the master's children), [] when it is not running."""
    import psutil

    pid = master_pid(settings)
    if pid is None:
        return []
    try:
        return sorted(p.pid for p in psutil.Process(pid).children() if p.is_running()
                      and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return []


def _tail(path: Path, lines: int = 8) -> str:
    """The last ``lines`` lines of the simulator's stderr or of the lab log (the lab's one reader of a file's end)."""
    try:
        return "\n".join(tail(path, 64_000).splitlines()[-lines:])
    except OSError:
        return ""


def start(settings: Settings, timeout: float = 15.0) -> int:
    """Start the simulator (if not running) and wait until every worker serves; returns the master's pid."""
    pid = master_pid(settings)
    if pid is not None:
        return pid
    require_free(settings.smtp_port, "LABSIM_SMTP_PORT", "the lab's SMTP server (simulator)", settings.host)
    main_cf = settings.config_dir / "main.cf"
    if not main_cf.exists():
        raise LabError(f"{main_cf} does not exist.", hint="Create the lab configuration first: labsim up --backend sim.")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    state_file(settings).unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "labsim.sim",
        "--config-dir", str(settings.config_dir),
        "--listen", f"{settings.host}:{settings.smtp_port}",
        "--log-file", str(settings.log_file),
        "--mailbox", str(settings.mailbox),
        "--workers", str(worker_count(settings)),
        "--state-file", str(state_file(settings)),
    ]
    env = dict(os.environ)
    env.update(settings.env())
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with open(err_file(settings), "wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True,
            close_fds=True,
        )
    write_pidfile(pid_file(settings), proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file(settings).unlink(missing_ok=True)
            raise LabError(
                f"The simulator exited at once (status {proc.returncode}).",
                detail=_tail(err_file(settings)) or _tail(settings.log_file),
                hint="Read the lines above; labsim postconf -n shows what main.cf sets.",
            )
        if _state(settings).get("master") == proc.pid and wait_listening(settings.smtp_port, settings.host, timeout=0.2):
            return proc.pid
        time.sleep(0.02)
    stop(settings)
    raise LabError(
        f"The simulator did not serve on {settings.host}:{settings.smtp_port} within {timeout:.0f} s.",
        detail=_tail(err_file(settings)) or _tail(settings.log_file),
    )


def _wait_gone(pids: list[int], timeout: float, reap: int | None = None) -> list[int]:
    """Wait until none of ``pids`` runs (reaping ``reap``, our own child); the ones still running."""
    deadline = time.monotonic() + timeout
    while True:
        if reap is not None:
            try:
                os.waitpid(reap, os.WNOHANG)
            except ChildProcessError:
                pass
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def stop(settings: Settings, timeout: float = 10.0) -> None:
    """Stop the simulator: the master stops its workers; none is left behind (SIGTERM, then SIGKILL)."""
    pid = master_pid(settings)
    if pid is None:
        pid_file(settings).unlink(missing_ok=True)
        state_file(settings).unlink(missing_ok=True)
        return
    children = workers(settings)
    left = [pid]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for p in left:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        left = _wait_gone([pid, *children] if sig == signal.SIGKILL else [pid], wait, reap=pid)
        if not left:
            break
    # Workers die with their master (PR_SET_PDEATHSIG) and the master stops them first; make sure anyway.
    left = _wait_gone(children, 2.0)
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_gone(left, 5.0)
    pid_file(settings).unlink(missing_ok=True)
    state_file(settings).unlink(missing_ok=True)


def reload(settings: Settings, timeout: float = 10.0) -> None:
    """Make the running simulator re-read main.cf (SIGHUP), as ``postfix reload`` does; returns once every
    worker has (or main.cf could not be read and the master logged why)."""
    pid = master_pid(settings)
    if pid is None:
        raise LabError("The simulator is not running.", hint="Start the lab: labsim up --backend sim.")
    before = _state(settings).get("reloads", 0)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _state(settings).get("reloads", 0) == before and alive(pid):
        time.sleep(0.02)
