"""Check a question's ``verify:`` blocks against the real software on this machine.

Why: a wrong fact in a question teaches the wrong thing. Every answer that the machine can show
(a parameter name, a default, a reply text, a path, a manual sentence) is checked by
tests/test_quiz_facts.py through these functions. The live ``smtp_reply`` kind needs a running lab
Postfix; the test sets the level and calls :func:`smtp_dialog`.

Each ``check_*`` returns ``None`` when the fact holds, else a one-line message saying what differs.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from labsim.smtpprobe import Conn

from .model import (
    CommandExists,
    CommandOutput,
    ManualText,
    ParameterExists,
    ParameterUnknown,
    PathExists,
    PostconfDefault,
    Question,
    SmtpReply,
)

MAN_ROOT = Path("/usr/share/man")
SBIN_DIRS = ("/usr/sbin", "/sbin")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _postconf(*args: str) -> subprocess.CompletedProcess[str]:
    # Never read the host's /etc/postfix/main.cf for defaults: -d ignores it; MAIL_CONFIG is dropped
    # so a lab's variables in the environment do not leak in.
    env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
    return subprocess.run(["postconf", *args], capture_output=True, text=True, env=env, timeout=30)


@lru_cache(maxsize=1)
def postconf_defaults() -> dict[str, str]:
    """Every parameter Postfix knows, with its compiled-in default (``postconf -d``)."""
    out = _postconf("-d").stdout
    values: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.partition(" =")
        if sep:
            values[name.strip()] = value.strip()
    return values


def check_postconf_default(v: PostconfDefault) -> str | None:
    defaults = postconf_defaults()
    if v.name not in defaults:
        return f"postconf -d knows no parameter {v.name}"
    if defaults[v.name] != v.value:
        return f"postconf -d {v.name} is {defaults[v.name]!r}, the question says {v.value!r}"
    return None


def check_parameter_exists(v: ParameterExists) -> str | None:
    return None if v.name in postconf_defaults() else f"{v.name} is not a Postfix parameter (postconf -d)"


def check_parameter_unknown(v: ParameterUnknown) -> str | None:
    return f"{v.name} is a real Postfix parameter, not a made-up distractor" if v.name in postconf_defaults() else None


def check_path_exists(v: PathExists) -> str | None:
    return None if os.path.lexists(v.path) else f"{v.path} does not exist"


def check_command_exists(v: CommandExists) -> str | None:
    path = os.environ.get("PATH", "") + os.pathsep + os.pathsep.join(SBIN_DIRS)
    return None if shutil.which(v.name, path=path) else f"command {v.name} not found"


@lru_cache(maxsize=None)
def manual_text(page: str) -> str:
    """The text of an installed manual page, troff markup stripped and blanks collapsed."""
    name, _, section = page.rpartition(".")
    candidates = sorted(MAN_ROOT.glob(f"man{section}/{name}.{section}*"))
    if not candidates:
        raise FileNotFoundError(f"manual page {page} not installed under {MAN_ROOT}")
    path = candidates[0]
    raw = gzip.open(path, "rt", errors="replace").read() if path.suffix == ".gz" else path.read_text()
    lines = []
    for line in raw.splitlines():
        if line.startswith(('.\\"', "'\\\"")):
            continue
        if line.startswith("."):
            # keep the arguments of a macro line (.IP "text", .SH name), drop the macro
            parts = line.split(None, 1)
            line = parts[1] if len(parts) > 1 else ""
            line = line.replace('"', " ") if parts[0] in (".IP", ".TP", ".SH", ".SS") else line
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\c", "", text)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\(em", "-").replace("\\(en", "-")
    return _squash(text)


def check_manual_text(v: ManualText) -> str | None:
    try:
        text = manual_text(v.page)
    except FileNotFoundError as exc:
        return str(exc)
    return None if _squash(v.text) in text else f"{v.page} does not say {v.text!r}"


@lru_cache(maxsize=None)
def _command_output(argv: tuple[str, ...]) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return _squash(proc.stdout + "\n" + proc.stderr)


def check_command_output(v: CommandOutput) -> str | None:
    try:
        out = _command_output(tuple(v.argv))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(v.argv)} failed: {exc}"
    return None if _squash(v.contains) in out else f"{' '.join(v.argv)} does not print {v.contains!r}"


OFFLINE_CHECKS = {
    "postconf_default": check_postconf_default,
    "parameter_exists": check_parameter_exists,
    "parameter_unknown": check_parameter_unknown,
    "path_exists": check_path_exists,
    "command_exists": check_command_exists,
    "manual_text": check_manual_text,
    "command_output": check_command_output,
}


def check_offline(v: object) -> str | None:
    """Check any verify block that needs no running Postfix."""
    return OFFLINE_CHECKS[v.kind](v)  # type: ignore[attr-defined]


# --- live SMTP dialogs ---------------------------------------------------------------------------------
def smtp_dialog(host: str, port: int, dialog: list[str], domain: str = "lab.itpro.tv") -> list[str]:
    """Run DIALOG and return the lines of the last reply (the greeting when DIALOG is empty).

    Speaks through the lab's one SMTP client (``labsim.smtpprobe.Conn``); after an accepted STARTTLS it
    does the handshake without verifying (the point is the replies, not trust). A server that closes the
    connection gives ``["(connection closed)"]``.
    """
    try:
        conn = Conn(host, port)
    except ConnectionError:
        return ["(connection closed)"]
    try:
        last = conn.banner
        for step in dialog:
            step = step.replace("{domain}", domain)
            last = conn.cmd(step)
            if step.upper() == "STARTTLS" and last.startswith("220"):
                conn.wrap_tls(host, verify=False)
        return last.split("\n")
    except ConnectionError:
        return ["(connection closed)"]
    finally:
        conn.close()


def judge_reply(v: SmtpReply, lines: list[str]) -> str | None:
    """Does the last reply match the block's expectations?"""
    shown = " | ".join(lines)
    if v.expect is not None and v.expect not in lines:
        return f"expected line {v.expect!r}, got {shown!r}"
    if v.expect_prefix is not None and not any(line.startswith(v.expect_prefix) for line in lines):
        return f"expected a line starting {v.expect_prefix!r}, got {shown!r}"
    if v.absent is not None and any(line.startswith(v.absent) for line in lines):
        return f"expected no line starting {v.absent!r}, got {shown!r}"
    return None


def needs_live(q: Question) -> bool:
    return any(v.kind == "smtp_reply" for v in q.verify)


# --- which questions must carry a verify block ---------------------------------------------------------
REPLY_LINE = re.compile(r"\b([2-5]\d\d [2-5]\.\d{1,3}\.\d{1,3})\b")
PACKAGE_PATHS = ("/etc/postfix", "/var/spool/postfix", "/usr/sbin/", "/usr/lib/postfix", "/usr/bin/")
POSTFIX_COMMANDS = {"postconf", "postfix", "postqueue", "postsuper", "postmap", "postalias", "newaliases",
                    "mailq", "sendmail", "posttls-finger", "postcat", "postdrop"}


def answer_texts(q: Question) -> list[str]:
    """What the question says is right: fill-in answers, or the text of the right choices."""
    return list(q.answers) if q.type == "fill" else [c.text for c in q.choices if c.correct]


def missing_verification(q: Question, parameters: set[str]) -> list[str]:
    """Facts in Q's right answers that the machine can show but no verify block checks.

    - a Postfix parameter name: needs postconf_default/parameter_exists for it (or an smtp_reply that sets it);
    - an SMTP reply ("530 5.7.0 ..."), or a bare reply code in a question tagged reply-codes: needs an
      smtp_reply expecting it;
    - a path under the Postfix package's directories: needs path_exists, or a postconf_default whose value
      is the path or its directory;
    - a Postfix command given as the whole answer: needs command_exists or path_exists.
    """
    named = {getattr(v, "name", None) for v in q.verify if v.kind in ("postconf_default", "parameter_exists")}
    named |= {k for v in q.verify if isinstance(v, SmtpReply) for k in v.settings}
    expected = [e for v in q.verify if isinstance(v, SmtpReply) for e in (v.expect, v.expect_prefix) if e]
    paths = {v.path.rstrip("/") for v in q.verify if isinstance(v, PathExists)}
    paths |= {v.value.rstrip("/") for v in q.verify if isinstance(v, PostconfDefault) and v.value.startswith("/")}
    commands = {v.name for v in q.verify if isinstance(v, CommandExists)}
    commands |= {os.path.basename(v.path) for v in q.verify if isinstance(v, PathExists)}
    problems: list[str] = []
    for text in answer_texts(q):
        for token in set(re.findall(r"[a-z][a-z0-9_]*_[a-z0-9_]+", text)):
            if token in parameters and token not in named:
                problems.append(f"parameter {token} is not checked (add parameter_exists or postconf_default)")
        for reply in REPLY_LINE.findall(text):
            if not any(e.startswith(reply) for e in expected):
                problems.append(f"reply {reply!r} is not checked by an smtp_reply block")
        if "reply-codes" in q.tags and re.fullmatch(r"[2-5]\d\d", text.strip()):
            if not any(e.startswith(text.strip()) for e in expected):
                problems.append(f"reply code {text.strip()} is not checked by an smtp_reply block")
        for path in re.findall(r"(?<![\w.])/[\w./-]+", text):
            path = path.rstrip("/.")
            if path.startswith(PACKAGE_PATHS) and path not in paths and os.path.dirname(path) not in paths:
                problems.append(f"path {path} is not checked (add path_exists or postconf_default)")
        word = text.strip()
        if os.path.basename(word) in POSTFIX_COMMANDS and os.path.basename(word) not in commands:
            problems.append(f"command {word} is not checked (add command_exists)")
    return sorted(set(problems))
