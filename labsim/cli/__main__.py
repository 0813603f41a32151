"""``python -m labsim.cli``: the ``labsim`` command."""

from . import main

main()
