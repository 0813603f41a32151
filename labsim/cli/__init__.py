"""The command layer: every click command and the one printer of a ``LabError`` (``tools``). ``commands.py``
holds the ``labsim`` group (``main``) and the lab's commands; ``checks``, ``classroom``, ``mitm`` and ``sim`` the others.

This file stays light on purpose: the simulator's process (``python -m labsim.sim``) imports ``labsim.cli.sim``
and should not pay for loading every command (about 0.1 s at each start). ``from labsim.cli import main`` (the
console script) still works.
"""


def __getattr__(name: str):
    if name == "main":
        from .commands import main

        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
