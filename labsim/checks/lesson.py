"""The lesson's steps: is a lab in the state a step of the lesson leaves it in? And ``solve``: do that step.

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

Whether the server has read main.cf since its last change comes from the log: see :mod:`labsim.checks.probes`.
"""

from __future__ import annotations

import stat
import time
from pathlib import Path

from .. import acme, certs, lab
from ..backends import postfix
from ..errors import LabError
from ..settings import DEFAULT_DOMAIN, Settings
from .model import Condition, Step, register, solve_requirements
from .probes import (PROBE_SENDER, _describe_der, _leaf_der, configured_files, last_load, main_cf_changed,  # noqa: F401
                     param, plain_dialog, tls_probe, wait_new_load)

#: The lesson's certbot command (tests/conftest.LESSON_CERTBOT is an independent copy, compared by a test).
LESSON_CERTBOT = [
    "certonly", "--standalone", "--rsa-key-size", "4096", "--agree-tos",
    "--preferred-challenges", "http", "-d", DEFAULT_DOMAIN,
]

REPLY_MAIL_OK = "250 2.1.0 Ok"
REPLY_MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"


def lesson_certbot(domain: str) -> list[str]:
    """The lesson's certbot arguments for ``domain`` (the lab domain unless a lab changed it)."""
    return [domain if a == DEFAULT_DOMAIN else a for a in LESSON_CERTBOT]


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
    done = solve_requirements(settings, "postfix-tls")
    live = settings.live_dir()
    if param(settings, "smtpd_tls_chain_files"):
        postfix.postconf(settings, "-X", "smtpd_tls_chain_files", check=True)
        done.append("labsim postconf -X smtpd_tls_chain_files")
    edits = [f"smtpd_tls_cert_file={live / 'fullchain.pem'}", f"smtpd_tls_key_file={live / 'privkey.pem'}"]
    postfix.postconf(settings, "-e", *edits, check=True)
    done.append("labsim postconf -e " + " ".join(f"'{e}'" for e in edits))
    mark = postfix.log_size(settings)
    if lab.backend_running(settings):
        # new smtpd processes read the new files (FACTS.md), and labsim reload waits for the old ones to go
        lab.reload(settings)
        done.append("labsim reload (a running server needs no restart for a new certificate; the lesson's "
                    "systemctl restart postfix does it too)")
    else:
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
        done = solve_requirements(settings, level_steps[level])
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


for _step in (
    Step("certificate", "a certificate from the lab's Let's Encrypt CA", check_certificate, solve_certificate,
         lesson=2),
    Step("postfix-tls", "Postfix serves certbot's certificate", check_postfix_tls, solve_postfix_tls,
         ("certificate",), lesson=3),
    Step("opportunistic", "opportunistic TLS (smtpd_tls_security_level = may)", check_opportunistic,
         _solve_level("may"), ("postfix-tls",), lesson=4),
    Step("encrypt", "mandatory TLS (smtpd_tls_security_level = encrypt)", check_encrypt,
         _solve_level("encrypt"), ("postfix-tls",), lesson=5),
):
    register(_step)
