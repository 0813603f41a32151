"""``python -m labsim.cli``: the ``labsim`` command."""

from .commands import main

main()
