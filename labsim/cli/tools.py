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
from rich.markup import escape

from ..errors import LabError

err = Console(stderr=True)


def print_error(e: LabError, prog: str = "labsim") -> None:
    """The message, the detail verbatim (log lines are never wrapped), the hint; into a file or pipe (a
    simulator's ``sim.err``, a test) every line comes out whole, and brackets in them are text, not markup."""
    wrap = not err.is_terminal
    err.print(f"[bold red]{escape(prog)}:[/] {escape(e.message)}", highlight=False, soft_wrap=wrap)
    if e.detail:
        err.print(e.detail.rstrip(), markup=False, highlight=False, soft_wrap=True)
    if e.hint:
        err.print(f"[yellow]Hint:[/] {escape(e.hint)}", highlight=False, soft_wrap=wrap)


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
