"""A second, sending Postfix: the SMTP client side of the lesson (``smtp_tls_security_level``).

Why a real one: what a sending MTA does when STARTTLS is missing is the whole point of the client-side
levels. At ``may`` it sends in clear (and an attacker who strips STARTTLS reads the mail); at
``encrypt`` it keeps the mail in its queue with ``status=deferred (TLS is required, but was not offered
by host ...)``. Those words come from Postfix itself, in this instance's own log.

The sender is a private Postfix built with :mod:`labsim.backends.postfix` under ``<lab home>/sender`` with its
own free port, then adjusted with postconf: it relays everything to ``relayhost = [127.0.0.1]:<port>``
(the lab's server, or the attacker in front of it), accepts mail from its local ``sendmail``, and logs
its TLS decisions (``smtp_tls_loglevel = 1``). All functions take the *lab's* Settings.

A real Postfix needs root. Without root (or with ``LABSIM_SENDER=client``) the same functions use
:mod:`labsim.sender_alike`: an SMTP client that follows ``smtp_tls_security_level`` as Postfix's smtp(8)
does, with the same main.cf, the same log lines and a queue of its own, checked against this real
sending Postfix by tests/test_nonroot_sender.py. ``LABSIM_SENDER=postfix`` insists on the real one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from . import sender_alike
from .backends import postfix
from .errors import LabError
from .ports import free_ports
from .settings import Settings

LEVELS = ("none", "may", "encrypt", "verify", "secure")
#: A delivery attempt in the log: ``QUEUEID: to=<rcpt>, relay=..., status=sent (250 2.0.0 Ok: ...)``.
STATUS_RE = re.compile(
    r"postfix/\w+\[\d+\]: (?P<queue_id>[0-9A-F]+): to=<(?P<to>[^>]*)>, (?:orig_to=<[^>]*>, )?"
    r"relay=(?P<relay>[^,]+),.*? status=(?P<status>\w+) \((?P<reason>.*)\)$"
)
MESSAGE_ID_RE = re.compile(r"postfix/cleanup\[\d+\]: (?P<queue_id>[0-9A-F]+): message-id=<(?P<mid>[^>]*)>")


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt, as the sender's log tells it."""

    queue_id: str
    to: str
    relay: str
    status: str  # sent | deferred | bounced
    reason: str
    line: str


@dataclass(frozen=True)
class Queued:
    """A message waiting in the sender's queue (``postqueue -j``) and why."""

    queue_id: str
    queue: str  # deferred | active | incoming | hold
    sender: str
    recipients: list[tuple[str, str]]  # (address, delay reason)


SENDER_VAR = "LABSIM_SENDER"


def uses_postfix() -> bool:
    """True when the sender is a real Postfix: root with Postfix installed (``LABSIM_SENDER=auto``, the
    default), or ``LABSIM_SENDER=postfix``; False for the work-alike (no root, or ``LABSIM_SENDER=client``)."""
    want = os.environ.get(SENDER_VAR, "auto").strip().lower() or "auto"
    if want not in ("auto", "postfix", "client"):
        raise LabError(f"{SENDER_VAR}={want!r} is not a sender.", hint="Use auto, postfix or client.")
    if want == "client":
        return False
    if want == "postfix":
        postfix.require_installed()
        postfix.require_root()
        return True
    return postfix.installed() and os.geteuid() == 0


def settings_for(lab: Settings) -> Settings:
    """The sender's own Settings: home ``<lab home>/sender``, its own port (chosen once, then kept)."""
    home = lab.home / "sender"
    state = home / "run" / "sender.json"
    try:
        port = int(json.loads(state.read_text())["smtp_port"])
    except (FileNotFoundError, ValueError, KeyError):
        port = free_ports(1, lab.host)[0]
    return Settings(home=home, host=lab.host, domain=f"sender.{lab.domain}", smtp_port=port, backend="postfix")


def up(lab: Settings, level: str = "may", *, target_port: int | None = None) -> Settings:
    """Create (first time), configure and start the sender; it relays to 127.0.0.1:``target_port``
    (default: the lab's server; pass ``lab.mitm_port`` to send through the attacker)."""
    s = settings_for(lab)
    created = postfix.create_config(s)
    if created:
        s.run_dir.mkdir(parents=True, exist_ok=True)
        (s.run_dir / "sender.json").write_text(json.dumps({"smtp_port": s.smtp_port}))
    configure(lab, level, target_port=target_port or lab.smtp_port)
    if uses_postfix():
        postfix.start(s)
    return s


def configure(lab: Settings, level: str | None = None, *, target_port: int | None = None) -> None:
    """Set the client's TLS level and/or where it relays; reloads a running sender."""
    s = settings_for(lab)
    if not (s.config_dir / "main.cf").exists():
        raise LabError("The sending Postfix does not exist yet.", hint="labsim.sender.up(settings) creates it.")
    if level is not None and level not in LEVELS:
        raise LabError(f"{level!r} is not a client TLS level this lab uses.", hint=f"Use one of: {', '.join(LEVELS)}.")
    params = [
        # Mail for the lab domain goes out by SMTP, to the relayhost, never to local delivery.
        "default_transport=smtp",
        "relay_transport=relay",
        "mynetworks=127.0.0.0/8",
        "smtp_tls_loglevel=1",
    ]
    if target_port:
        params.append(f"relayhost=[{lab.host}]:{target_port}")
    if level is not None:
        params.append(f"smtp_tls_security_level={level}")
    if lab.lab_ca.exists():  # a missing CAfile would break TLS altogether, so only when pebble made one
        params.append(f"smtp_tls_CAfile={lab.lab_ca}")
    names = [p.split("=", 1)[0] for p in params]
    now = postfix.postconf(s, "-h", *names).stdout.splitlines()
    if now == [p.split("=", 1)[1] for p in params]:
        return  # nothing changes: spare the reload (about 2 s)
    postfix.postconf(s, *params, check=True)
    if uses_postfix() and postfix.is_running(s):
        postfix.reload(s)  # long-running qmgr/trivial-rewrite and idle smtp processes must see it too


def down(lab: Settings) -> None:
    """Stop the sender (its queue stays, as on a real server). The work-alike runs no process."""
    s = settings_for(lab)
    if postfix.is_running(s):
        postfix.stop(s)


def send(lab: Settings, to: str | None = None, subject: str = "labsim test", body: str = "Hello from the sender.",
         *, sender: str | None = None) -> str:
    """Hand a message to the sender's ``sendmail -C`` (as a user's mail program would). Returns its
    Message-ID, which :func:`wait_delivery` follows through the log."""
    s = settings_for(lab)
    to = to or f"student@{lab.domain}"
    sender = sender or f"root@{s.domain}"
    mid = f"{uuid.uuid4().hex}@{s.domain}"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Date"], msg["Message-ID"] = formatdate(localtime=True), f"<{mid}>"
    msg.set_content(body)
    if not uses_postfix():
        if not (s.config_dir / "main.cf").exists():
            raise LabError("The sender does not exist yet.", hint="labsim.sender.up(settings) creates it.")
        sender_alike.submit(s, msg.as_bytes(), sender, to)
        return mid
    proc = subprocess.run(
        [postfix.find("sendmail") or "sendmail", "-C", str(s.config_dir), "-i", "-f", sender, "--", to],
        input=msg.as_bytes(), capture_output=True, timeout=30,
    )
    if proc.returncode != 0:
        raise LabError("The sending Postfix's sendmail refused the message.",
                       detail=proc.stderr.decode(errors="replace"), hint="Is it up? labsim.sender.up(settings)")
    return mid


def log(lab: Settings) -> str:
    """The sender's whole log (``maillog_file``)."""
    return postfix.log_since(settings_for(lab), 0)


def deliveries(lab: Settings, message_id: str | None = None) -> list[Delivery]:
    """Every delivery attempt in the sender's log, optionally of one message (by Message-ID)."""
    text = log(lab)
    ids = None
    if message_id:
        ids = {m["queue_id"] for m in MESSAGE_ID_RE.finditer(text) if m["mid"] == message_id.strip("<>")}
    out = []
    for line in text.splitlines():
        m = STATUS_RE.search(line)
        if m and (ids is None or m["queue_id"] in ids):
            out.append(Delivery(m["queue_id"], m["to"], m["relay"], m["status"], m["reason"], line))
    return out


def wait_delivery(lab: Settings, message_id: str, timeout: float = 20.0) -> Delivery:
    """Wait for the first delivery attempt of a message (sent, deferred or bounced) and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = deliveries(lab, message_id)
        if found:
            return found[-1]
        time.sleep(0.1)
    raise LabError(
        f"The sending Postfix made no delivery attempt for <{message_id}> within {timeout:.0f} s.",
        detail="\n".join(log(lab).splitlines()[-8:]),
        hint="Is the sender up (labsim.sender.up) and its relayhost reachable? "
        "Read its log: labsim.sender.log(settings)",
    )


def tls_lines(lab: Settings) -> list[str]:
    """The sender's TLS log lines (``smtp_tls_loglevel = 1``): "Untrusted TLS connection established ..."."""
    return [ln for ln in log(lab).splitlines() if "TLS" in ln and "postfix/smtp[" in ln]


def queue(lab: Settings) -> list[Queued]:
    """What waits in the sender's queue and why (``postqueue -j``, the JSON form of ``postqueue -p``)."""
    s = settings_for(lab)
    if uses_postfix():
        proc = subprocess.run([postfix.find("postqueue") or "postqueue", "-c", str(s.config_dir), "-j"],
                              capture_output=True, text=True, timeout=30)
        items = []
        for line in proc.stdout.splitlines():
            try:
                items.append(json.loads(line))
            except ValueError:
                continue
    else:
        items = sender_alike.queue_json(s)
    out = []
    for j in items:
        out.append(Queued(j["queue_id"], j["queue_name"], j.get("sender", ""),
                          [(r["address"], r.get("delay_reason", "")) for r in j.get("recipients", [])]))
    return out


def queue_text(lab: Settings) -> str:
    """``postqueue -p`` as a learner sees it (``mailq``): the reason of a deferral in parentheses."""
    s = settings_for(lab)
    if not uses_postfix():
        return sender_alike.queue_text(s)
    return subprocess.run([postfix.find("postqueue") or "postqueue", "-c", str(s.config_dir), "-p"],
                          capture_output=True, text=True, timeout=30).stdout


def flush(lab: Settings) -> None:
    """``postqueue -f``: try every deferred message again now (after fixing the TLS level, say)."""
    s = settings_for(lab)
    if not uses_postfix():
        sender_alike.flush(s)
        return
    subprocess.run([postfix.find("postqueue") or "postqueue", "-c", str(s.config_dir), "-f"],
                   capture_output=True, text=True, timeout=30)


def clear_queue(lab: Settings) -> None:
    """``postsuper -d ALL``: drop every queued message (between experiments)."""
    s = settings_for(lab)
    if not uses_postfix():
        sender_alike.clear(s)
        return
    subprocess.run([postfix.find("postsuper") or "postsuper", "-c", str(s.config_dir), "-d", "ALL"],
                   capture_output=True, text=True, timeout=30)
