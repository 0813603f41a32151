"""The lab's one process manager, on psutil: is a process alive, the process table, the processes that
belong to a lab, and pid files that record a pid with its start time and command line so that a stale file
never makes the lab signal a stranger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil


def alive(pid: int) -> bool:
    """True while ``pid`` runs. False once it has exited, even before it is reaped (a zombie), so a lab
    stopped by another process than the one that started it is seen as stopped at once."""
    if pid <= 0:  # 0 and negative numbers name process groups to kill(2), never one process
        return False
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) for every process."""
    return {p.pid: (p.info["ppid"], p.info["name"]) for p in psutil.process_iter(["ppid", "name"])
            if p.info["ppid"] is not None}


def others() -> Iterator[tuple[psutil.Process, str]]:
    """(process, its command line) of every process but this one that we may read."""
    me = os.getpid()
    for p in psutil.process_iter(["cmdline"]):
        if p.pid == me or p.info["cmdline"] is None:
            continue
        yield p, " ".join(p.info["cmdline"])


def environ(p: psutil.Process) -> dict[str, str]:
    """A process's environment, or {} when it is gone or not ours to read."""
    try:
        return p.environ()
    except psutil.Error:
        return {}


def mentioning(marker: str) -> list[str]:
    """``"pid: command line"`` of every other process whose command line or environment contains marker
    (a lab home): what must be gone after ``labsim down``."""
    out = []
    for p, cmd in others():
        env = environ(p)
        if (marker in cmd or any(marker in k or marker in v for k, v in env.items())) and alive(p.pid):
            out.append(f"{p.pid}: {cmd}")
    return out


def memory(pids: list[int]) -> dict[str, int]:
    """Sum of PSS and RSS (kB) over pids (PSS shares each shared page among the processes that use it)."""
    pss = rss = 0
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        pss += getattr(info, "pss", 0) // 1024
        rss += info.rss // 1024
    return {"pss_kb": pss, "rss_kb": rss, "processes": len(pids)}


# --- pid files: the one way a lab process is recorded, found again and stopped ------------------------------
def write_pidfile(path: Path, pid: int) -> None:
    """Record ``pid`` with its start time and command line, so a later reader can tell it from a stranger
    that got the same pid after a reboot (``pid start-time command line``, one line)."""
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
    try:
        fields = path.read_text().split(maxsplit=2)
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid <= 0 or not alive(pid):
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
