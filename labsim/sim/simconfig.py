"""What the simulator reads from main.cf, read once per (re)load like a fresh Postfix smtpd process.

Only the parameters the lesson touches (and those needed to decide a recipient's fate) are read; all go
through ``mainconf.MainCf``, so defaults and ``$name`` expansion are Postfix's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import tls
from .mainconf import MainCf

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def seconds(value: str, default: float = 300.0) -> float:
    """A Postfix time value (``300s``, ``5m``, ``1h``, ``1d``, bare number = seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", value)
    if not m:
        return default
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def networks(items: list[str]) -> list[Network]:
    """``mynetworks``-style items (``127.0.0.0/8``, ``[::1]/128``, ``192.0.2.1``); tables are skipped."""
    out: list[Network] = []
    for item in items:
        if ":" in item and not item.startswith("["):
            continue  # a lookup table (hash:/etc/...), which the simulator does not open
        try:
            out.append(ipaddress.ip_network(item.replace("[", "").replace("]", ""), strict=False))
        except ValueError:
            continue
    return out


def domains(items: list[str]) -> set[str]:
    return {d.lower().rstrip(".") for d in items if ":" not in d and "/" not in d}


@dataclass
class SimConfig:
    """The simulator's view of main.cf."""

    myhostname: str
    myorigin: str
    banner: str
    level: str
    tls: tls.ServerTLS | None
    tls_warnings: list[str]
    tls_loglevel: int
    received_header: bool
    message_size_limit: int
    line_length_limit: int
    forbid_bare_newline: bool
    bare_newline_exclusions: list[Network]
    mynetworks: list[Network]
    relay_restrictions: list[str]
    mydestination: set[str]
    relay_domains: set[str]
    virtual_domains: set[str]
    virtual_base: Path | None
    virtual_maps: list[str]
    hard_error_limit: int
    timeout: float
    starttls_timeout: float
    disable_vrfy: bool
    append_at_myorigin: bool
    maillog_file: Path | None
    forbidden_words: frozenset[str] = frozenset()
    forbidden_patterns: tuple[re.Pattern[str], ...] = ()
    source: MainCf = field(repr=False, default=None)  # type: ignore[assignment]

    @classmethod
    def load(cls, config_dir: Path | str, log_file: Path | None = None) -> "SimConfig":
        return cls.from_maincf(MainCf.load(config_dir, process_name="smtpd"), log_file)

    @classmethod
    def from_maincf(cls, conf: MainCf, log_file: Path | None = None) -> "SimConfig":
        level = conf.get("smtpd_tls_security_level").strip().lower()
        if not level:  # the obsolete booleans, which smtpd_tls_security_level overrides
            level = "encrypt" if conf.get_bool("smtpd_enforce_tls") else "may" if conf.get_bool("smtpd_use_tls") else "none"
        if level not in ("none", "may", "encrypt"):
            level = "may"  # unknown levels: Postfix refuses to start; the simulator stays on the safe side
        server_tls, warnings = None, []
        if level != "none":
            cert = conf.get("smtpd_tls_cert_file").strip()
            key = conf.get("smtpd_tls_key_file").strip()
            chain = conf.get_list("smtpd_tls_chain_files")
            protocols = conf.get("smtpd_tls_mandatory_protocols" if level == "encrypt" else "smtpd_tls_protocols")
            if cert or chain:
                server_tls, warnings = tls.load(cert, key, chain, protocols)
            else:
                warnings = ["warning: need a server certificate to enable TLS: smtpd_tls_cert_file is empty"]
        maillog = conf.get("maillog_file").strip()
        base = conf.get("virtual_mailbox_base").strip()
        return cls(
            myhostname=conf.get("myhostname").strip(),
            myorigin=conf.get("myorigin").strip(),
            banner=conf.get("smtpd_banner").strip(),
            level=level,
            tls=server_tls,
            tls_warnings=warnings,
            tls_loglevel=conf.get_int("smtpd_tls_loglevel"),
            received_header=conf.get_bool("smtpd_tls_received_header"),
            message_size_limit=conf.get_int("message_size_limit", 10240000),
            line_length_limit=max(conf.get_int("line_length_limit", 2048), 512),
            forbid_bare_newline=conf.get("smtpd_forbid_bare_newline").strip().lower() in ("yes", "normalize", "reject"),
            bare_newline_exclusions=networks(conf.get_list("smtpd_forbid_bare_newline_exclusions")),
            mynetworks=networks(conf.get_list("mynetworks")),
            relay_restrictions=conf.get_list("smtpd_relay_restrictions"),
            mydestination=domains(conf.get_list("mydestination")),
            relay_domains=domains(conf.get_list("relay_domains")),
            virtual_domains=domains(conf.get_list("virtual_mailbox_domains")),
            virtual_base=Path(base) if base else None,
            virtual_maps=conf.get_list("virtual_mailbox_maps"),
            hard_error_limit=conf.get_int("smtpd_hard_error_limit", 20) or 20,
            timeout=seconds(conf.get("smtpd_timeout")),
            starttls_timeout=seconds(conf.get("smtpd_starttls_timeout")),
            disable_vrfy=conf.get_bool("disable_vrfy_command"),
            append_at_myorigin=conf.get_bool("append_at_myorigin"),
            maillog_file=Path(maillog) if maillog else log_file,
            forbidden_words=frozenset(w.upper() for w in conf.get_list("smtpd_forbidden_commands") if ":" not in w
                                      and "/" not in w and "{" not in w and "}" not in w),
            forbidden_patterns=tuple(
                re.compile(p, re.IGNORECASE) for p in re.findall(r"/(.+?)/", conf.get("smtpd_forbidden_commands"))
            ),
            source=conf,
        )

    def in_networks(self, address: str, nets: list[Network]) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in nets if net.version == ip.version)
