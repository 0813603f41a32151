"""What every ``labsim`` command shares: the one way a ``LabError`` reaches a learner.

A ``LabError`` prints as ``labsim: <message>``, then its detail (log lines, a command's output) as plain
text, then ``Hint: <what to do>``; the command exits with status 1 and no traceback. Ctrl-C ends a
long-running command (``logs -f``) quietly with status 130; ``labsim mitm`` is meant to be stopped that way
and exits 0. Library modules never import this
(or click): they raise ``LabError`` and the command layer prints it.
"""

from __future__ import annotations

import sys
from functools import wraps

from rich.console import Console

from ..errors import LabError

err = Console(stderr=True)


def print_error(e: LabError, prog: str = "labsim") -> None:
    err.print(f"[bold red]{prog}:[/] {e.message}", highlight=False, markup=True)
    if e.detail:
        err.print(e.detail.rstrip(), markup=False, highlight=False)
    if e.hint:
        err.print(f"[yellow]Hint:[/] {e.hint}", highlight=False)


def friendly(fn=None, *, prog: str = "labsim"):
    """Decorator: a ``LabError`` becomes a message and a hint (exit 1); Ctrl-C exits 130 without a traceback."""

    def wrap(f):
        @wraps(f)
        def wrapper(*a, **kw):
            try:
                return f(*a, **kw)
            except LabError as e:
                print_error(e, prog)
                sys.exit(1)
            except KeyboardInterrupt:
                sys.exit(130)

        return wrapper

    return wrap(fn) if fn is not None else wrap
