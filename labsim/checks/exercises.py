"""The notebooks' own exercises, as steps of the one registry (:mod:`labsim.checks.model`).

They are checked and printed like the lesson's steps (``check("tamper")`` in a notebook, ``labsim check
tamper`` in a shell), but ``labsim check`` with no step runs only the lesson's (``lab_steps``). Each solve
is the exercise's folded solution, so ``LABSIM_NOTEBOOK_SOLVE=1`` (the tests and the stored outputs)
shows what a learner who did the exercise sees.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .. import acme, mailbox
from ..backends import postfix
from ..settings import Settings
from .lesson import LESSON_CERTBOT, check_certificate
from .model import Condition, Step, register


def _key_info(path: Path) -> tuple[str, int]:
    """(key type, size) of a certificate's public key: ("RSA", 4096), ("ECDSA", 256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    pub = x509.load_pem_x509_certificate(path.read_bytes()).public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return "RSA", pub.key_size
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return "ECDSA", pub.curve.key_size
    return type(pub).__name__, 0


# --- notebook 01: the attacker changes a message ------------------------------------------------------

def check_tamper(s: Settings) -> list[Condition]:
    """The newest message arrived changed by the attacker, Alice -> Mallory."""
    from ..mitm import transcript_file

    log = transcript_file(s)
    text = log.read_text(errors="replace") if log.exists() else ""
    files = mailbox.files(s)
    body = files[-1].read_text(errors="replace").partition("\n\n")[2] if files else ""
    return [
        Condition("tampered", "TAMPERED:" in text and "Mallory" in text,
                  "the attacker's transcript has a TAMPERED line with Mallory",
                  "Mitm(lab, 'tamper', find='Alice', replace='Mallory'), and send through it"),
        Condition("delivered", "Mallory" in body and "Alice" not in body,
                  "the newest message in the mailbox says Mallory where the sender wrote Alice",
                  "send a body that names Alice to 127.0.0.1:$LABSIM_MITM_PORT while the attacker runs"),
    ]


def solve_tamper(s: Settings) -> list[str]:
    from ..mitm import Mitm
    from ..notebook import wait_new_message

    before = len(mailbox.files(s))
    with Mitm(s, "tamper", find="Alice", replace="Mallory") as m:
        subprocess.run(["swaks", "--server", f"{s.host}:{s.mitm_port}", "--helo", "client.example",
                        "--from", "bob@example.org", "--to", "student@lab.itpro.tv", "--header", "Subject: lunch",
                        "--body", "Lunch with Alice at noon.", "--silent", "2"], capture_output=True, timeout=60)
        m.wait_closed(1)
    wait_new_message(s, before)
    return ["Mitm(lab, 'tamper', find='Alice', replace='Mallory'), and swaks through it"]


# --- notebook 02: an RSA 4096 certificate ---------------------------------------------------------------

def check_rsa4096(s: Settings) -> list[Condition]:
    out = check_certificate(s)
    full = s.live_dir() / "fullchain.pem"
    if full.exists():
        kind, bits = _key_info(full)
        out.append(Condition("rsa-4096", (kind, bits) == ("RSA", 4096), f"the certificate's key is {kind} {bits}"
                             + ("" if (kind, bits) == ("RSA", 4096) else ", not RSA 4096"),
                             "certbot 2.x makes ECDSA keys unless told otherwise: --key-type rsa, and "
                             "--cert-name to confirm the change of key type"))
    return out


#: The exercise's RSA variant of the lesson's certbot command (certbot 2.x makes ECDSA keys by default).
RSA_CERTBOT = ["certonly", "--standalone", "--key-type", "rsa", "--rsa-key-size", "4096",
               "--cert-name", "lab.itpro.tv", "--agree-tos", "--preferred-challenges", "http",
               "-d", "lab.itpro.tv"]


def rsa4096_issued(s: Settings) -> bool:
    full = s.live_dir() / "fullchain.pem"
    return full.exists() and (s.live_dir() / "privkey.pem").exists() and _key_info(full) == ("RSA", 4096)


def solve_rsa4096(s: Settings) -> list[str]:
    """The state notebook 02 leaves: the lesson's certificate, then the exercise's RSA 4096 one."""
    done = []
    if not (s.live_dir() / "fullchain.pem").exists():
        acme.certbot(s, LESSON_CERTBOT)
        done.append("certbot " + " ".join(LESSON_CERTBOT))
    if _key_info(s.live_dir() / "fullchain.pem") != ("RSA", 4096):
        acme.certbot(s, RSA_CERTBOT)
        done.append("certbot " + " ".join(RSA_CERTBOT))
    return done or ["an RSA 4096 certificate is already issued"]


# --- notebook 05: a sending Postfix that requires TLS ---------------------------------------------------

def check_client_encrypt(s: Settings) -> list[Condition]:
    """The sending Postfix requires TLS, and the stripper made it defer."""
    from .. import sender

    ss = sender.settings_for(s)
    exists = (ss.config_dir / "main.cf").exists()
    level = postfix.get(ss, "smtp_tls_security_level") if exists else ""
    last = sender.deliveries(s)[-1:] if exists else []
    deferred = bool(last) and last[0].status == "deferred" and "dsn=4.7.4" in last[0].line
    return [
        Condition("level", level == "encrypt",
                  f"the sending Postfix has smtp_tls_security_level = {level or '(empty)'}"
                  + ("" if level == "encrypt" else ", not encrypt"),
                  "sender.configure(lab, LEVEL, target_port=lab.mitm_port)"),
        Condition("deferred", deferred, "its last delivery attempt was deferred: TLS is required, but was not offered"
                  if deferred else "its last delivery attempt was not deferred for want of TLS",
                  "send through the stripper: with Mitm(lab, 'strip'): sender.send(lab, ...)"),
    ]


def solve_client_encrypt(s: Settings) -> list[str]:
    from .. import sender
    from ..mitm import Mitm

    sender.up(s, "encrypt", target_port=s.mitm_port)
    with Mitm(s, "strip") as m:
        mid = sender.send(s, subject="exercise", body="pay account 1234")
        sender.wait_delivery(s, mid)
        m.wait_closed(1)
    return ["sender.up(lab, 'encrypt', target_port=lab.mitm_port), and a message through Mitm(lab, 'strip')"]


# --- notebook 06: the TLSA record (labsim.dns) and the MTA-STS policy (labsim.mtasts) ----------------------

def check_tlsa(s: Settings) -> list[Condition]:
    from ..dns import check_tlsa as check

    return check(s)


def solve_tlsa(s: Settings) -> list[str]:
    from ..dns import solve_tlsa as solve

    solve(s)
    return ["dns.publish(lab, zone) with the served certificate's TLSA 3 1 1 digest, signed"]


def check_mtasts(s: Settings) -> list[Condition]:
    from ..mtasts import check_mtasts as check

    return check(s)


def solve_mtasts(s: Settings) -> list[str]:
    from ..mtasts import solve_mtasts as solve

    solve(s)
    return ["mtasts.up(lab, 'enforce'): the _mta-sts record with a new id and the policy over HTTPS"]


# --- notebook 07: the audit (labsim.audit) -------------------------------------------------------------------

def check_protocols(s: Settings) -> list[Condition]:
    from ..audit import check_protocols as check

    return check(s)


def solve_protocols(s: Settings) -> list[str]:
    from ..audit import PROTOCOLS_SOLUTION, solve_protocols as solve

    solve(s)
    return [f"postconf -e '{PROTOCOLS_SOLUTION}', then labsim reload"]


for _step in (
    Step("tamper", "the attacker changed a message in transit", check_tamper, solve_tamper, lesson=1, exercise=True),
    Step("rsa-4096", "an RSA 4096 certificate from the lab's Let's Encrypt CA", check_rsa4096, solve_rsa4096,
         lesson=2, exercise=True),
    Step("client-encrypt", "a sending Postfix that requires TLS defers instead of sending in clear",
         check_client_encrypt, solve_client_encrypt, lesson=5, exercise=True),
    Step("tlsa", "the signed TLSA record matches the certificate the lab serves", check_tlsa, solve_tlsa,
         lesson=6, exercise=True),
    Step("mta-sts", "the lab domain's MTA-STS policy is published, served over verified HTTPS and enforced for "
         "its MX", check_mtasts, solve_mtasts, lesson=6, exercise=True),
    Step("tls-protocols", "the server no longer offers TLS 1.0 and 1.1 (smtpd_tls_protocols)", check_protocols,
         solve_protocols, lesson=7, exercise=True),
):
    register(_step)
