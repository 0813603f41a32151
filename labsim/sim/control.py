"""Start, stop, reload the simulator as a background process (the lab's ``up --backend sim``).

The process is ``python -m labsim.sim --config-dir ... --listen 127.0.0.1:{smtp_port}``, detached in its
own session, its pid in ``settings.run_dir/sim.pid`` and its stderr in ``settings.run_dir/sim.err``.
``reload`` sends SIGHUP, which re-reads main.cf like ``postfix reload``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import LabError
from ..ports import require_free, wait_listening
from ..procs import alive
from ..settings import Settings


def pid_file(settings: Settings) -> Path:
    return settings.run_dir / "sim.pid"


def err_file(settings: Settings) -> Path:
    return settings.run_dir / "sim.err"


def _pid(settings: Settings) -> int | None:
    try:
        pid = int(pid_file(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    try:  # a recycled pid that is not ours is not the simulator
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"labsim.sim" not in cmdline:
            return None
    except OSError:
        pass
    return pid


def is_running(settings: Settings) -> bool:
    return _pid(settings) is not None


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(settings: Settings, timeout: float = 15.0) -> int:
    """Start the simulator (if not running) and wait until it listens; returns its pid."""
    pid = _pid(settings)
    if pid is not None:
        return pid
    require_free(settings.smtp_port, "LABSIM_SMTP_PORT", "the lab's SMTP server (simulator)", settings.host)
    main_cf = settings.config_dir / "main.cf"
    if not main_cf.exists():
        raise LabError(f"{main_cf} does not exist.", hint="Create the lab configuration first: labsim up --backend sim.")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "labsim.sim",
        "--config-dir", str(settings.config_dir),
        "--listen", f"{settings.host}:{settings.smtp_port}",
        "--log-file", str(settings.log_file),
        "--mailbox", str(settings.mailbox),
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
    pid_file(settings).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pid_file(settings).unlink(missing_ok=True)
            raise LabError(
                f"The simulator exited at once (status {proc.returncode}).",
                detail=_tail(err_file(settings)) or _tail(settings.log_file),
                hint="Read the lines above; labsim postconf -n shows what main.cf sets.",
            )
        if wait_listening(settings.smtp_port, settings.host, timeout=0.2):
            return proc.pid
    stop(settings)
    raise LabError(
        f"The simulator did not listen on {settings.host}:{settings.smtp_port} within {timeout:.0f} s.",
        detail=_tail(err_file(settings)) or _tail(settings.log_file),
    )


def stop(settings: Settings, timeout: float = 10.0) -> None:
    """Stop the simulator; no process is left behind (SIGTERM, then SIGKILL)."""
    pid = _pid(settings)
    if pid is None:
        pid_file(settings).unlink(missing_ok=True)
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)  # our child: reap it
                if done:
                    break
            except ChildProcessError:
                if not alive(pid):
                    break
            time.sleep(0.05)
        else:
            continue
        break
    pid_file(settings).unlink(missing_ok=True)


def reload(settings: Settings) -> None:
    """Make the running simulator re-read main.cf (SIGHUP), as ``postfix reload`` does."""
    pid = _pid(settings)
    if pid is None:
        raise LabError("The simulator is not running.", hint="Start the lab: labsim up --backend sim.")
    os.kill(pid, signal.SIGHUP)
