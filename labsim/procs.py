"""Is a process alive? (A zombie is not: it has exited and only waits for its parent to reap it.)"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def alive(pid: int) -> bool:
    """True while ``pid`` runs. False once it has exited, even before it is reaped (state Z),
    so a lab stopped by another process than the one that started it is seen as stopped at once."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) for every process."""
    out: dict[int, tuple[int, str]] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                comm, rest = (p / "stat").read_text().rsplit(")", 1)
                out[int(p.name)] = (int(rest.split()[1]), comm.split("(", 1)[1])
            except (OSError, IndexError, ValueError):
                continue
    return out


def others() -> Iterator[tuple[int, Path, str]]:
    """(pid, its /proc directory, its command line) of every process but this one."""
    me = os.getpid()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == me:
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(p.name), p, cmd


def mentioning(marker: str) -> list[str]:
    """``"pid: command line"`` of every other process whose command line or environment contains marker
    (a lab home): what must be gone after ``labsim down``."""
    out = []
    for pid, p, cmd in others():
        try:
            environ = (p / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if (marker in cmd or marker in environ) and alive(pid):
            out.append(f"{pid}: {cmd}")
    return out


# --- pid files: the one way a lab process is recorded, found again and stopped ------------------------------
def write_pidfile(path: Path, pid: int) -> None:
    """Record ``pid`` with its start time and command line, so a later reader can tell it from a stranger
    that got the same pid after a reboot (``pid start-time command line``, one line)."""
    import psutil

    try:
        p = psutil.Process(pid)
        extra = f" {p.create_time():.2f} {' '.join(p.cmdline())}"
    except psutil.Error:
        extra = ""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}{extra}\n")
    tmp.replace(path)


def read_pidfile(path: Path, expect: str | None = None) -> int | None:
    """The live process a pid file names, or None (no file, garbage, exited, or not the one recorded).

    A file written by :func:`write_pidfile` must match the process's start time; ``expect`` (a word of its
    command line, e.g. ``nsd``) is checked too, for daemons that write their own pid files. Never trust a
    bare live pid: after a reboot it may belong to someone else's process, and we signal what we find."""
    import psutil

    try:
        fields = path.read_text().split(maxsplit=2)
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if not alive(pid):
        return None
    try:
        p = psutil.Process(pid)
        if len(fields) > 1 and abs(p.create_time() - float(fields[1])) > 1.0:
            return None
        if expect and not any(expect in part for part in [p.name(), *p.cmdline()]):
            return None
    except (psutil.Error, ValueError):
        return None
    return pid


def stop_pidfile(path: Path, expect: str | None = None, timeout: float = 10.0) -> bool:
    """SIGTERM the process of a pid file, wait at most ``timeout`` seconds, then SIGKILL; remove the file.
    Returns whether a process was running."""
    import signal
    import time

    pid = read_pidfile(path, expect)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.05)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    path.unlink(missing_ok=True)
    return pid is not None
