"""Every default port and path of a lab, in one place.

Each value can be overridden by an environment variable, so that two labs (a student's lab and the
test suite, or thirty students in a classroom) never collide. Code never hard-codes a port or a path:
it asks ``Settings.from_env()`` (or builds a ``Settings`` with explicit values, as the tests do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

#: The lesson's domain. The lab's mock DNS resolves it to 127.0.0.1.
DEFAULT_DOMAIN = "lab.itpro.tv"

#: (attribute, environment variable, default) for every TCP port the lab may listen on.
PORTS: tuple[tuple[str, str, int], ...] = (
    ("smtp_port", "LABSIM_SMTP_PORT", 2525),  # the lab's MTA (Postfix, or the simulator)
    ("submission_port", "LABSIM_SUBMISSION_PORT", 2587),  # submission, where `encrypt` belongs
    ("mitm_port", "LABSIM_MITM_PORT", 2526),  # the attacker in the middle
    ("acme_port", "LABSIM_ACME_PORT", 14000),  # pebble's ACME directory (https)
    ("acme_mgmt_port", "LABSIM_ACME_MGMT_PORT", 15000),  # pebble's management API (roots)
    ("http01_port", "LABSIM_HTTP01_PORT", 5002),  # where certbot --standalone answers http-01
    ("tlsalpn01_port", "LABSIM_TLSALPN01_PORT", 5001),  # tls-alpn-01 (not used by the lesson)
    ("dns_port", "LABSIM_DNS_PORT", 8053),  # pebble-challtestsrv mock DNS
    ("dns_mgmt_port", "LABSIM_DNS_MGMT_PORT", 8055),  # pebble-challtestsrv management API
    ("jupyter_port", "LABSIM_JUPYTER_PORT", 8888),  # JupyterLab for `make lab`
    ("dns_auth_port", "LABSIM_DNS_AUTH_PORT", 8153),  # NSD: the lab zone, DNSSEC-signed (labsim.dns)
    ("resolver_port", "LABSIM_RESOLVER_PORT", 8154),  # unbound: the validating resolver (labsim.dns)
    ("mta_sts_port", "LABSIM_MTA_STS_PORT", 8461),  # postfix-mta-sts-resolver's socketmap (labsim.mtasts)
)

BACKENDS = ("auto", "postfix", "sim")


def default_home() -> Path:
    """Where a lab lives when ``LABSIM_HOME`` is not set.

    For an ordinary user: ``$XDG_STATE_HOME/labsim`` (``~/.local/state/labsim``).
    For root: ``/var/lib/labsim``. Real Postfix forces this: its master process opens
    ``$data_directory/master.lock`` as the ``postfix`` user, so every directory above the lab's
    queue and data directories must be searchable by that user, and Debian's ``/root`` is mode 0700.
    """
    return state_dir("labsim")


def state_dir(name: str) -> Path:
    """``/var/lib/NAME`` for root, else ``$XDG_STATE_HOME/NAME`` (``~/.local/state/NAME``): where the lab, and
    a classroom of labs, keep their state."""
    if os.geteuid() == 0:
        return Path("/var/lib") / name
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / name


@dataclass(frozen=True)
class Settings:
    """A lab's ports and paths. Paths are all derived from ``home``."""

    home: Path = field(default_factory=default_home)
    host: str = "127.0.0.1"
    domain: str = DEFAULT_DOMAIN
    backend: str = "auto"
    smtp_port: int = 2525
    submission_port: int = 2587
    mitm_port: int = 2526
    acme_port: int = 14000
    acme_mgmt_port: int = 15000
    http01_port: int = 5002
    tlsalpn01_port: int = 5001
    dns_port: int = 8053
    dns_mgmt_port: int = 8055
    jupyter_port: int = 8888
    dns_auth_port: int = 8153
    resolver_port: int = 8154
    mta_sts_port: int = 8461
    sim_workers: int = 0  # the simulator's smtpd worker processes (LABSIM_SIM_WORKERS); 0: one per CPU

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> "Settings":
        """Read ``LABSIM_*`` variables; keyword arguments win over the environment."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        if env.get("LABSIM_HOME"):
            values["home"] = Path(env["LABSIM_HOME"]).expanduser()
        if env.get("LABSIM_DOMAIN"):
            values["domain"] = env["LABSIM_DOMAIN"].strip().lower()
        if env.get("LABSIM_BACKEND"):
            values["backend"] = env["LABSIM_BACKEND"].strip().lower()
        for attr, var, _default in PORTS:
            if env.get(var):
                values[attr] = _port(var, env[var])
        if env.get("LABSIM_SIM_WORKERS"):
            values["sim_workers"] = _count("LABSIM_SIM_WORKERS", env["LABSIM_SIM_WORKERS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "home" in values:
            values["home"] = Path(values["home"]).expanduser().absolute()  # type: ignore[arg-type]
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.backend not in BACKENDS:
            from .errors import LabError

            raise LabError(
                f"LABSIM_BACKEND={settings.backend!r} is not a backend.",
                hint=f"Use one of: {', '.join(BACKENDS)}.",
            )
        return settings

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]

    def ports(self) -> dict[str, int]:
        """Every port of the lab, by attribute name."""
        return {attr: getattr(self, attr) for attr, _var, _d in PORTS}

    def env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in a child process."""
        out = {
            "LABSIM_HOME": str(self.home),
            "LABSIM_DOMAIN": self.domain,
            "LABSIM_BACKEND": self.backend,
            "MAIL_CONFIG": str(self.config_dir),
        }
        out.update({var: str(getattr(self, attr)) for attr, var, _d in PORTS})
        return out

    # --- Postfix instance -------------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        """The lab's Postfix configuration directory (main.cf, master.cf): ``postconf -c`` target."""
        return self.home / "postfix"

    @property
    def queue_dir(self) -> Path:
        return self.home / "spool"

    @property
    def data_dir(self) -> Path:
        return self.home / "lib"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def log_file(self) -> Path:
        """Postfix's ``maillog_file`` (there may be no syslog)."""
        return self.log_dir / "maillog"

    @property
    def mail_dir(self) -> Path:
        """``virtual_mailbox_base``: the lab's mailboxes (Maildir)."""
        return self.home / "mail"

    @property
    def mailbox(self) -> Path:
        """The Maildir every message for the lab domain ends up in."""
        return self.mail_dir / "student"

    @property
    def ssl_dir(self) -> Path:
        """Where the stock "snakeoil" self-signed certificate of a fresh install lives."""
        return self.home / "ssl"

    @property
    def snakeoil_cert(self) -> Path:
        return self.ssl_dir / "ssl-cert-snakeoil.pem"

    @property
    def snakeoil_key(self) -> Path:
        return self.ssl_dir / "ssl-cert-snakeoil.key"

    # --- Let's Encrypt, offline ----------------------------------------------------------------
    @property
    def acme_dir(self) -> Path:
        """pebble's configuration, its endpoint certificate and logs."""
        return self.home / "acme"

    @property
    def acme_endpoint_cert(self) -> Path:
        """The certificate pebble's HTTPS endpoints present (certbot trusts it for the ACME API)."""
        return self.acme_dir / "endpoint.pem"

    @property
    def lab_ca(self) -> Path:
        """The lab CA: every root pebble has issued from, for clients to verify chains against."""
        return self.acme_dir / "lab-ca.pem"

    @property
    def acme_directory_url(self) -> str:
        return f"https://{self.host}:{self.acme_port}/dir"

    @property
    def letsencrypt_dir(self) -> Path:
        """certbot's ``--config-dir``: the lab's ``/etc/letsencrypt``."""
        return self.home / "letsencrypt"

    def live_dir(self, domain: str | None = None) -> Path:
        """The lab's ``/etc/letsencrypt/live/DOMAIN``."""
        return self.letsencrypt_dir / "live" / (domain or self.domain)

    @property
    def run_dir(self) -> Path:
        """Pid files and state of the processes the lab starts."""
        return self.home / "run"

    @property
    def state_file(self) -> Path:
        """What ``up`` decided (backend, ports), read by ``status`` and ``down``."""
        return self.run_dir / "lab.json"


def _port(var: str, raw: str) -> int:
    from .errors import LabError

    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise LabError(f"{var}={raw!r} is not a TCP port.", hint=f"Set {var} to a number from 1024 to 65535.")
    return port


def _count(var: str, raw: str) -> int:
    from .errors import LabError

    try:
        n = int(raw)
    except ValueError:
        n = -1
    if not 0 <= n <= 256:
        raise LabError(f"{var}={raw!r} is not a process count.", hint=f"Set {var} to a number from 1 to 256 "
                       "(0: one per CPU).")
    return n
