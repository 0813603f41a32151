"""Lab checks: is a lab in the state a step leaves it in? And ``solve``: do that step.

As on Killercoda or Instruqt, a check is a small script: each condition passes or fails with one line
that says what is missing and a hint (the solution only when asked); exit 0 only when all pass. Every
step has a ``solve`` that does what the lesson does, and the tests run solve, then check.

- :mod:`.model`: ``Condition``, ``StepResult``, ``Step`` and the one registry (``register``, ``run_check``,
  ``solve``, ``render``);
- :mod:`.probes`: what the checks look at (main.cf as Postfix reads it, the log's last load, a verifying
  STARTTLS client);
- :mod:`.lesson`: the lesson's four steps (certificate, postfix-tls, opportunistic, encrypt);
- :mod:`.exercises`: the notebooks' own exercises (tamper, rsa-4096, client-encrypt, tlsa, mta-sts);
- :mod:`.history`: when each step first passed.

The ``labsim check`` and ``labsim solve`` commands are in :mod:`labsim.cli`; nothing here prints.
"""

from .model import (REGISTRY, Condition, Step, StepResult, get, lab_steps, register, render, run_check,  # noqa: F401
                    run_checks, solve, solve_requirements)
from .history import history, history_file, record  # noqa: F401
from .probes import (PROBE_SENDER, TLSProbe, configured_files, last_load, loaded_since_change,  # noqa: F401
                     main_cf_changed, param, plain_dialog, tls_probe, wait_loaded, wait_new_load)
from .lesson import (LESSON_CERTBOT, REPLY_MAIL_OK, REPLY_MUST_STARTTLS, check_certificate, check_encrypt,  # noqa: F401
                     check_opportunistic, check_postfix_tls, lesson_certbot, solve_certificate,
                     solve_postfix_tls)
from . import exercises, probes  # noqa: F401,E402  (exercises registers the notebooks' steps after the lesson's)
