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
