"""The attacker in the middle: a TCP proxy between an SMTP client and the lab's server.

Why it exists: the lesson says STARTTLS is "opportunistic". This shows what that means on the wire.

- ``observe``: prints what an eavesdropper reads. A plaintext session in full (every command, every
  reply, the message itself); a STARTTLS session only up to ``220 2.0.0 Ready to start TLS``, then the
  TLS handshake's clear parts (SNI, versions, cipher) and the encrypted byte counts each way.
- ``strip``: deletes STARTTLS from the EHLO reply and answers the client's STARTTLS itself with
  ``502 5.5.1 Error: command not implemented`` (what Postfix 3.7 says at level ``none``). A client at
  ``may`` goes on in clear; a client at ``encrypt`` refuses. A server set to ``encrypt`` cannot help.
- ``tamper``: strips too, then rewrites text in the message body in transit (``pay account 1234`` ->
  ``pay account 6666`` by default). Without TLS nothing tells the recipient.

Once TLS starts, the proxy relays bytes as they come (no re-framing). It listens on loopback only and
forwards to loopback only. Use it from a notebook or a test as a context manager (it runs in a
background thread)::

    with Mitm(settings, mode="strip") as m:
        ...  # aim a client at settings.mitm_port
    print(m.text())

or from the shell: ``labsim mitm --mode strip``. Every line also goes to ``<lab home>/mitm/transcript.log``.

Layout: :mod:`.proxy` (the relay and the transcript), :mod:`.policies` (observe, strip, tamper: what the
attacker changes), :mod:`.hello` (what a TLS handshake shows without the keys: SNI, versions, cipher).
"""

from . import hello  # noqa: F401
from .hello import Hello, parse_client_hello, parse_server_hello  # noqa: F401
from .policies import MODES, STARTTLS_REFUSED, Observe, Strip, Tamper, policy_for  # noqa: F401
from .proxy import (DEFAULT_FIND, DEFAULT_REPLACE, MAX_LINE, UPSTREAM_DOWN, Line, Mitm, _hostport,  # noqa: F401
                    render, transcript_file)
