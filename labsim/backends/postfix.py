"""The lab's private, real Postfix instance.

It runs from its own configuration directory (``settings.config_dir``) with its own queue, data
directory, log file and mailbox, all under the lab home, listening on 127.0.0.1 only. Every Postfix
command is given ``-c <config dir>``: the system's ``/etc/postfix`` and its instance are never read,
modified, started or stopped.

Its main.cf starts as a stock Debian/Ubuntu install does (the "snakeoil" self-signed certificate,
``smtpd_tls_security_level = may``), so what the lesson's ``postconf`` commands show here is what a
student sees on a fresh server.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

from .. import certs, procs
from ..errors import LabError, MissingPackageError, NotRootError
from ..ports import is_free, require_free, wait_listening
from ..settings import Settings

SBIN = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
MASTER_CF_DIST = Path("/usr/share/postfix/master.cf.dist")
#: Delivery to the lab mailbox runs as this user when the lab belongs to root: virtual(8) refuses uid 0.
NOBODY = 65534


def find(cmd: str) -> str | None:
    """Path of a Postfix command (they live in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which(cmd)
    if found:
        return found
    for d in SBIN:
        p = Path(d) / cmd
        if p.exists():
            return str(p)
    return None


def installed() -> bool:
    return find("postfix") is not None and find("postconf") is not None


def require_installed() -> None:
    if not installed():
        raise MissingPackageError(
            "Postfix is not installed on this machine.",
            hint="As root: echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; "
            "apt-get install -y postfix   (or run `make lab`, which does this). "
            "Without it, use the simulator: labsim up --backend sim",
        )


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            "Starting a real Postfix needs root (its master process binds ports and switches users).",
            hint="Run as root (sudo labsim up), or use the simulator, which needs no root: labsim up --backend sim. "
            "Without root you can still read and edit the lab configuration: labsim postconf ... (postconf -c).",
        )


# --- configuration ---------------------------------------------------------------------------------

def main_cf_text(settings: Settings, mail_uid: int, mail_gid: int) -> str:
    """The lab's main.cf: Debian's stock file, then the lab's own (annotated) settings."""
    s = settings
    return f"""\
# main.cf of a labsim Postfix instance ("Securing Postfix with TLS", LPIC-2 202-450).
# Edit it as on a real server, aimed at this lab:  labsim postconf -e 'name=value'
#   (or: export MAIL_CONFIG={s.config_dir}; postconf -e 'name=value')

# ---- As on a fresh Debian/Ubuntu install (/usr/share/postfix/main.cf.debian) ----
smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no
append_dot_mydomain = no
readme_directory = no
compatibility_level = 3.6

# ---- TLS parameters, as Debian's installer writes them (/usr/share/postfix/main.cf.tls) ----
# The stock certificate is self-signed ("snakeoil"): it encrypts, but proves nothing.
smtpd_tls_cert_file = {s.snakeoil_cert}
smtpd_tls_key_file = {s.snakeoil_key}
smtpd_tls_security_level = may
smtp_tls_CApath = /etc/ssl/certs
smtp_tls_security_level = may
smtp_tls_session_cache_database = btree:${{data_directory}}/smtp_scache
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination

# ---- The lab's own settings ----
myhostname = {s.domain}
# Listen on the loopback address only, IPv4.
inet_interfaces = {s.host}
inet_protocols = ipv4
# No trusted client networks: every client, even on 127.0.0.1, is treated like a stranger from the
# internet, so this instance is never a relay (a foreign recipient gets "454 4.7.1 ... Relay access denied").
mynetworks =
mydestination =
relayhost =
alias_maps =
alias_database =
# Everything this instance keeps lives under the lab home, never in /var/spool/postfix or /var/log.
queue_directory = {s.queue_dir}
data_directory = {s.data_dir}
maillog_file = {s.log_file}
maillog_file_prefixes = {s.log_dir}
# Mail for the lab domain is delivered into one Maildir: {s.mailbox}/
virtual_mailbox_domains = $myhostname
virtual_mailbox_base = {s.mail_dir}
virtual_mailbox_maps = static:student/
virtual_uid_maps = static:{mail_uid}
virtual_gid_maps = static:{mail_gid}
# The lab has no internet: mail for anywhere else fails at once instead of waiting in the queue.
default_transport = error:the lab has no route to the internet
relay_transport = error:the lab has no route to the internet
"""


def _mail_owner(settings: Settings) -> tuple[int, int]:
    st = settings.home.stat()
    if st.st_uid == 0:
        return NOBODY, NOBODY
    return st.st_uid, st.st_gid


def check_home_reachable(settings: Settings) -> None:
    """Postfix opens its lock and queue files as the ``postfix`` user: every directory above the lab
    home must let that user through (search permission)."""
    try:
        pw = pwd.getpwnam("postfix")
    except KeyError:
        return  # no postfix user: Postfix is not installed; require_installed() says so
    for d in [settings.home, *settings.home.parents]:
        st = d.stat()
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == pw.pw_gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise LabError(
                f"The postfix user cannot reach the lab home {settings.home}: {d} is mode "
                f"{stat.S_IMODE(st.st_mode):04o}.",
                hint="Postfix opens its queue and lock files as the postfix user. Put the lab elsewhere, "
                "e.g. export LABSIM_HOME=/var/lib/labsim (the default for root).",
            )


def create_config(settings: Settings, *, force: bool = False) -> bool:
    """Lay out the lab home and write a stock main.cf/master.cf. Returns False when it already exists.

    Works without root and without Postfix installed (the simulator reads the same main.cf); with
    Postfix installed, master.cf is Debian's, with the smtpd moved to the lab port.
    """
    s = settings
    s.home.mkdir(parents=True, exist_ok=True)
    if s.home.stat().st_uid == os.geteuid():
        os.chmod(s.home, 0o711)  # others may pass through (the postfix user must), not list
    main_cf = s.config_dir / "main.cf"
    if main_cf.exists() and not force:
        return False
    for d in (s.config_dir, s.log_dir, s.run_dir, s.ssl_dir, s.queue_dir):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(s.ssl_dir, 0o700)
    uid, gid = _mail_owner(s)
    for d in (s.mail_dir, s.mailbox, s.mailbox / "new", s.mailbox / "cur", s.mailbox / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(d, uid, gid)
    s.data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postfix")
            os.chown(s.data_dir, pw.pw_uid, 0)
        except KeyError:
            pass
    if not s.snakeoil_cert.exists() or not s.snakeoil_key.exists():
        certs.self_signed(s.snakeoil_cert, s.snakeoil_key, [s.domain])
    main_cf.write_text(main_cf_text(s, uid, gid))
    _write_master_cf(s)
    return True


def _write_master_cf(s: Settings) -> None:
    master = s.config_dir / "master.cf"
    if MASTER_CF_DIST.exists():
        text = MASTER_CF_DIST.read_text()
    else:  # no Postfix here: a minimal master.cf, enough for the simulator and postconf -M to read
        text = "smtp      inet  n       -       y       -       -       smtpd\n"
    master.write_text(text)
    if installed():
        # The lab's smtpd listens on the lab port, not 25; no service is chrooted (the lab home has no
        # copy of /etc for a chroot); Postfix's own postconf does the editing.
        postconf(s, "-M", f"{s.smtp_port}/inet={s.smtp_port} inet n - n - - smtpd")
        postconf(s, "-MX", "smtp/inet")
        postconf(s, "-F", "*/*/chroot = n")
    else:
        master.write_text(
            f"{s.smtp_port}      inet  n       -       n       -       -       smtpd\n"
            + text.replace("smtp      inet  n       -       y       -       -       smtpd\n", "")
        )


# --- commands ----------------------------------------------------------------------------------------

def postconf(settings: Settings, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``postconf -c <lab config dir> ARGS...``: the real postconf when installed, else the
    simulator's work-alike. ``check=True`` raises LabError with postconf's own message on failure."""
    real = find("postconf")
    if real:
        cmd = [real, "-c", str(settings.config_dir), *args]
    else:
        import sys

        cmd = [sys.executable, "-m", "labsim.maincf.postconf_alike", "-c", str(settings.config_dir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(settings))
    if check and proc.returncode != 0:
        raise LabError(
            f"postconf {' '.join(args)} failed.", detail=(proc.stderr or proc.stdout).strip(),
            hint="Check the parameter name and value against postconf(5): labsim postconf -d NAME shows the default.",
        )
    return proc


def work_alike_bin(settings: Settings) -> Path | None:
    """Where no real postconf is installed: a directory with a ``postconf`` that runs the simulator's
    work-alike, to put at the end of PATH so the lesson's ``postconf ...`` reads the same on both backends.
    None when the real one exists."""
    if find("postconf"):
        return None
    import sys

    bindir = settings.home / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shim = bindir / "postconf"
    shim.write_text(f'#!/bin/sh\n# postconf work-alike (labsim.maincf): no real Postfix on this machine\n'
                    f'exec "{sys.executable}" -m labsim.maincf.postconf_alike "$@"\n')
    shim.chmod(0o755)
    return bindir


def get(settings: Settings, name: str) -> str:
    """The value of one parameter as Postfix sees it (``postconf -h NAME``; empty when unset)."""
    proc = postconf(settings, "-h", name)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def get_many(settings: Settings, *names: str) -> dict[str, str]:
    """Several parameters in one ``postconf NAME...`` call (each call starts a process)."""
    proc = postconf(settings, *names)
    out = dict.fromkeys(names, "")
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition(" =")
        if sep and name in out:
            out[name] = value.strip()
    return out


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env["MAIL_CONFIG"] = str(settings.config_dir)
    return env


def _postfix(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find("postfix") or "postfix", "-c", str(settings.config_dir), *args],
        capture_output=True, text=True, env=_env(settings), timeout=timeout,
    )


def master_pid(settings: Settings) -> int | None:
    """The pid of this instance's master process, when it runs."""
    # Postfix writes this file itself (no start time in it): a stale one (a crash, a reboot) may name a pid
    # the system has since given to another program, so the process must also be called master.
    pid = procs.read_pidfile(settings.queue_dir / "pid" / "master.pid")
    if pid is None:
        return None
    try:
        return pid if procs.psutil.Process(pid).name() == "master" else None
    except procs.psutil.Error:
        return None


def prepare(settings: Settings) -> None:
    """Before a start: keep master.cf's smtpd on the lab port, also when LABSIM_SMTP_PORT changed since create."""
    proc = postconf(settings, "-M")
    services = proc.stdout.splitlines()
    inet_smtpd = [ln.split()[0] for ln in services if re.match(r"^\S+\s+inet\s.*\bsmtpd\b", ln)]
    want = str(settings.smtp_port)
    if want in inet_smtpd:
        return
    for name in inet_smtpd:
        if re.fullmatch(r"(\S+:)?\d+", name):
            postconf(settings, "-MX", f"{name}/inet")
    postconf(settings, "-M", f"{want}/inet={want} inet n - n - - smtpd")


def is_running(settings: Settings) -> bool:
    return master_pid(settings) is not None


def start(settings: Settings) -> None:
    """``postfix -c <lab> start``, then wait until the lab port answers; errors quote the Postfix log."""
    require_installed()
    require_root()
    if is_running(settings):
        return
    check_home_reachable(settings)
    require_free(settings.smtp_port, "LABSIM_SMTP_PORT", "the lab's SMTP server", settings.host)
    mark = log_size(settings)
    proc = _postfix(settings, "post-install", "create-missing")
    if proc.returncode != 0:
        raise LabError("Postfix could not create its lab directories.", detail=_explain(settings, mark, proc))
    proc = _postfix(settings, "start")
    if proc.returncode != 0 or not wait_listening(settings.smtp_port, settings.host, timeout=15):
        raise LabError(
            f"Postfix did not start on {settings.host}:{settings.smtp_port}.",
            detail=_explain(settings, mark, proc),
            hint="Read the log lines above; fix main.cf with labsim postconf, then labsim up again.",
        )


def stop(settings: Settings, timeout: float = 20) -> None:
    """``postfix -c <lab> stop``, and wait until the master process is gone."""
    pid = master_pid(settings)
    if pid is None:
        return
    _postfix(settings, "stop")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and master_pid(settings) is not None:
        time.sleep(0.05)
    if master_pid(settings) is not None:
        _postfix(settings, "abort")
        time.sleep(0.5)
    # The master's children (smtpd, ...) inherited its listening socket and exit a moment after it: a
    # start right now would find the port still taken. Wait until they have let go of it.
    while time.monotonic() < deadline + 5 and not is_free(settings.smtp_port, settings.host):
        time.sleep(0.05)


def reload(settings: Settings) -> None:
    """``postfix reload``: re-read main.cf and master.cf without dropping the listening socket."""
    require_installed()
    if not is_running(settings):
        raise LabError("The lab's Postfix is not running, so there is nothing to reload.", hint="labsim up")
    mark = log_size(settings)
    old = children(settings, "smtpd")
    proc = _postfix(settings, "reload")
    if proc.returncode != 0:
        raise LabError("postfix reload failed.", detail=_explain(settings, mark, proc))
    # Old smtpd processes finish "at their earliest convenience"; an idle one may still take the next
    # client with the old settings. Wait (briefly) until they are gone, so the next session sees the change.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and old & children(settings, "smtpd"):
        time.sleep(0.05)


def children(settings: Settings, name: str) -> set[int]:
    """Pids of the master's child processes called ``name`` (e.g. smtpd)."""
    master = master_pid(settings)
    if master is None:
        return set()
    return {pid for pid, (ppid, comm) in procs.table().items() if ppid == master and comm == name}


# --- the log ---------------------------------------------------------------------------------------

def log_size(settings: Settings) -> int:
    try:
        return settings.log_file.stat().st_size
    except FileNotFoundError:
        return 0


def log_since(settings: Settings, offset: int) -> str:
    try:
        with open(settings.log_file, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def log_tail(settings: Settings, max_bytes: int = 200_000) -> str:
    """The last ``max_bytes`` of the lab log, from a line start: the one reader of the log's end, for both
    backends (the simulator writes Postfix's lines)."""
    return tail(settings.log_file, max_bytes)


def tail(path: Path, max_bytes: int = 200_000) -> str:
    """The last ``max_bytes`` of a file, from a line start (a line the cut lands inside is dropped); '' when
    there is no such file."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            start = max(0, f.tell() - max_bytes)
            f.seek(max(0, start - 1))
            before = f.read(1) if start else b"\n"
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    if before != b"\n":
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


PROBLEM_WORDS = ("fatal:", "panic:", "error:", "warning:")


def problems(text: str) -> list[str]:
    """The log lines that explain a failure (Postfix's fatal/panic/error/warning lines)."""
    return [ln for ln in text.splitlines() if any(w in ln for w in PROBLEM_WORDS)]


def _explain(settings: Settings, mark: int, proc: subprocess.CompletedProcess[str]) -> str:
    time.sleep(0.3)  # postlogd writes asynchronously
    lines = problems(log_since(settings, mark))
    out = (proc.stdout + proc.stderr).strip()
    if out:
        lines.append(out)
    return "\n".join(lines) or f"(no message; see {settings.log_file})"
