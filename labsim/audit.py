"""An audit as administrators do it: testssl.sh (Debian package ``testssl.sh``, command ``testssl``) against the
lab's STARTTLS port, limited to what the lesson needs: protocols (``-p``), cipher categories (``-s``) and the
certificate and server defaults (``-S``), about 10 s (``-p`` alone about 4 s, ``-S`` alone about 6 s). Findings come
from testssl's own JSON file.

The simulator builds its TLS from the same main.cf parameters as Postfix's smtpd (protocol range, cipher grade,
exclusions; ``labsim.sim.tls``), so testssl reads the same lines on both backends (``tests/test_audit.py``,
handshake by handshake ``tests/test_sim_ciphers.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .backends import postfix
from .errors import LabError, MissingPackageError
from .settings import Settings


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str  # OK | INFO | LOW | MEDIUM | HIGH | CRITICAL | WARN
    finding: str


def installed() -> bool:
    return shutil.which("testssl") is not None


#: what each of testssl's checks is called here: protocols (-p), cipher categories (-s), server defaults and
#: the certificate (-S)
FLAGS = {"protocols": "-p", "ciphers": "-s", "certificate": "-S"}


def run(settings: Settings, port: int | None = None, *, cafile: Path | None = None,
        checks: tuple[str, ...] = ("protocols", "ciphers", "certificate"), timeout: float = 240) -> dict[str, Finding]:
    """testssl --starttls smtp -p -s -S against the lab server; findings by testssl's id (``TLS1``,
    ``cert_chain_of_trust``, ...). ``cafile``: also trust this CA (``--add-ca``), e.g. the lab CA.
    ``checks``: fewer of ``FLAGS`` for a shorter run."""
    if not installed():
        raise MissingPackageError("testssl.sh is not installed.", hint="As root: apt-get install -y testssl.sh")
    port = port or settings.smtp_port
    with tempfile.TemporaryDirectory(prefix="labsim-audit-") as tmp:
        out = Path(tmp) / "testssl.json"
        argv = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--starttls", "smtp",
                *(FLAGS[c] for c in checks), "--jsonfile", str(out)]
        if cafile:
            argv += ["--add-ca", str(cafile)]
        proc = subprocess.run(argv + [f"{settings.host}:{port}"], capture_output=True, text=True, timeout=timeout)
        try:
            items = json.loads(out.read_text())
        except (FileNotFoundError, ValueError) as e:
            raise LabError("testssl.sh wrote no findings.", detail=(proc.stdout + proc.stderr)[-2000:],
                           hint="Is the lab up and offering STARTTLS? labsim status") from e
    return {i["id"]: Finding(i["id"], i["severity"], i["finding"]) for i in items if "id" in i}


#: the findings the lesson reads, in the order testssl prints them
KEYS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "cipherlist_NULL", "cipherlist_aNULL",
        "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA", "cipherlist_AVERAGE", "cipherlist_STRONG",
        "cert_keySize", "cert_chain_of_trust")
def line(f: Finding) -> str:
    return f"{f.id:22} {f.severity:8} {f.finding}"


def summary(findings: dict[str, Finding]) -> list[str]:
    """The lines the lesson reads: protocols, cipher categories, key, chain of trust."""
    return [line(findings[k]) for k in KEYS if k in findings]


def allowed_protocols(value: str) -> list[str]:
    """The protocol names a ``smtpd_tls_protocols`` value allows, lowest first (``>=TLSv1`` ... ``TLSv1.3``)."""
    from .sim.tls import ORDER, protocol_range  # the lab's one parser of Postfix's protocol syntax

    low, high = protocol_range(value)
    return ORDER[ORDER.index(low):ORDER.index(high) + 1]


def offered(f: Finding) -> bool:
    return f.finding.startswith("offered")


def show(findings: dict[str, Finding]) -> None:
    """Print ``summary``: the lines the lesson reads, the same on both backends (tests/test_audit.py)."""
    for text in summary(findings):
        print(text)


# --- the tls-protocols step (lesson 7, registered in labsim.checks.exercises) -------------------------------

#: the lesson's setting: TLS 1.2 and later (RFC 8996 deprecates TLS 1.0 and 1.1)
PROTOCOLS_SOLUTION = "smtpd_tls_protocols=>=TLSv1.2"


def _handshake(settings: Settings, version: "ssl.TLSVersion") -> str:
    """STARTTLS, then a handshake offering only ``version`` (any cipher, no verification): the protocol
    negotiated, or why not."""
    import ssl
    import warnings

    from .smtpprobe import Conn

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")  # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0
    with warnings.catch_warnings():  # Python deprecates TLSVersion.TLSv1_1 itself: this probe needs it
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = version
    try:
        with Conn(settings.host, settings.smtp_port) as c:
            c.cmd("EHLO probe.lab")
            return c.starttls(settings.domain, context=ctx).version() or "?"
    except ssl.SSLError as e:
        return f"refused ({e.reason or e})"
    except (OSError, ConnectionError) as e:
        return f"no TLS ({e})"


def check_protocols(settings: Settings) -> list:
    """main.cf leaves TLS 1.0 and 1.1 out, and the running server refuses TLS 1.1 but does TLS 1.2."""
    import ssl

    from .checks import Condition

    s = settings
    value = postfix.get(s, "smtpd_tls_protocols")
    allowed = allowed_protocols(value)
    old = [p for p in ("TLSv1", "TLSv1.1") if p in allowed]
    v11 = _handshake(s, ssl.TLSVersion.TLSv1_1)
    v12 = _handshake(s, ssl.TLSVersion.TLSv1_2)
    return [
        Condition("protocols-config", not old and "TLSv1.2" in allowed,
                  f"smtpd_tls_protocols = {value} leaves out TLS 1.0 and 1.1 and keeps TLS 1.2" if not old and
                  "TLSv1.2" in allowed else f"smtpd_tls_protocols = {value} still allows {', '.join(old) or '...'}"
                  + ("" if "TLSv1.2" in allowed else " and not TLSv1.2"),
                  hint=f"postconf -e '{PROTOCOLS_SOLUTION.replace('=', ' = ', 1)}', then labsim reload"),
        Condition("protocols-served", v11.startswith("refused") and v12 == "TLSv1.2",
                  f"the server refuses a client that offers only TLS 1.1 and still does TLS 1.2"
                  if v11.startswith("refused") and v12 == "TLSv1.2" else
                  f"a client offering only TLS 1.1 gets: {v11}; only TLS 1.2: {v12}",
                  hint="labsim reload (smtpd reads smtpd_tls_protocols when it starts)"),
    ]


def solve_protocols(settings: Settings) -> None:
    """The folded solution: ``postconf -e 'smtpd_tls_protocols = >=TLSv1.2'``, then a reload."""
    from . import lab
    from .checks import wait_new_load

    postfix.postconf(settings, "-e", PROTOCOLS_SOLUTION, check=True)
    mark = postfix.log_size(settings)
    lab.reload(settings)
    wait_new_load(settings, mark, timeout=20)
