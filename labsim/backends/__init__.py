"""The lab's two mail servers behind one protocol: ``postfix`` (a private real Postfix instance, needs root)
and ``sim`` (the aiosmtpd simulator in :mod:`labsim.sim`, no root). Both read the same main.cf and write
the same log, so what the lab asks of a backend is small: start, stop, reload, is it running, and what its
log says went wrong. :mod:`labsim.lab` picks one with :func:`get` and never branches on the name again.

The two implementations are the modules beside this one: :mod:`labsim.backends.postfix` (also the lab's
``postconf``, main.cf template and log reader, which both backends use) and :mod:`labsim.backends.sim` (the
simulator's process; the simulator itself is :mod:`labsim.sim`). This module names the contract and
dispatches, so neither needs to know about the other.
"""

from __future__ import annotations

from types import ModuleType
from typing import Protocol

from ..errors import LabError
from ..settings import Settings

NAMES = ("postfix", "sim")


class Backend(Protocol):
    name: str

    def prepare(self, settings: Settings) -> None: ...

    def start(self, settings: Settings) -> None: ...

    def stop(self, settings: Settings) -> None: ...

    def reload(self, settings: Settings) -> None: ...

    def running(self, settings: Settings) -> bool: ...

    def problems(self, settings: Settings, keep: int = 6) -> list[str]: ...

    def pid(self, settings: Settings) -> int | None: ...


class _ModuleBackend:
    """A backend whose module has ``start``, ``stop``, ``reload``, ``is_running``, ``master_pid`` and perhaps
    ``prepare``."""

    def __init__(self, name: str, load) -> None:
        self.name = name
        self._load = load

    @property
    def module(self) -> ModuleType:
        return self._load()

    def prepare(self, settings: Settings) -> None:
        """What must be true before a start (Postfix: master.cf's smtpd on the lab port); may do nothing."""
        prep = getattr(self.module, "prepare", None)
        if prep is not None:
            prep(settings)

    def start(self, settings: Settings) -> None:
        self.module.start(settings)

    def stop(self, settings: Settings) -> None:
        self.module.stop(settings)

    def reload(self, settings: Settings) -> None:
        self.module.reload(settings)

    def running(self, settings: Settings) -> bool:
        try:
            return bool(self.module.is_running(settings))
        except ImportError:  # the simulator's libraries missing: it cannot be running
            return False

    def pid(self, settings: Settings) -> int | None:
        """The server's main process (Postfix's master, the simulator's master), None when it is not running."""
        try:
            return self.module.master_pid(settings)
        except ImportError:
            return None

    def problems(self, settings: Settings, keep: int = 6) -> list[str]:
        """The warning/fatal/error lines of the lab log since the last start or reload (the same log format
        for both: the simulator writes Postfix's lines)."""
        from . import postfix

        tail = postfix.log_tail(settings).splitlines()[-400:]
        for i in range(len(tail) - 1, -1, -1):
            if any(m in tail[i] for m in ("daemon started", "starting the Postfix mail system", "reload -- version")):
                tail = tail[i:]
                break
        return postfix.problems("\n".join(tail))[-keep:]

    def __repr__(self) -> str:
        return f"<backend {self.name}>"


def _postfix() -> ModuleType:
    from . import postfix

    return postfix


def _sim() -> ModuleType:
    from . import sim

    return sim


_BACKENDS: dict[str, Backend] = {"postfix": _ModuleBackend("postfix", _postfix), "sim": _ModuleBackend("sim", _sim)}


def get(name: str) -> Backend:
    try:
        return _BACKENDS[name]
    except KeyError:
        raise LabError(f"There is no backend called {name!r}.", hint="Backends: postfix, sim.") from None


def all_backends() -> list[Backend]:
    return [_BACKENDS[n] for n in NAMES]
