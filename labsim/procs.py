"""Is a process alive? (A zombie is not: it has exited and only waits for its parent to reap it.)"""

from __future__ import annotations

import os
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
