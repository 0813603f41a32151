"""An audit as administrators do it: testssl.sh (Debian package ``testssl.sh``, command ``testssl``) against the
lab's STARTTLS port, limited to what the lesson needs: protocols (``-p``), cipher categories (``-s``) and the
certificate and server defaults (``-S``), about 10-20 s. Findings come from testssl's own JSON file."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import LabError, MissingPackageError
from .settings import Settings


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str  # OK | INFO | LOW | MEDIUM | HIGH | CRITICAL | WARN
    finding: str


def installed() -> bool:
    return shutil.which("testssl") is not None


def run(settings: Settings, port: int | None = None, *, cafile: Path | None = None,
        timeout: float = 240) -> dict[str, Finding]:
    """testssl --starttls smtp -p -s -S against the lab server; findings by testssl's id (``TLS1``,
    ``cert_chain_of_trust``, ...). ``cafile``: also trust this CA (``--add-ca``), e.g. the lab CA."""
    if not installed():
        raise MissingPackageError("testssl.sh is not installed.", hint="As root: apt-get install -y testssl.sh")
    port = port or settings.smtp_port
    with tempfile.TemporaryDirectory(prefix="labsim-audit-") as tmp:
        out = Path(tmp) / "testssl.json"
        argv = ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--starttls", "smtp", "-p", "-s", "-S",
                "--jsonfile", str(out)]
        if cafile:
            argv += ["--add-ca", str(cafile)]
        proc = subprocess.run(argv + [f"{settings.host}:{port}"], capture_output=True, text=True, timeout=timeout)
        try:
            items = json.loads(out.read_text())
        except (FileNotFoundError, ValueError) as e:
            raise LabError("testssl.sh wrote no findings.", detail=(proc.stdout + proc.stderr)[-2000:],
                           hint="Is the lab up and offering STARTTLS? labsim status") from e
    return {i["id"]: Finding(i["id"], i["severity"], i["finding"]) for i in items if "id" in i}


def summary(findings: dict[str, Finding]) -> list[str]:
    """The lines the lesson reads: protocols, cipher categories, key, chain of trust."""
    keys = ["SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3", "cipherlist_NULL", "cipherlist_aNULL",
            "cipherlist_EXPORT", "cipherlist_3DES_IDEA", "cipherlist_STRONG", "cert_keySize", "cert_chain_of_trust"]
    return [f"{k:22} {findings[k].severity:8} {findings[k].finding}" for k in keys if k in findings]
