"""The lab as a whole: up, down, status, restart, reload, doctor, over either backend.

Backends: ``postfix`` (the private real Postfix instance, needs root) and ``sim`` (the aiosmtpd
simulator, which answers like Postfix 3.7 and needs no root). Both use the same lab home, main.cf, log
file and mailbox. The lab CA (pebble) runs beside either. Which one serves is chosen once
(``choose_backend``, remembered in the state file); everything after goes through
:class:`labsim.backends.Backend` (prepare, start, stop, reload, running, problems).
"""

from __future__ import annotations

import json
import os
import time
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

from . import acme, backends, certs
from .backends import postfix
from .errors import LabError
from .ports import is_free
from .settings import PORTS, Settings

TLS_LEVELS_SMTPD = ("", "none", "may", "encrypt")


# --- backend choice ----------------------------------------------------------------------------------

def choose_backend(settings: Settings, requested: str | None = None) -> tuple[str, str]:
    """(backend, why). ``auto`` picks the real Postfix where it can run, else the simulator."""
    want = requested or settings.backend
    how = "with --backend" if requested else "with LABSIM_BACKEND"
    if want == "postfix":
        postfix.require_installed()
        postfix.require_root()
        return "postfix", f"asked for {how}"
    if want == "sim":
        return "sim", f"asked for {how}"
    if not postfix.installed():
        return "sim", "Postfix is not installed (apt-get install postfix), so the lab uses the simulator"
    if os.geteuid() != 0:
        return "sim", "starting a real Postfix needs root, so the lab uses the simulator"
    return "postfix", "Postfix is installed and we are root"


def backend_explained(backend: str, why: str) -> str:
    """One paragraph for ``make lab``/``labsim up``: which backend, why, and what that means."""
    if backend == "postfix":
        return (f"Backend: postfix ({why}). A real Postfix 3.7 runs from the lab home on 127.0.0.1; the "
                "system's /etc/postfix and port 25 are not touched.")
    return (f"Backend: sim ({why}). The simulator answers reply for reply like Postfix 3.7 and reads the same "
            "main.cf; postconf edits it, postfix reload is labsim reload. The sending side of notebook 05 is the "
            "lab's work-alike of a sending Postfix. For the real Postfix: as root, labsim down; labsim up.")


def shell_path(settings: Settings, path: str | None = None) -> str:
    """PATH for a learner's shell or the course's kernel: this venv's bin first (its labsim), then PATH, then
    the Postfix commands' /usr/sbin and /sbin (not on an ordinary user's PATH), and last, where no real
    Postfix is installed, the simulator's postconf work-alike. Nothing twice."""
    import sys
    from pathlib import Path

    venv = str(Path(sys.executable).parent)
    parts = [venv] + [p for p in (os.environ.get("PATH", "") if path is None else path).split(os.pathsep) if p]
    parts += ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    alike = postfix.work_alike_bin(settings)
    if alike:
        parts.append(str(alike))
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    return os.pathsep.join(seen)


def suggest(name: str, limit: int = 3) -> list[str]:
    """The Postfix parameter names nearest to a misspelt one (``smtpd_tls_cert_fle`` -> ``smtpd_tls_cert_file``)."""
    import difflib

    from .maincf import defaults

    return difflib.get_close_matches(name, list(defaults()), n=limit, cutoff=0.75)


def unused_parameters(settings: Settings) -> list[tuple[str, list[str]]]:
    """Names main.cf sets that Postfix does not know (and nothing references): Postfix ignores them
    (``postconf -n`` warns "unused parameter"). With the nearest known names, for a typo."""
    from .maincf import MainCf

    if not (settings.config_dir / "main.cf").exists():
        return []
    return [(n, suggest(n)) for n in MainCf.load(settings.config_dir).unused()]


def unused_message(name: str, near: list[str]) -> str:
    mean = f" (did you mean {' or '.join(near)}?)" if near else ""
    return f"main.cf sets {name}, which is not a Postfix parameter{mean}: Postfix ignores it"


def _state(settings: Settings) -> dict[str, Any]:
    try:
        return json.loads(settings.state_file.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def backend_of(settings: Settings) -> str:
    """The backend the lab was brought up with (or would be, if it is down)."""
    st = _state(settings)
    if st.get("backend"):
        return st["backend"]
    try:
        return choose_backend(settings)[0]
    except LabError:
        return "postfix"


def backend_running(settings: Settings, backend: str | None = None) -> bool:
    return backends.get(backend or backend_of(settings)).running(settings)


# --- up / down ---------------------------------------------------------------------------------------

def up(settings: Settings, backend: str | None = None, *, with_ca: bool = True) -> dict[str, Any]:
    """Create the lab if needed, start the lab CA and the backend. Safe to run twice."""
    chosen, why = choose_backend(settings, backend)
    current = _state(settings).get("backend")
    if current and current != chosen and backend_running(settings, current):
        raise LabError(
            f"The lab is running with the {current} backend.",
            hint=f"Stop it first (labsim down), then: labsim up --backend {chosen}",
        )
    postfix.create_config(settings)
    postfix.work_alike_bin(settings)  # without Postfix: (re)write the postconf shim, also one an older labsim wrote
    server = backends.get(chosen)
    server.prepare(settings)
    ca_was_running = acme.is_running(settings)
    server_was_running = backend_running(settings, chosen)
    try:
        if with_ca and acme.installed():
            acme.start(settings)
        server.start(settings)
    except BaseException:
        # A failed up leaves nothing it started running (the CA, half a mail server): roll back.
        if not server_was_running:
            try:
                server.stop(settings)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
        if not ca_was_running:
            acme.stop(settings)
        raise
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    settings.state_file.write_text(json.dumps({"backend": chosen, "why": why, **settings.ports()}, indent=2))
    return status(settings)


def down(settings: Settings) -> None:
    """Stop everything this lab started (both backends, the sending Postfix, the CA). Files stay."""
    from . import sender  # imports labsim.backends.postfix itself: imported here, where it is needed

    sender.down(settings)
    for server in backends.all_backends():  # both: a lab's state file may be gone or name the other
        try:
            server.stop(settings)
        except ImportError:  # the simulator's libraries are missing: it cannot be running
            pass
    acme.stop(settings)
    from . import dns; dns.down(settings)  # the lab zone's NSD and the validating resolver (issue 17)
    settings.state_file.unlink(missing_ok=True)


def restart(settings: Settings) -> None:
    """Stop and start the mail server: what ``systemctl restart postfix`` does on a server."""
    server = backends.get(backend_of(settings))
    server.stop(settings)
    server.start(settings)


def reload(settings: Settings) -> None:
    """``postfix reload``: re-read the configuration without stopping."""
    backends.get(backend_of(settings)).reload(settings)


@dataclass
class Health:
    """What a client finds after a change: is the server serving, does STARTTLS work, what the log says."""

    serving: bool
    banner: str = ""
    tls: str = ""  # ok | not offered | refused: <reply> | handshake failed: <why> | (empty: not tried)
    level: str = ""
    problems: list[tuple[str, str]] = field(default_factory=list)  # (log line, what to do)

    @property
    def tls_broken(self) -> bool:
        return self.tls.startswith(("refused", "handshake failed")) or (
            self.tls == "not offered" and self.level in ("may", "encrypt"))

    @property
    def ok(self) -> bool:
        return self.serving and not self.tls_broken and not self.problems


def health(settings: Settings, mark: int = 0, timeout: float = 5.0) -> Health:
    """Probe the lab's server as a client would after a change (banner, EHLO, STARTTLS, a TLS handshake)
    and read the log lines written since byte ``mark``: the fatal, the throttling, the TLS warning."""
    import socket
    import ssl

    from .smtpprobe import Conn

    from .maincf import MainCf  # the one main.cf model, in process (a postconf call takes ~1 s)

    level = MainCf.load(settings.config_dir).get("smtpd_tls_security_level").strip()
    h = Health(False, level=level)
    try:
        with Conn(settings.host, settings.smtp_port, timeout) as c:
            h.banner = c.banner
            h.serving = c.banner.startswith("220")
            ehlo = c.cmd("EHLO labsim.check")
            if "STARTTLS" not in ehlo:
                h.tls = "not offered"
            else:
                r = c.cmd("STARTTLS")
                if not r.startswith("220"):
                    h.tls = f"refused: {r}"
                else:
                    try:
                        c.wrap_tls(settings.domain, verify=False)
                        h.tls = "ok"
                    except (ssl.SSLError, OSError) as e:
                        h.tls = f"handshake failed: {e}"
    except (OSError, ConnectionError, socket.timeout):
        pass
    time.sleep(0.3)  # postlogd writes asynchronously
    lines = postfix.problems(postfix.log_since(settings, mark))
    seen: set[str] = set()
    for line in lines:
        text = line.split("]: ", 1)[-1]
        # OpenSSL's error stack after Postfix's own warning ("TLS library problem: error:...") says the same
        # thing again, in OpenSSL's words: the warning before it is the line to quote.
        if "TLS library problem:" in text and h.problems:
            continue
        if text not in seen:
            seen.add(text)
            h.problems.append((line, _hint_for_log(line)))
    return h


def explain_health(settings: Settings, h: Health, did: str) -> list[str]:
    """Lines for the CLI: what the change left (empty when all is well)."""
    where = f"{settings.host}:{settings.smtp_port}"
    out: list[str] = []
    if not h.serving:
        out.append(f"{did}, but the mail server does not serve on {where}: "
                   + (f"its greeting is '{h.banner}'" if h.banner else "no greeting within 5 s (clients wait, then give up)"))
    elif h.tls_broken:
        what = {"not offered": "EHLO does not offer STARTTLS"}.get(h.tls, f"STARTTLS {h.tls}")
        out.append(f"{did}, and the server answers, but TLS does not work: {what}"
                   + (" (at encrypt nobody can send)" if h.level == "encrypt" else ""))
    elif h.problems:
        out.append(f"{did}; the server serves, and its log has warnings:")
    hints: list[str] = []
    for line, hint in h.problems[:8]:
        out.append(f"  log: {line}")
        if hint not in hints:
            hints.append(hint)
    generic = "see labsim logs"
    if len(hints) > 1 and generic in hints:
        hints.remove(generic)
    if not h.problems and (not h.serving or h.tls_broken):
        hints.append("labsim doctor checks the configuration; labsim logs shows the log")
    out += [f"  fix: {hint}" for hint in hints]
    return out


# --- status --------------------------------------------------------------------------------------------

def status(settings: Settings) -> dict[str, Any]:
    """What a learner (or a test) needs to know about the lab, as plain data (``status --json``)."""
    backend = backend_of(settings)
    configured = (settings.config_dir / "main.cf").exists()

    from .maincf import ConfigError, MainCf  # the one main.cf model, in process

    # The values smtpd uses ($name expanded, chain files first); a main.cf too broken to read is a problem
    # to report, not a reason to report nothing.
    cert = key = level = ""
    config_problem = []
    if configured:
        try:
            conf = MainCf.load(settings.config_dir)
            files = conf.server_tls_files()
            cert, key = files.cert, files.key
            level = conf.get("smtpd_tls_security_level").strip()
        except ConfigError as e:
            config_problem = [f"main.cf: {e.message}"]
    running = backend_running(settings, backend)
    banner = probe(settings) if running else None
    return {
        "backend": backend,
        "running": running,
        "banner": banner,
        "host": settings.host,
        "smtp_port": settings.smtp_port,
        "domain": settings.domain,
        "home": str(settings.home),
        "config_dir": str(settings.config_dir),
        "log_file": str(settings.log_file),
        "mailbox": str(settings.mailbox),
        "cert_file": cert,
        "key_file": key,
        "tls_security_level": level,
        "lab_ca": str(settings.lab_ca),
        "ca_running": acme.is_running(settings),
        "acme_directory": settings.acme_directory_url,
        "certificate_issued": acme.issued(settings),
        "problems": config_problem + recent_problems(settings),
        "unused_parameters": [unused_message(n, near) for n, near in unused_parameters(settings)],
    }


def probe(settings: Settings, timeout: float = 3.0) -> str | None:
    """Connect to the lab's SMTP port and return its banner (None when no banner comes).

    A new smtpd process reads main.cf when it starts and logs what it dislikes there (an invalid TLS
    level, a key that does not match): probing makes those log lines appear for status and doctor.
    """
    from .smtpprobe import Conn

    try:
        with Conn(settings.host, settings.smtp_port, timeout) as c:
            banner = c.banner.splitlines()[0] if c.banner else ""
    except (OSError, ConnectionError):
        banner = ""
    time.sleep(0.3)  # postlogd writes asynchronously: let the log catch up with this smtpd
    return banner or None


def recent_problems(settings: Settings, keep: int = 6) -> list[str]:
    """The last few Postfix warning/fatal/error lines of the lab log since the last start or reload."""
    return backends.get(backend_of(settings)).problems(settings, keep)


# --- doctor --------------------------------------------------------------------------------------------

@dataclass
class Finding:
    ok: bool
    what: str
    hint: str = ""
    level: str = "fail"  # fail | warn | info (when ok is False)


def doctor(settings: Settings) -> list[Finding]:
    """Check everything a lab needs and say, for each problem, what to do."""
    out: list[Finding] = []
    tools = {"postfix": "postfix", "postconf": "postfix", "posttls-finger": "postfix", "pebble": "pebble",
             "pebble-challtestsrv": "pebble", "certbot": "certbot", "swaks": "swaks", "openssl": "openssl"}
    missing = sorted({pkg for cmd, pkg in tools.items() if not (shutil.which(cmd) or postfix.find(cmd))})
    out.append(Finding(not missing, "Debian packages installed" if not missing else f"missing packages: {' '.join(missing)}",
                       f"as root: apt-get install -y {' '.join(missing)}   (or make lab)"))
    root = os.geteuid() == 0
    st = _state(settings)
    if root:
        out.append(Finding(True, "running as root"))
    elif st.get("backend") == "sim":
        out.append(Finding(False, "not root: the lab runs on the simulator (a real Postfix needs root), and "
                           "notebook 5's sender on the work-alike", "nothing to do; for the real Postfix: "
                           "as root, labsim down, then labsim up", level="info"))
    else:
        out.append(Finding(False, "not root: the real Postfix backend cannot start",
                           "use the simulator: labsim up --backend sim (or, as root: labsim up)", level="warn"))
    running = bool(st) and backend_running(settings)
    for attr, var, _default in PORTS:
        port = getattr(settings, attr)
        if attr == "jupyter_port":
            continue
        free = is_free(port, settings.host)
        if free or running:
            continue
        own = lab_listener(settings, port)
        if own:
            out.append(Finding(False, f"port {port} ({var}) is held by this lab's own {own}, left running",
                               "labsim down stops every process of the lab; then labsim up"))
        else:
            out.append(Finding(False, f"port {port} ({var}) is in use by another program",
                               f"stop it (ss -ltnp 'sport = :{port}') or export {var}=<free port>"))
    cfg = settings.config_dir / "main.cf"
    if not cfg.exists():
        out.append(Finding(False, f"no lab configuration yet ({cfg})", "labsim up", level="info"))
        return out
    level = postfix.get(settings, "smtpd_tls_security_level")
    out.append(Finding(level in TLS_LEVELS_SMTPD, f"smtpd_tls_security_level = {level}",
                       "the server side accepts none, may or encrypt: labsim postconf -e smtpd_tls_security_level=may"))
    for name, near in unused_parameters(settings):
        fix = f"labsim postconf -X {name}" + (f", then labsim postconf -e '{near[0]}=VALUE'" if near else "")
        out.append(Finding(False, unused_message(name, near), fix, level="warn"))
    s = status(settings)
    cert, key = s["cert_file"], s["key_file"]
    if level not in ("", "none"):
        out.extend(_check_cert(settings, cert, key))
    out.append(Finding(s["running"], f"{s['backend']} backend running on {settings.host}:{settings.smtp_port}"
                       if s["running"] else f"{s['backend']} backend not running", "labsim up"))
    out.append(Finding(s["ca_running"], "lab CA (pebble) running" if s["ca_running"] else "lab CA (pebble) not running",
                       "labsim up", level="warn"))
    for line in s["problems"]:
        out.append(Finding(False, f"Postfix log: {line}", _hint_for_log(line)))
    return out


def lab_listener(settings: Settings, port: int) -> str:
    """``"pebble (pid 123)"`` when the process listening on ``port`` belongs to this lab (its command line
    or environment names the lab home), else "" (another program's, or one we may not look into)."""
    import psutil

    home = str(settings.home)
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        conns = []
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            try:
                p = psutil.Process(c.pid)
                cmd = " ".join(p.cmdline())
                try:
                    env = p.environ()
                except (psutil.AccessDenied, OSError):
                    env = {}
                if home in cmd or any(home in v for v in env.values()):
                    return f"{p.name()} (pid {c.pid})"
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return ""


def _check_cert(settings: Settings, cert: str, key: str) -> list[Finding]:
    out: list[Finding] = []
    from pathlib import Path

    live = settings.live_dir()
    issued = (live / "fullchain.pem").exists() and (live / "privkey.pem").exists()
    for label, param, path in (("certificate", "smtpd_tls_cert_file", cert), ("private key", "smtpd_tls_key_file", key)):
        if not path or not Path(path).exists():
            if issued:  # a wrong path (a typo), not a missing certificate
                hint = (f"check the path in {param} (labsim postconf {param}); certbot's files are "
                        f"{live}/fullchain.pem and {live}/privkey.pem")
            else:
                hint = (f"check the path in {param} (labsim postconf {param}), or issue a certificate with "
                        "labsim certbot certonly ... and use its fullchain.pem and privkey.pem")
            out.append(Finding(False, f"{label} file {path or '(unset)'} does not exist", hint))
            return out
    try:
        match = certs.key_matches(Path(cert), Path(key))
    except LabError as e:
        return out + [Finding(False, e.message, e.hint)]
    out.append(Finding(match, "private key matches the certificate" if match else
                       f"private key {key} does not belong to certificate {cert}",
                       "set both from the same live/DOMAIN directory: fullchain.pem and privkey.pem"))
    mode = Path(key).stat().st_mode & 0o077
    out.append(Finding(mode == 0, "private key is readable by its owner only" if mode == 0 else
                       f"private key {key} is readable by others", f"chmod 600 {key}"))
    try:
        certs.verify_chain(Path(cert), settings.lab_ca, settings.domain)
        out.append(Finding(True, f"certificate chain verifies for {settings.domain} against the lab CA"))
    except LabError as e:
        out.append(Finding(False, e.message, e.hint, level="warn"))
    return out


def _hint_for_log(line: str) -> str:
    """What to do about one warning/fatal line of the Postfix log (the real one's wording, and the simulator's)."""
    low = line.lower()
    if "throttling" in low:
        return ("Postfix waits 60 s before it starts a failing smtpd again; after fixing main.cf, "
                "labsim restart (a reload keeps the wait)")
    if "invalid tls level" in low:
        return ("smtpd_tls_security_level takes none, may or encrypt: labsim postconf -e smtpd_tls_security_level=may, "
                "then labsim restart")
    if "specify at least one working instance of" in low:
        return ("smtpd needs a relay restriction: labsim postconf -e 'smtpd_relay_restrictions=permit_mynetworks "
                "permit_sasl_authenticated defer_unauth_destination', then labsim restart")
    if "invalid tls protocol list" in low or "protocols" in low:
        return "fix smtpd_tls_protocols, e.g. labsim postconf -e 'smtpd_tls_protocols=>=TLSv1.2', then labsim reload"
    if ("key values mismatch" in low or "does not match public key" in low or "cannot get" in low
            and "private key" in low):
        return ("smtpd_tls_key_file must be the key of smtpd_tls_cert_file: set both from the same directory, "
                "e.g. certbot's live/DOMAIN/fullchain.pem and privkey.pem (labsim postconf -e ...), then labsim reload")
    if "error opening" in low or "no such file" in low or "cannot load" in low or "cannot get" in low:
        return ("a file named in main.cf does not exist or cannot be read: check the path "
                "(labsim postconf smtpd_tls_cert_file smtpd_tls_key_file; ls -l it), then labsim reload")
    if "disabling tls support" in low:
        return "TLS is off until the certificate and key settings work: labsim doctor says which, then labsim reload"
    if "unknown" in low or "invalid" in low:
        return "fix the value with labsim postconf -e 'name=value' (postconf(5) lists valid values), then labsim reload"
    return "see labsim logs"


def findings_json(findings: list[Finding]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings]
