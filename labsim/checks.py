"""Lab checks: is a lab in the state a step of the lesson leaves it in? And ``solve``: do that step.

As on Killercoda or Instruqt, a check is a small script: each condition passes or fails with one line
that says what is missing and a hint (the solution only when asked); exit 0 only when all pass. Every
step has a ``solve`` that does what the lesson does (the lesson's certbot command, ``postconf -e``,
restart or reload), and the tests run solve, then check.

Steps, in the lesson's order::

    certificate   certbot's certificate for the lab domain exists, key 0600, chain verifies (lab CA)
    postfix-tls   main.cf names that certificate and key, the server has loaded main.cf since its last
                  change, and a verifying STARTTLS client sees exactly that certificate
    opportunistic smtpd_tls_security_level = may, in effect: STARTTLS offered and usable, plain MAIL accepted
    encrypt       smtpd_tls_security_level = encrypt, in effect: plain MAIL gets 530 5.7.0, STARTTLS works

"Has the server loaded main.cf since its last change?" A real Postfix smtpd process reads main.cf when it
starts, so a new smtpd picks up a changed main.cf even without ``postfix reload`` (FACTS.md), while idle
smtpd processes started before the change keep serving the old settings until they exit. A probe that
happens to reach a fresh smtpd therefore proves nothing about a reload. What proves it on both backends is
the log: the master's last ``daemon started`` or ``reload`` line (its ``configuration`` is this lab's) is not
older than main.cf. The simulator writes the same lines, and it reads main.cf only at start and on reload.
Log lines carry whole seconds, so a reload in the same second as the change counts as after it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import stat
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import click

from . import acme, certs, dates, lab, postfix
from .errors import LabError
from .settings import DEFAULT_DOMAIN, Settings
from .smtpprobe import Conn

#: The lesson's certbot command (tests/conftest.LESSON_CERTBOT is the same list).
LESSON_CERTBOT = [
    "certonly", "--standalone", "--rsa-key-size", "4096", "--agree-tos",
    "--preferred-challenges", "http", "-d", DEFAULT_DOMAIN,
]

REPLY_MAIL_OK = "250 2.1.0 Ok"
REPLY_MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"
PROBE_SENDER = "MAIL FROM:<check@example.org>"


def lesson_certbot(domain: str) -> list[str]:
    """The lesson's certbot arguments for ``domain`` (the lab domain unless a lab changed it)."""
    return [domain if a == DEFAULT_DOMAIN else a for a in LESSON_CERTBOT]


# --- results -------------------------------------------------------------------------------------------

@dataclass
class Condition:
    """One thing a step needs. ``message`` says what is true, or what is missing."""

    id: str
    ok: bool
    message: str
    hint: str = ""
    solution: str = ""


@dataclass
class StepResult:
    step: str
    title: str
    conditions: list[Condition] = field(default_factory=list)
    #: What the learner should know but the step does not depend on (a misspelt, hence ignored, parameter).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.conditions)

    def failing(self) -> list[Condition]:
        return [c for c in self.conditions if not c.ok]

    def as_dict(self, solution: bool = False) -> dict:
        conds = []
        for c in self.conditions:
            d = asdict(c)
            if not solution:
                d.pop("solution")
            conds.append(d)
        return {"step": self.step, "title": self.title, "ok": self.ok, "conditions": conds, "notes": self.notes}


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    check: Callable[[Settings], list[Condition]]
    solve: Callable[[Settings], list[str]]
    requires: tuple[str, ...] = ()


# --- facts about the lab ----------------------------------------------------------------------------------

def param(settings: Settings, name: str) -> str:
    """A main.cf parameter as Postfix reads it (defaults, ``$name`` expansion), through the one model of
    main.cf (labsim.maincf.model). Reading it in-process keeps a check fast: ``postconf`` takes about a
    second per call on a machine without DNS (it looks up the host name)."""
    from .maincf import MainCf

    return MainCf.load(settings.config_dir).get(name).strip()


def configured_files(settings: Settings) -> tuple[str, str]:
    """(certificate file, key file) smtpd uses: ``smtpd_tls_chain_files`` wins when set (Postfix 3.4+)."""
    chain = param(settings, "smtpd_tls_chain_files")
    if chain:
        files = [f for f in re.split(r"[\s,]+", chain) if f]
        return (files[-1], files[0]) if files else ("", "")
    cert = param(settings, "smtpd_tls_cert_file")
    key = param(settings, "smtpd_tls_key_file") or cert
    return cert, key


_MASTER_LINE = re.compile(
    r"^(?P<stamp>\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ \S+/master\[\d+\]: "
    r"(?P<what>daemon started|reload) -- version \S+, configuration (?P<config>\S+)\s*$"
)


def _stamp(text: str, now: dt.datetime | None = None) -> float:
    """Epoch seconds of a syslog-style stamp (``Nov 24 19:43:10``, local time, no year)."""
    return dates.parse_log_stamp(text, now)


def last_load(settings: Settings, max_bytes: int = 4_000_000) -> tuple[float, str] | None:
    """When the lab's mail server last read main.cf: its last ``daemon started``/``reload`` log line."""
    try:
        with open(settings.log_file, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - max_bytes))
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    want = str(settings.config_dir)
    for line in reversed(lines):
        m = _MASTER_LINE.match(line)
        if m and m.group("config").rstrip("/") == want:
            return _stamp(m.group("stamp")), m.group("what")
    return None


def main_cf_changed(settings: Settings) -> float:
    return (settings.config_dir / "main.cf").stat().st_mtime


def loaded_since_change(settings: Settings) -> bool:
    seen = last_load(settings)
    return seen is not None and seen[0] >= int(main_cf_changed(settings))


def wait_loaded(settings: Settings, timeout: float = 60.0) -> bool:
    """Wait until the server's log shows it read the current main.cf (a reload is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        if loaded_since_change(settings):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def wait_new_load(settings: Settings, offset: int, timeout: float = 60.0) -> bool:
    """Wait for a ``daemon started``/``reload`` line of this lab written after byte ``offset`` of the log:
    how a solve knows its reload or restart has happened (no whole-second ambiguity)."""
    want = str(settings.config_dir)
    deadline = time.monotonic() + timeout
    while True:
        for line in postfix.log_since(settings, offset).splitlines():
            m = _MASTER_LINE.match(line)
            if m and m.group("config").rstrip("/") == want:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@dataclass
class TLSProbe:
    """What a verifying STARTTLS client saw."""

    connected: bool = False
    offered: bool = False
    verified: bool = False
    error: str = ""
    presented: bytes = b""  # DER of the server's certificate (also when it did not verify)
    protocol: str = ""
    mail_reply: str = ""  # the reply to MAIL FROM inside TLS (when verified)


def tls_probe(settings: Settings, timeout: float = 15.0) -> TLSProbe:
    """EHLO, STARTTLS, verify chain and name (lab CA, lab domain); keep what the server presented."""
    out = TLSProbe()
    for verify in (True, False):
        try:
            with Conn(settings.host, settings.smtp_port, timeout) as c:
                out.connected = True
                ehlo = c.cmd("EHLO check.lab")
                out.offered = "STARTTLS" in ehlo
                if not out.offered:
                    return out
                tls = c.starttls(settings.domain, settings.lab_ca if verify else None, verify)
                out.presented = tls.getpeercert(binary_form=True) or b""
                out.protocol = tls.version() or ""
                if verify:
                    out.verified = True
                    c.cmd("EHLO check.lab")
                    out.mail_reply = c.cmd(PROBE_SENDER)
                    c.cmd("RSET")
                return out
        except ssl.SSLCertVerificationError as e:
            out.error = f"certificate verification failed: {e.verify_message}"
        except (OSError, ConnectionError, ssl.SSLError) as e:
            if not out.error:
                out.error = str(e) or type(e).__name__
            if not out.connected or not verify:
                return out
    return out


def plain_dialog(settings: Settings, timeout: float = 15.0) -> tuple[str, str]:
    """(EHLO reply, MAIL FROM reply) of a client that never starts TLS."""
    with Conn(settings.host, settings.smtp_port, timeout) as c:
        ehlo = c.cmd("EHLO check.lab")
        mail = c.cmd(PROBE_SENDER)
        c.cmd("RSET")
        return ehlo, mail


def _leaf_der(path: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return certs.load_chain(Path(path))[0].public_bytes(Encoding.DER)


def _describe_der(der: bytes, settings: Settings) -> str:
    from cryptography import x509

    if not der:
        return "no certificate"
    c = x509.load_der_x509_certificate(der)
    name = c.subject.rfc4514_string()
    try:
        if der == _leaf_der(str(settings.snakeoil_cert)):
            return f"the self-signed snakeoil certificate ({name})"
    except LabError:
        pass
    return f"{name}, issued by {c.issuer.rfc4514_string()}"


# --- the conditions shared by the steps -------------------------------------------------------------

def _running(settings: Settings) -> Condition:
    running = lab.backend_running(settings)
    backend = lab.backend_of(settings)
    return Condition(
        "running", running,
        f"the lab's mail server ({backend}) answers on {settings.host}:{settings.smtp_port}" if running
        else f"the lab's mail server ({backend}) is not running",
        hint="start the lab", solution="labsim up",
    )


def _loaded(settings: Settings) -> Condition:
    seen = last_load(settings)
    changed = main_cf_changed(settings)
    ok = seen is not None and seen[0] >= int(changed)
    when = time.strftime("%H:%M:%S", time.localtime(changed))
    if ok:
        msg = f"the server has read main.cf since its last change ({when}): {seen[1]} at " \
              f"{time.strftime('%H:%M:%S', time.localtime(seen[0]))}"
    elif seen is None:
        msg = f"no 'daemon started' or 'reload' line for this lab in {settings.log_file}"
    else:
        msg = (f"main.cf changed at {when}, after the server last read it ({seen[1]} at "
               f"{time.strftime('%H:%M:%S', time.localtime(seen[0]))}): running smtpd processes may "
               "still use the old settings")
    return Condition("loaded", ok, msg,
                     hint="a changed main.cf is in effect for all only after Postfix re-reads it",
                     solution="labsim reload   (the lesson, on a server: systemctl restart postfix)")


def _level(settings: Settings, want: str) -> Condition:
    level = param(settings, "smtpd_tls_security_level")
    return Condition(
        "level", level == want,
        f"smtpd_tls_security_level = {level}" if level == want
        else f"smtpd_tls_security_level is {level or '(empty)'}, not {want}",
        hint="the server side's TLS policy is one parameter in main.cf; labsim postconf NAME shows it",
        solution=f"labsim postconf -e 'smtpd_tls_security_level = {want}'  then  labsim reload",
    )


def _skipped(cid: str, what: str, why: str) -> Condition:
    return Condition(cid, False, f"{what}: not checked, {why}", hint="fix the conditions above first")


# --- step: certificate ----------------------------------------------------------------------------------

def check_certificate(settings: Settings) -> list[Condition]:
    s = settings
    live = s.live_dir()
    full, key = live / "fullchain.pem", live / "privkey.pem"
    cmd = "certbot " + " ".join(lesson_certbot(s.domain))
    out: list[Condition] = []
    have = full.exists() and key.exists()
    out.append(Condition(
        "issued", have,
        f"certbot's certificate for {s.domain} is in {live}" if have
        else f"no certificate for {s.domain} in {live} (fullchain.pem, privkey.pem)",
        hint="ask the lab's Let's Encrypt CA for a certificate with certbot (http-01, standalone)",
        solution=f"labsim {cmd}",
    ))
    if not have:
        return out + [_skipped("key-private", "key permissions", "no key yet"),
                      _skipped("key-matches", "key and certificate", "no certificate yet"),
                      _skipped("chain", "chain to the lab CA", "no certificate yet")]
    mode = stat.S_IMODE(key.resolve().stat().st_mode)
    out.append(Condition(
        "key-private", mode & 0o077 == 0,
        f"privkey.pem is readable by its owner only ({mode:04o})" if mode & 0o077 == 0
        else f"privkey.pem is mode {mode:04o}: others can read the private key",
        hint="a private key must be readable by root only", solution=f"chmod 600 {key.resolve()}",
    ))
    try:
        match = certs.key_matches(full, key)
        why = "privkey.pem belongs to fullchain.pem" if match else "privkey.pem does not belong to fullchain.pem"
    except LabError as e:
        match, why = False, e.message
    out.append(Condition("key-matches", match, why, hint="a certificate is useless without its own key",
                         solution=f"labsim {cmd} --force-renewal"))
    try:
        certs.verify_chain(full, s.lab_ca, s.domain)
        ok, why = True, f"fullchain.pem verifies for {s.domain} against the lab CA ({s.lab_ca})"
    except LabError as e:
        ok, why = False, e.message
    out.append(Condition("chain", ok, why, hint="the certificate must come from the lab CA, for the lab domain",
                         solution=f"labsim {cmd} --force-renewal"))
    return out


def solve_certificate(settings: Settings) -> list[str]:
    if all(c.ok for c in check_certificate(settings)):
        return ["certificate already issued"]
    args = lesson_certbot(settings.domain)
    if settings.live_dir().exists():
        args.append("--force-renewal")
    acme.certbot(settings, args)
    return ["certbot " + " ".join(args)]


# --- step: postfix-tls ------------------------------------------------------------------------------------

def check_postfix_tls(settings: Settings) -> list[Condition]:
    s = settings
    live = s.live_dir()
    full, priv = live / "fullchain.pem", live / "privkey.pem"
    solution = (f"labsim postconf -e 'smtpd_tls_cert_file = {full}' 'smtpd_tls_key_file = {priv}'"
                "  then  labsim reload   (the lesson, on a server: systemctl restart postfix)")
    out: list[Condition] = []
    cert, key = configured_files(s)
    # 1. main.cf names certbot's certificate (with its chain), not the snakeoil one.
    issued_leaf = b""
    try:
        issued_leaf = _leaf_der(str(full))
    except LabError:
        pass
    conf_leaf = b""
    try:
        conf_leaf = _leaf_der(cert) if cert else b""
    except LabError:
        pass
    chain_len = len(certs.load_chain(Path(cert))) if conf_leaf else 0
    if not issued_leaf:
        ok, why = False, f"there is no certbot certificate in {live} yet"
        hint = "do the certificate step first (labsim check certificate)"
    elif conf_leaf == issued_leaf and chain_len >= 2:
        ok, why, hint = True, f"smtpd uses certbot's certificate: {cert}", ""
    elif conf_leaf == issued_leaf:
        ok, why = False, f"{cert} is certbot's certificate without its intermediate"
        hint = "a client needs the chain up to the root it trusts: use the file with the full chain"
    elif Path(cert or "/nonexistent").resolve() == s.snakeoil_cert.resolve():
        ok, why = False, f"smtpd still uses the self-signed snakeoil certificate ({cert})"
        hint = "point Postfix's certificate parameter at the certificate certbot issued"
    else:
        ok, why = False, f"smtpd uses {cert or '(nothing)'}, not certbot's certificate for {s.domain}"
        hint = "point Postfix's certificate parameter at the certificate certbot issued"
    out.append(Condition("cert-file", ok, why, hint=hint, solution=solution))
    # 2. the key is that certificate's, and private.
    try:
        match = bool(conf_leaf) and certs.key_matches(Path(cert), Path(key))
        why = (f"smtpd's key {key} belongs to its certificate" if match
               else f"smtpd's key {key or '(unset)'} does not belong to its certificate {cert}")
    except LabError as e:
        match, why = False, e.message
    out.append(Condition("key-file", match, why, hint="the key parameter must name the key of that same certificate",
                         solution=solution))
    # 3. the server read main.cf since it changed (see the module docstring).
    run = _running(s)
    if not run.ok:
        return out + [run, _skipped("loaded", "reload after the change", "the server is not running"),
                      _skipped("starttls", "verified STARTTLS", "the server is not running"),
                      _skipped("presented", "certificate presented", "the server is not running")]
    out.append(_loaded(s))
    # 4. a verifying client: chain and name against the lab CA, and the very certificate configured.
    probe = tls_probe(s)
    if probe.verified:
        ok, why = True, f"STARTTLS verifies for {s.domain} against the lab CA ({probe.protocol})"
    elif not probe.offered and probe.connected:
        ok, why = False, "the server does not offer STARTTLS"
    else:
        ok, why = False, f"a verifying STARTTLS client fails: {probe.error}"
        if probe.presented:
            why += f"; the server presents {_describe_der(probe.presented, s)}"
    out.append(Condition("starttls", ok, why,
                         hint="a client that verifies (smtp_tls_security_level = verify) must accept the server",
                         solution=solution))
    same = bool(probe.presented) and probe.presented == conf_leaf
    if same:
        why = "the live server presents the configured certificate"
    elif probe.presented:
        why = (f"the live server presents {_describe_der(probe.presented, s)}, not the certificate in "
               f"{cert or 'main.cf'}")
    else:
        why = "the live server presented no certificate"
    out.append(Condition("presented", same, why, hint="the running server has to re-read main.cf to use a new certificate",
                         solution="labsim reload   (or: labsim restart)"))
    return out


def solve_postfix_tls(settings: Settings) -> list[str]:
    done = _solve_requirements(settings, "postfix-tls")
    live = settings.live_dir()
    if param(settings, "smtpd_tls_chain_files"):
        postfix.postconf(settings, "-X", "smtpd_tls_chain_files", check=True)
        done.append("labsim postconf -X smtpd_tls_chain_files")
    edits = [f"smtpd_tls_cert_file={live / 'fullchain.pem'}", f"smtpd_tls_key_file={live / 'privkey.pem'}"]
    postfix.postconf(settings, "-e", *edits, check=True)
    done.append("labsim postconf -e " + " ".join(f"'{e}'" for e in edits))
    mark = postfix.log_size(settings)
    lab.restart(settings)
    done.append("labsim restart (systemctl restart postfix)")
    _wait_loaded_or_fail(settings, mark)
    return done


# --- steps: opportunistic, encrypt ----------------------------------------------------------------------

def check_opportunistic(settings: Settings) -> list[Condition]:
    s = settings
    out = [_level(s, "may")]
    run = _running(s)
    if not run.ok:
        return out + [run, _skipped("offered", "STARTTLS offered", "the server is not running"),
                      _skipped("plain-mail", "plaintext MAIL FROM", "the server is not running")]
    out.append(_loaded(s))
    probe = tls_probe(s)
    if probe.verified:
        ok, why = True, f"EHLO offers STARTTLS, and it verifies for {s.domain} ({probe.protocol})"
    elif probe.offered:
        ok, why = False, f"EHLO offers STARTTLS, but a verifying client fails: {probe.error}"
    else:
        ok, why = False, "EHLO does not offer STARTTLS" if probe.connected else f"no connection: {probe.error}"
    out.append(Condition("offered", ok, why,
                         hint="opportunistic TLS is worth having only with a certificate clients can verify "
                              "(labsim check postfix-tls)",
                         solution="labsim solve postfix-tls"))
    try:
        _ehlo, mail = plain_dialog(s)
    except (OSError, ConnectionError) as e:
        mail = f"no reply ({e})"
    ok = mail == REPLY_MAIL_OK
    out.append(Condition(
        "plain-mail", ok,
        f"a client that does not use TLS may still send: MAIL FROM -> {mail}" if ok
        else f"a client without TLS is refused: MAIL FROM -> {mail}",
        hint="at 'may' the server offers TLS but must not require it",
        solution="labsim postconf -e 'smtpd_tls_security_level = may'  then  labsim reload",
    ))
    return out


def check_encrypt(settings: Settings) -> list[Condition]:
    s = settings
    out = [_level(s, "encrypt")]
    run = _running(s)
    if not run.ok:
        return out + [run, _skipped("plain-refused", "plaintext MAIL FROM refused", "the server is not running"),
                      _skipped("starttls", "verified STARTTLS", "the server is not running")]
    out.append(_loaded(s))
    try:
        _ehlo, mail = plain_dialog(s)
    except (OSError, ConnectionError) as e:
        mail = f"no reply ({e})"
    ok = mail == REPLY_MUST_STARTTLS
    out.append(Condition(
        "plain-refused", ok,
        f"MAIL FROM without TLS is refused: {mail}" if ok
        else f"MAIL FROM without TLS gets '{mail}', not '{REPLY_MUST_STARTTLS}'",
        hint="at 'encrypt' the server refuses everything but EHLO, STARTTLS, NOOP and QUIT before TLS",
        solution="labsim postconf -e 'smtpd_tls_security_level = encrypt'  then  labsim reload",
    ))
    probe = tls_probe(s)
    ok = probe.verified and probe.mail_reply == REPLY_MAIL_OK
    if ok:
        why = f"STARTTLS verifies for {s.domain} ({probe.protocol}) and MAIL FROM is accepted inside TLS"
    elif probe.verified:
        why = f"inside TLS, MAIL FROM gets '{probe.mail_reply}'"
    elif probe.offered:
        why = f"STARTTLS is offered, but a verifying client fails: {probe.error}"
    else:
        why = "EHLO does not offer STARTTLS: with 'encrypt', no client can send at all" if probe.connected \
            else f"no connection: {probe.error}"
    out.append(Condition("starttls", ok, why,
                         hint="'encrypt' needs a working certificate, or nobody can send (labsim check postfix-tls)",
                         solution="labsim solve postfix-tls"))
    return out


def _solve_level(level: str):
    def solve(settings: Settings) -> list[str]:
        done = _solve_requirements(settings, level_steps[level])
        postfix.postconf(settings, "-e", f"smtpd_tls_security_level={level}", check=True)
        done.append(f"labsim postconf -e 'smtpd_tls_security_level = {level}'")
        mark = postfix.log_size(settings)
        lab.reload(settings)
        done.append("labsim reload")
        _wait_loaded_or_fail(settings, mark)
        return done

    return solve


level_steps = {"may": "opportunistic", "encrypt": "encrypt"}


def _wait_loaded_or_fail(settings: Settings, mark: int) -> None:
    if not wait_new_load(settings, mark):
        raise LabError("The mail server did not log that it re-read main.cf.",
                       detail="\n".join(lab.recent_problems(settings)), hint="labsim status; labsim logs")


STEPS: dict[str, Step] = {
    s.name: s for s in (
        Step("certificate", "a certificate from the lab's Let's Encrypt CA", check_certificate, solve_certificate),
        Step("postfix-tls", "Postfix serves certbot's certificate", check_postfix_tls, solve_postfix_tls,
             ("certificate",)),
        Step("opportunistic", "opportunistic TLS (smtpd_tls_security_level = may)", check_opportunistic,
             _solve_level("may"), ("postfix-tls",)),
        Step("encrypt", "mandatory TLS (smtpd_tls_security_level = encrypt)", check_encrypt,
             _solve_level("encrypt"), ("postfix-tls",)),
    )
}


def _solve_requirements(settings: Settings, name: str) -> list[str]:
    """Solve the earlier steps a step builds on, when their checks fail."""
    done: list[str] = []
    for req in STEPS[name].requires:
        if not run_check(settings, req).ok:
            done += solve(settings, req)
    return done


def _step(name: str) -> Step:
    try:
        return STEPS[name]
    except KeyError:
        raise LabError(f"There is no lab step called {name!r}.", hint=f"Steps: {', '.join(STEPS)}.") from None


def run_check(settings: Settings, name: str) -> StepResult:
    """Check one step. Never raises for a lab in a wrong state: that is a failing condition."""
    step = _step(name)
    if not (settings.config_dir / "main.cf").exists():
        conds = [Condition("lab", False, f"there is no lab in {settings.home}", hint="start the lab",
                           solution="labsim up")]
    else:
        try:
            conds = step.check(settings)
        except LabError as e:
            conds = [Condition("error", False, e.message, hint=e.hint)]
    notes = [lab.unused_message(n, near) + f" (labsim postconf -X {n})" for n, near in lab.unused_parameters(settings)]
    return StepResult(step.name, step.title, conds, notes)


def run_checks(settings: Settings, names: list[str] | None = None) -> list[StepResult]:
    return [run_check(settings, n) for n in (names or list(STEPS))]


def history_file(settings: Settings) -> Path:
    """Every check result of this lab, one JSON line each: a grading report can say when a step first
    passed, also for a step a later step undoes (opportunistic and encrypt exclude each other)."""
    return settings.home / "checks.jsonl"


def record(settings: Settings, results: list[StepResult]) -> None:
    if not settings.home.is_dir():
        return
    now = time.time()
    lines = "".join(json.dumps({"time": round(now, 3), "step": r.step, "ok": r.ok}) + "\n" for r in results)
    try:
        with open(history_file(settings), "a", encoding="utf-8") as f:
            f.write(lines)
    except OSError:
        pass


def history(settings: Settings) -> dict[str, float]:
    """step -> when its check first passed (steps that never passed are absent)."""
    first: dict[str, float] = {}
    try:
        text = history_file(settings).read_text(encoding="utf-8")
    except FileNotFoundError:
        return first
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("ok") and item.get("step") not in first:
            first[item["step"]] = item["time"]
    return first


def solve(settings: Settings, name: str) -> list[str]:
    """Do a step the way the lesson does it (and the earlier steps it needs). Returns what was done."""
    return _step(name).solve(settings)


# --- output ----------------------------------------------------------------------------------------------

def render(results: list[StepResult], solution: bool = False) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"{'PASS' if r.ok else 'FAIL'} {r.step}: {r.title}")
        for c in r.conditions:
            lines.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.message}")
            if not c.ok and c.hint:
                lines.append(f"       hint: {c.hint}")
            if not c.ok and solution and c.solution:
                lines.append(f"       solution: {c.solution}")
        for note in r.notes:
            lines.append(f"  note {note}")
    return "\n".join(lines)


def _steps_arg(step: str | None) -> list[str]:
    if step is None or step == "all":
        return list(STEPS)
    _step(step)
    return [step]


@click.command("check")
@click.argument("step", required=False, type=click.Choice([*STEPS, "all"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--solution", is_flag=True, help="Also show how to fix each failing condition.")
@click.option("--solve", "do_solve", is_flag=True, help="Do the step(s) as the lesson does, then check.")
def check_command(step: str | None, as_json: bool, solution: bool, do_solve: bool) -> None:
    """Check the lab against a step of the lesson (all steps when none is given). Exit 0 when all pass.

    Steps: certificate, postfix-tls, opportunistic, encrypt.
    """
    s = Settings.from_env()
    names = _steps_arg(step)
    try:
        if do_solve:
            for n in names:
                for line in solve(s, n):
                    click.echo(f"solve {n}: {line}", err=as_json)
    except LabError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    results = run_checks(s, names)
    record(s, results)
    if as_json:
        payload = [r.as_dict(solution) for r in results]
        click.echo(json.dumps({"ok": all(r.ok for r in results), "steps": payload}, indent=2))
    else:
        click.echo(render(results, solution))
    sys.exit(0 if all(r.ok for r in results) else 1)


@click.command("solve")
@click.argument("step", type=click.Choice(list(STEPS)))
def solve_command(step: str) -> None:
    """Do a step of the lesson for you (certbot, postconf -e, reload), then check it."""
    s = Settings.from_env()
    try:
        for line in solve(s, step):
            click.echo(f"{step}: {line}")
    except LabError as e:
        click.echo(str(e), err=True)
        sys.exit(2)
    result = run_check(s, step)
    record(s, [result])
    click.echo(render([result]))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":  # pragma: no cover
    check_command()
