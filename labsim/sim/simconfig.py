"""What the simulator reads from main.cf, read once per (re)load like a fresh Postfix smtpd process.

Only the parameters the lesson touches (and those needed to decide a recipient's fate) are read; all go
through ``labsim.maincf.MainCf``, so defaults and ``$name`` expansion are Postfix's.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import restrictions, tls
from ..maincf import ConfigError, MainCf

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def seconds(value: str, default: float = 300.0) -> float:
    """A Postfix time value (``300s``, ``5m``, ``1h``, ``1d``, bare number = seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", value)
    if not m:
        return default
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


class Fatal(Exception):
    """What makes Postfix's smtpd exit at start (``fatal: <message>``): the simulator then serves no one."""


class GlobalFatal(ConfigError):
    """A parameter every Postfix program reads is bad: ``postfix start`` and ``postfix reload`` refuse."""


#: Parameters read by smtpd (fatal in smtpd) and by every program (``postfix start`` refuses): name, min.
SMTPD_INTS = (("smtpd_hard_error_limit", 1), ("smtpd_soft_error_limit", 1))
GLOBAL_INTS = (("line_length_limit", 512),)
GLOBAL_LONGS = ("message_size_limit",)
SMTPD_TIMES = (("smtpd_timeout", 1), ("smtpd_starttls_timeout", 1))
SMTPD_BOOLS = ("disable_vrfy_command", "smtpd_tls_received_header", "smtpd_use_tls", "smtpd_enforce_tls",
               "smtpd_relay_before_recipient_restrictions", "smtpd_tls_wrappermode")
GLOBAL_BOOLS = ("append_at_myorigin",)
#: smtpd_tls_security_level values (tls_level.c), case-insensitive; others are fatal.
TLS_LEVELS = {"none": "none", "may": "may", "encrypt": "encrypt", "fingerprint": "encrypt", "verify": "encrypt",
              "secure": "encrypt"}
BARE_NEWLINE = {"normalize": True, "yes": True, "reject": True, "no": False}


def _int_ok(value: str) -> bool:
    return bool(re.fullmatch(r"[ \t]*[+-]?\d+", value)) and -2**31 <= int(value) < 2**31


def time_value(value: str) -> int | None:
    """conv_time: an integer (strtol) and an optional unit letter; None when Postfix would refuse it."""
    m = re.match(r"[ \t]*([+-]?\d+)(.?)", value)
    if not m or not value:
        return None
    number, unit = int(m.group(1)), m.group(2) or "s"
    if number < 0 or number >= 2**31 or unit not in "smhdw":
        return None
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]


def global_problem(conf: MainCf) -> str | None:
    """The fatal of a bad parameter that every Postfix program reads (so Postfix does not even start)."""
    for name, low in GLOBAL_INTS:
        value = conf.get(name).strip()
        if not _int_ok(value):
            return f"bad numerical configuration: {name} = {value}"
        if int(value) < low:
            return f"invalid {name} parameter value {int(value)} < {low}"
    for name in GLOBAL_LONGS:
        value = conf.get(name).strip()
        if not re.fullmatch(r"[+-]?\d+", value):
            return f"bad numerical configuration: {name} = {value}"
    for name in GLOBAL_BOOLS:
        value = conf.get(name).strip()
        if value.lower() not in ("yes", "no"):
            return f"bad boolean configuration: {name} = {value}"
    return None


def smtpd_fatal(conf: MainCf) -> str | None:
    """smtpd's start-up checks (smtpd.c, smtpd_check.c, mail_conf_*.c), in smtpd's order."""
    for name, low in SMTPD_INTS:
        value = conf.get(name).strip()
        if not _int_ok(value):
            return f"bad numerical configuration: {name} = {value}"
        if int(value) < low:
            return f"invalid {name} parameter value {int(value)} < {low}"
    for name, low in SMTPD_TIMES:
        value = conf.get(name).strip()
        seconds_ = time_value(value)
        if seconds_ is None:
            return f"parameter {name}: bad time value or unit: {value}"
        if seconds_ < low:
            return f"invalid {name}: {seconds_} (min {low})"
    for name in SMTPD_BOOLS:
        value = conf.get(name).strip()
        if value.lower() not in ("yes", "no"):
            return f"bad boolean configuration: {name} = {value}"
    bare = conf.get("smtpd_forbid_bare_newline").strip()
    if bare.lower() not in BARE_NEWLINE:
        return f"bad parameter value: 'smtpd_forbid_bare_newline = {bare}'"
    classes: dict[str, list[str]] = {}
    for name in conf.get_list("smtpd_restriction_classes"):
        if not conf.get(name).strip():
            return f"restriction class `{name}' needs a definition"
        classes[name] = conf.get_list(name)
    missing = restrictions.required_missing(
        conf.get_list("smtpd_relay_restrictions"), conf.get_list("smtpd_recipient_restrictions"), classes)
    if missing:
        return missing
    level = conf.get("smtpd_tls_security_level").strip()
    if level and not conf.get("smtpd_tls_wrappermode").strip().lower() == "yes" and level.lower() not in TLS_LEVELS:
        return f'Invalid TLS level "{level}"'
    return None


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
    forbid_bare_newline: bool  # normalize (yes) or reject: <CR><LF>.<CR><LF> ends DATA, nothing else
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
    rcpt_lists: tuple[list[str], list[str]] = ((), ())  # type: ignore[assignment]
    restriction_classes: dict[str, list[str]] = field(default_factory=dict)
    reject_bare_newline: bool = False  # reject: a line with a bare <LF> is refused (and a command hangs up)
    bare_newline_reject_code: int = 550
    fatal: str | None = None  # smtpd would exit at start with "fatal: <this>"
    forbidden_words: frozenset[str] = frozenset()
    forbidden_patterns: tuple[re.Pattern[str], ...] = ()
    source: MainCf = field(repr=False, default=None)  # type: ignore[assignment]

    @classmethod
    def load(cls, config_dir: Path | str, log_file: Path | None = None) -> "SimConfig":
        return cls.from_maincf(MainCf.load(config_dir, process_name="smtpd"), log_file)

    @classmethod
    def from_maincf(cls, conf: MainCf, log_file: Path | None = None) -> "SimConfig":
        problem = global_problem(conf)
        if problem:
            raise GlobalFatal(problem)
        fatal = smtpd_fatal(conf)
        start_warnings: list[str] = []
        raw_level = conf.get("smtpd_tls_security_level").strip()
        level = TLS_LEVELS.get(raw_level.lower(), "none") if raw_level else ""
        if raw_level.lower() in ("fingerprint", "verify", "secure"):
            start_warnings.append(f'warning: smtpd_tls_security_level: unsupported TLS level "{raw_level}", '
                                  'using "encrypt"')
        if not level:  # the obsolete booleans, which smtpd_tls_security_level overrides
            level = "encrypt" if conf.get_bool("smtpd_enforce_tls") else "may" if conf.get_bool("smtpd_use_tls") else "none"
        if fatal:
            level = "none"  # never used: a fatal configuration serves no session
        server_tls, warnings = None, []
        if level != "none":
            files = conf.server_tls_files()  # the one rule of which parameters name them
            protocols = conf.get("smtpd_tls_mandatory_protocols" if level == "encrypt" else "smtpd_tls_protocols")
            if files.cert:
                server_tls, warnings = tls.load(files, protocols, tls.cipher_settings(conf, level == "encrypt"))
            else:
                warnings = ["warning: need a server certificate to enable TLS: smtpd_tls_cert_file is empty"]
        warnings = start_warnings + warnings
        classes = {name: conf.get_list(name) for name in conf.get_list("smtpd_restriction_classes")}
        relay_first = conf.get_bool("smtpd_relay_before_recipient_restrictions")
        relay, rcpt = conf.get_list("smtpd_relay_restrictions"), conf.get_list("smtpd_recipient_restrictions")
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
            forbid_bare_newline=BARE_NEWLINE.get(conf.get("smtpd_forbid_bare_newline").strip().lower(), True),
            bare_newline_exclusions=networks(conf.get_list("smtpd_forbid_bare_newline_exclusions")),
            reject_bare_newline=conf.get("smtpd_forbid_bare_newline").strip().lower() == "reject",
            bare_newline_reject_code=conf.get_int("smtpd_forbid_bare_newline_reject_code", 550),
            mynetworks=networks(conf.get_list("mynetworks")),
            relay_restrictions=relay,
            rcpt_lists=(relay, rcpt) if relay_first else (rcpt, relay),
            restriction_classes=classes,
            fatal=fatal,
            mydestination=domains(conf.get_list("mydestination")),
            relay_domains=domains(conf.get_list("relay_domains")),
            virtual_domains=domains(conf.get_list("virtual_mailbox_domains")),
            virtual_base=Path(base) if base else None,
            virtual_maps=conf.get_list("virtual_mailbox_maps"),
            hard_error_limit=max(conf.get_int("smtpd_hard_error_limit", 20), 1),
            timeout=float(time_value(conf.get("smtpd_timeout")) or 300),
            starttls_timeout=float(time_value(conf.get("smtpd_starttls_timeout")) or 300),
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
