"""Helpers the course notebooks import, so their code cells stay the lesson's own commands.

A notebook starts with ``lab = setup("stage")``: it aims the kernel at the lab (``MAIL_CONFIG`` and the
``LABSIM_*`` variables in ``os.environ``, so ``!postconf -e ...`` edits the lab's main.cf exactly as the
lesson's command edits ``/etc/postfix/main.cf`` on a server) and brings the lab to the state that
notebook expects, so every notebook also runs alone. Stages, in lesson order:

- ``up``: the lab runs (``labsim up``): stock Debian settings, snakeoil certificate, level ``may``;
- ``certificate``: and the lab CA has issued ``live/lab.itpro.tv`` (RSA 4096, notebook 02's exercise);
- ``postfix-tls``: and main.cf uses that certificate, logs TLS (loglevel 1) and records it in
  ``Received:`` headers, at level ``may`` (what notebook 03 leaves).

``check(step)`` prints what ``labsim check STEP`` prints (:mod:`labsim.checks`: one line per condition,
``ok`` or ``FAIL`` with a hint), also for the notebooks' own exercises, which are steps of the same registry
(:mod:`labsim.checks.exercises`: ``tamper``, ``rsa-4096``, ``client-encrypt``, ``tlsa``, ``mta-sts``,
``tls-protocols``). When
``LABSIM_NOTEBOOK_SOLVE=1`` (set only by the test harness and by the run that stores the notebooks'
outputs), a failing step is first solved by its one solve in that registry (``labsim solve STEP`` does the
same; an exercise's is its folded solution), so the stored outputs show what a learner who did it sees.
The stages build on the same solves: ``certificate`` is the rsa-4096 step's, ``postfix-tls`` the
postfix-tls step's plus notebook 03's two logging parameters.

Everything here prints stable text only (no ports, pids, dates), so nbval compares the same output on
the real Postfix and on the simulator.
"""

from __future__ import annotations

import os
import subprocess
import time

from . import lab as labmod, mailbox
from .backends import postfix
from .checks.exercises import RSA_CERTBOT  # noqa: F401  (notebook 02's command; the lesson's: checks.LESSON_CERTBOT)
from .settings import Settings

STAGES = ("up", "certificate", "postfix-tls")
SOLVE_VAR = "LABSIM_NOTEBOOK_SOLVE"


# --- the kernel's environment ----------------------------------------------------------------------

def settings() -> Settings:
    return Settings.from_env()


def aim_kernel(s: Settings | None = None) -> Settings:
    """Export the lab's variables into this kernel: ``!postconf``, ``!postfix``, ``!labsim`` see the lab."""
    s = s or settings()
    os.environ.update(s.env())
    # The venv's labsim first, the Postfix commands (/usr/sbin), the postconf work-alike without Postfix:
    # the same PATH as `eval "$(labsim env)"` gives a learner's shell.
    os.environ["PATH"] = labmod.shell_path(s)
    os.environ.setdefault("LC_ALL", "C.UTF-8")
    return s


def _sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env=os.environ.copy(), timeout=300)


def setup(stage: str = "up") -> Settings:
    """Aim the kernel at the lab and bring the lab to ``stage`` (see the module docstring). Idempotent."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    s = aim_kernel()
    labmod.up(s)
    if STAGES.index(stage) >= STAGES.index("certificate") and not _rsa4096_issued(s):
        _solve_certificate(s)
    if stage == "postfix-tls":
        _solve_postfix_tls(s)
    else:
        # Notebooks 2 and 3 start from the stock TLS settings their text shows (the snakeoil certificate),
        # also for a learner who did later steps in a terminal first.
        changed = _stock_tls(s)
        if changed:
            print(f"(main.cf's TLS settings were put back to the stock ones this notebook starts from: "
                  f"{', '.join(changed)})")
    done = {"up": "lab up", "certificate": "lab up, certificate issued",
            "postfix-tls": "lab up, certificate issued and in use, smtpd_tls_security_level = may"}[stage]
    print(f"Ready: {done}.")
    return s


# --- small views that print only what is the same on every run and backend -------------------------

def last_message(s: Settings | None = None, headers: tuple[str, ...] = ("Received", "From", "To", "Subject"),
                 body: bool = True, wait: float = 10.0) -> None:
    """Print the newest message in the lab mailbox: some headers, then the body."""
    s = s or settings()
    deadline = time.monotonic() + wait
    files = mailbox.files(s)
    while not files and time.monotonic() < deadline:
        time.sleep(0.1)
        files = mailbox.files(s)
    if not files:
        print("(the mailbox is empty)")
        return
    raw = files[-1].read_bytes().decode(errors="replace").replace("\r\n", "\n")
    head, _, text = raw.partition("\n\n")
    # Header lines with their continuation lines, in file order, for the names asked.
    fields: list[str] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            fields[-1] += "\n" + line
        else:
            fields.append(line)
    for f in fields:
        if f.split(":", 1)[0].lower() in {h.lower() for h in headers}:
            print(f)
    if body:
        print()
        print(text.rstrip("\n"))


def wait_new_message(s: Settings, before: int, timeout: float = 10.0) -> bool:
    """Wait until the mailbox holds more than ``before`` messages (delivery is asynchronous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(mailbox.files(s)) > before:
            return True
        time.sleep(0.05)
    return False


def transcript(m, skip_closing: bool = True) -> None:  # m: labsim.mitm.Mitm
    """Print what the attacker saw (the Mitm's transcript), one line per command, reply or remark."""
    m.wait_closed(max(1, m._sessions))  # every session it accepted has written its last line
    for ln in m.lines:
        if skip_closing and ln.who == "MITM" and "closed the connection" in ln.text:
            continue  # who closes first after QUIT is a race; it says nothing about TLS
        print(f"{ln.who}: {ln.text}")


# --- stages: the states notebooks start from (the checks and exercises are labsim.checks' registry) ---

def _solve_certificate(s: Settings) -> None:
    """The state notebook 2 leaves: an RSA 4096 certificate (the rsa-4096 step's one solve)."""
    from . import checks

    checks.solve(s, "rsa-4096")


def _rsa4096_issued(s: Settings) -> bool:
    from .checks.exercises import rsa4096_issued

    return rsa4096_issued(s)


#: What notebook 03 adds to the postfix-tls step, to make TLS visible: a log line per session and the
#: details in the Received header, at level may.
NOTEBOOK_03_TLS = {"smtpd_tls_security_level": "may", "smtpd_tls_loglevel": "1", "smtpd_tls_received_header": "yes"}


def _solve_postfix_tls(s: Settings) -> None:
    """The state notebook 3 leaves: ``labsim check postfix-tls`` passes (the step's one solve when it does
    not: certbot's certificate and key, then a reload), and ``NOTEBOOK_03_TLS``."""
    from . import checks

    if not checks.run_check(s, "postfix-tls").ok:
        checks.solve(s, "postfix-tls")
    now = postfix.postconf(s, "-h", *NOTEBOOK_03_TLS).stdout.splitlines()
    if now != list(NOTEBOOK_03_TLS.values()):
        postfix.postconf(s, *(f"{k}={v}" for k, v in NOTEBOOK_03_TLS.items()), check=True)
        _reload(s)


#: The stock TLS settings of a fresh Debian install (labsim.backends.postfix.main_cf_text), by name; None: not set.
def _stock_values(s: Settings) -> dict[str, str | None]:
    return {"smtpd_tls_cert_file": str(s.snakeoil_cert), "smtpd_tls_key_file": str(s.snakeoil_key),
            "smtpd_tls_security_level": "may", "smtpd_tls_chain_files": None, "smtpd_tls_loglevel": None,
            "smtpd_tls_received_header": None}


def _stock_tls(s: Settings) -> list[str]:
    """Put main.cf's smtpd TLS settings back to the stock ones (reloading when they change); returns the
    names changed."""
    from .maincf import MainCf

    params = MainCf.load(s.config_dir).params
    want = _stock_values(s)
    edits = [f"{k}={v}" for k, v in want.items() if v is not None and params.get(k, "").strip() != v]
    drops = [k for k, v in want.items() if v is None and k in params]
    if edits:
        postfix.postconf(s, "-e", *edits, check=True)
    if drops:
        postfix.postconf(s, "-X", *drops, check=True)
    if edits or drops:
        _reload(s)
    return [e.split("=", 1)[0] for e in edits] + drops


#: The lessons (notebooks) in order: (number, name, stage the notebook's first cell sets up).
LESSONS = ((1, "smtp-in-the-clear", "up"), (2, "certificates", "up"), (3, "configuring-postfix-tls", "certificate"),
           (4, "opportunistic-tls", "postfix-tls"), (5, "forcing-encryption", "postfix-tls"))
def lesson_steps(num: int) -> tuple[str, ...]:
    """The checked steps of a lesson (labsim check's and the notebooks' own), from the one step registry."""
    from . import checks

    return tuple(n for n, step in checks.REGISTRY.items() if step.lesson == num)


def lesson(spec: str | int) -> tuple[int, str, str]:
    """A lesson by number (``3``, ``03``) or name (``configuring-postfix-tls``, ``03-configuring-postfix-tls``)."""
    from .errors import LabError

    text = str(spec).strip().lower()
    for num, name, stage in LESSONS:
        if text in (str(num), f"{num:02d}", name, f"{num:02d}-{name}"):
            return num, name, stage
    raise LabError(f"There is no lesson {spec!r}.",
                   hint="Lessons: " + ", ".join(f"{n} ({name})" for n, name, _ in LESSONS))


def reset(s: Settings, spec: str | int = 1) -> list[str]:
    """Put the lab at the start of a lesson: a stock main.cf and master.cf, an empty mailbox, no sending
    Postfix, and only what that lesson builds on (lesson 3: the RSA 4096 certificate; 4 and 5: also
    configured in Postfix). Lessons 1 and 2 also delete the certificates certbot issued. Returns what was done."""
    import shutil

    from . import sender

    num, name, stage = lesson(spec)
    done = []
    sender.down(s)
    if (sender.settings_for(s).config_dir / "main.cf").exists():
        sender.clear_queue(s)
    running = labmod.backend_running(s)
    postfix.create_config(s, force=True)
    done.append("stock main.cf and master.cf")
    n = mailbox.clear(s) if s.mailbox.exists() else 0
    done.append(f"mailbox emptied ({n} message{'s' if n != 1 else ''})")
    if num <= 2 and s.letsencrypt_dir.exists():
        shutil.rmtree(s.letsencrypt_dir)
        done.append("certbot's certificates deleted")
    if running:
        labmod.restart(s)
    else:
        labmod.up(s)
    done.append("mail server restarted on the stock configuration")
    if STAGES.index(stage) >= STAGES.index("certificate") and not _rsa4096_issued(s):
        _solve_certificate(s)
        done.append("RSA 4096 certificate issued (notebook 2)")
    if stage == "postfix-tls":
        _solve_postfix_tls(s)
        done.append("Postfix configured with it (notebook 3)")
    done.append(f"ready for lesson {num} ({name})")
    return done


def progress(s: Settings) -> list[tuple[int, str, str, float | None]]:
    """(lesson, its name, step, when its check first passed or None) for every checked step, in lesson order."""
    from . import checks

    first = checks.history(s)
    rows = [(num, name, step, first.get(step)) for num, name, _stage in LESSONS for step in lesson_steps(num)]
    listed = {r[2] for r in rows}
    # Steps of later notebooks (their own checks, recorded the same way), after the lesson's five.
    rows += [(0, "other", step, when) for step, when in first.items() if step not in listed]
    return rows


def _reload(s: Settings) -> None:
    from .checks import wait_new_load

    mark = postfix.log_size(s)
    labmod.reload(s)
    wait_new_load(s, mark, timeout=20)  # the master's "reload" line: the server has read main.cf


def passed(step: str) -> bool:
    """Check an exercise step and print what ``labsim check STEP`` prints: a line per condition, with hints.

    With ``LABSIM_NOTEBOOK_SOLVE=1`` (tests and the stored outputs only) a failing step is solved first."""
    from . import checks

    s = aim_kernel()
    result = checks.run_check(s, step)
    if not result.ok and os.environ.get(SOLVE_VAR) == "1":
        checks.solve(s, step)  # the step's one solve (labsim solve STEP does the same)
        result = checks.run_check(s, step)
    checks.record(s, [result])  # labsim progress shows the notebooks' own steps too
    print(checks.render([result]))
    return result.ok


def check(step: str) -> None:
    """``passed(step)`` for a notebook cell: prints the lines, returns nothing (no ``True`` echoed)."""
    passed(step)
