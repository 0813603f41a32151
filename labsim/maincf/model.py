"""The one model of ``main.cf``: Postfix's syntax, its ``$name`` expansion and 3.7's defaults.

Both the simulator and the ``postconf`` work-alike read the configuration through this module, so the two
can never disagree about what a line of main.cf means. What it implements, from postconf(5):

- a logical line starts with non-whitespace text; a line starting with whitespace continues it;
  empty lines and lines whose first non-whitespace character is ``#`` are ignored (also inside a
  continued line); the last definition of a name wins;
- ``$name``, ``${name}``, ``$(name)``; ``${name?value}``, ``${name:value}``, ``${name?{value}:{value}}``;
  ``${{text} op {text} ? {value} : {value}}`` with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and their
  ``...level`` forms that compare compatibility levels (3.6+);
- defaults for unset parameters, recorded from the real ``postconf -d`` by
  ``scripts/gen_postconf_defaults.py`` into ``labsim/data/postconf-defaults.json``;
- editing as ``postconf -e`` / ``-X`` do it: a changed parameter keeps its place in the file, a new one is
  appended, comments and other lines are left alone.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabError


@dataclass(frozen=True)
class TLSFiles:
    """Where smtpd's certificate and key come from (``MainCf.server_tls_files``)."""

    cert: str  # the certificate file ('' when main.cf names none); with chain files, the last of them
    key: str  # the private key file (the certificate file when smtpd_tls_key_file is empty); with chain files, the first
    chain: tuple[str, ...] = ()  # smtpd_tls_chain_files when set: read in order, as one sequence of PEM blocks

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / "data" / "postconf-defaults.json"
DEFAULT_CONFIG_DIR = Path("/etc/postfix")
_NAME = re.compile(r"[A-Za-z0-9_]+")

#: Parameters Postfix expands only when it uses them, with per-message macros (``$rbl_code``,
#: ``$home``): ``postconf -x`` prints them as they are, and so does ``MainCf.get``.
RAW_PARAMETERS = frozenset(
    {
        "default_rbl_reply",
        "forward_path",
        "mailbox_command",
        "postscreen_expansion_filter",
        "postscreen_reject_footer",
        "smtpd_expansion_filter",
        "smtpd_reject_footer",
    }
)


class ConfigError(LabError):
    """main.cf cannot be read or written (the work-alike reports it the way postconf does). A
    :class:`~labsim.errors.LabError`, so the one error printer shows it (no traceback); with no hint or detail
    ``str()`` is the message alone, the text postconf and the simulator's fatal line print."""


@functools.lru_cache(maxsize=1)
def _recorded_defaults() -> dict[str, str]:
    return dict(json.loads(DEFAULTS_FILE.read_text())["defaults"])


def host_names(hostname: str | None = None) -> tuple[str, str]:
    """``myhostname`` and ``mydomain`` as Postfix derives them from gethostname().

    A name without a dot gets ``.localdomain`` appended, as seen on the lab machine (``vm`` gives
    ``vm.localdomain``); ``mydomain`` is ``myhostname`` without its first label.
    """
    name = (hostname or socket.gethostname()).lower()
    if "." not in name:
        name += ".localdomain"
    return name, name.partition(".")[2]


def defaults(config_dir: Path | str | None = None, process_name: str = "postconf") -> dict[str, str]:
    """Postfix 3.7's defaults on this machine: the recorded ``postconf -d``, host values recomputed."""
    values = dict(_recorded_defaults())
    myhostname, mydomain = host_names()
    values.update(
        myhostname=myhostname,
        mydomain=mydomain,
        process_id=str(os.getpid()),
        process_name=process_name,
        config_directory=str(config_dir or DEFAULT_CONFIG_DIR),
    )
    return values


# --- syntax ------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One logical line ``name = value`` and the physical lines [start, end) it spans."""

    name: str
    value: str
    start: int
    end: int


def entries(text: str) -> list[Entry]:
    """The ``name = value`` logical lines of a main.cf text, in file order.

    Lines that are neither (text without ``=``) are skipped, as postconf skips them with a warning.
    """
    out: list[Entry] = []
    lines = text.splitlines()
    current: list[str] | None = None
    start = 0
    last = 0

    def flush() -> None:
        if current is None:
            return
        logical = "".join(current)  # as Postfix's readlline: the newline goes, the indentation stays
        name, eq, value = logical.partition("=")
        name = name.strip()
        if eq and name and _NAME.fullmatch(name):
            out.append(Entry(name, value.strip(), start, last + 1))

    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace() and current is not None:
            current.append(line.rstrip())
            last = i
            continue
        flush()
        current, start, last = [stripped], i, i
    flush()
    return out


def parse(text: str) -> dict[str, str]:
    """main.cf text to ``{name: raw value}``; the last definition of a name wins."""
    return {e.name: e.value for e in entries(text)}


# --- expansion -----------------------------------------------------------------------------------------
def _matching_brace(text: str, i: int) -> int:
    """Index of the ``}`` that closes the ``{`` at text[i] (or -1)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _level(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.strip().split("."))
    except ValueError:
        return (0,)


def _compare(left: str, op: str, right: str) -> bool:
    if op.endswith("level"):
        a, b = _level(left), _level(right)
        op = op[: -len("level")]
    elif op in ("==", "!="):
        return (left == right) == (op == "==")
    else:
        try:
            a, b = (int(left),), (int(right),)  # type: ignore[assignment]
        except ValueError:
            return False
    return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}.get(op, False)


_RELATION = re.compile(r"\s*(==|!=|<=|>=|<|>)(level)?\s*")
_CHOICE = re.compile(r"\s*\?\s*")
_ELSE = re.compile(r"\s*:\s*")


class Expander:
    """Expands ``$name`` references in values against a lookup (main.cf over defaults)."""

    def __init__(self, lookup: "dict[str, str] | ParamLookup", max_depth: int = 100) -> None:
        self.lookup = lookup
        self.max_depth = max_depth

    def value_of(self, name: str, depth: int) -> str:
        raw = self.lookup.get(name)
        return "" if raw is None else self.expand(raw, depth + 1)

    def expand(self, text: str, depth: int = 0) -> str:
        if depth > self.max_depth:
            raise ConfigError(f"unreasonable macro call nesting: {text!r}")
        out: list[str] = []
        i = 0
        while i < len(text):
            c = text[i]
            if c != "$" or i + 1 >= len(text):
                out.append(c)
                i += 1
                continue
            nxt = text[i + 1]
            if nxt in "{(":
                close = _matching_brace(text, i + 1) if nxt == "{" else text.find(")", i + 1)
                if close < 0:
                    out.append(text[i:])
                    break
                out.append(self._braced(text[i + 2 : close], depth))
                i = close + 1
                continue
            m = _NAME.match(text, i + 1)
            if m:
                out.append(self.value_of(m.group(), depth))
                i = m.end()
                continue
            out.append(c)
            i += 1
        return "".join(out)

    def _braced(self, inner: str, depth: int) -> str:
        if inner.startswith("{"):
            return self._relation(inner, depth)
        m = _NAME.match(inner)
        if not m:
            return ""
        name, rest = m.group(), inner[m.end() :]
        if not rest:
            return self.value_of(name, depth)
        value = self.value_of(name, depth)
        if rest[0] == "?" and rest[1:].lstrip().startswith("{"):
            when_true, when_false = self._two_branches(rest[1:].lstrip())
            return self.expand(when_true if value else when_false, depth + 1)
        if rest[0] == "?":
            return self.expand(rest[1:], depth + 1) if value else ""
        if rest[0] == ":":
            return "" if value else self.expand(rest[1:], depth + 1)
        return ""

    @staticmethod
    def _two_branches(text: str) -> tuple[str, str]:
        """``{a}:{b}`` (whitespace allowed around ``:``) to (a, b)."""
        end = _matching_brace(text, 0)
        first = text[1:end]
        rest = text[end + 1 :]
        m = _ELSE.match(rest)
        rest = rest[m.end() :] if m else rest
        second = rest[1 : _matching_brace(rest, 0)] if rest.startswith("{") else ""
        return first, second

    def _relation(self, inner: str, depth: int) -> str:
        end = _matching_brace(inner, 0)
        left = inner[1:end]
        m = _RELATION.match(inner, end + 1)
        if not m:
            return ""
        op = m.group(1) + (m.group(2) or "")
        rest = inner[m.end() :]
        end = _matching_brace(rest, 0)
        right = rest[1:end]
        rest = rest[end + 1 :]
        m = _CHOICE.match(rest)
        if not m:
            return ""
        when_true, when_false = self._two_branches(rest[m.end() :])
        ok = _compare(self.expand(left, depth + 1), op, self.expand(right, depth + 1))
        return self.expand(when_true if ok else when_false, depth + 1)


class ParamLookup(dict):  # type: ignore[type-arg]
    """main.cf values over defaults: a plain mapping the expander can read."""


# --- the configuration -----------------------------------------------------------------------------------
@dataclass
class MainCf:
    """One configuration directory's main.cf, with defaults and expansion.

    ``params`` is what main.cf sets (raw); ``defaults`` what Postfix 3.7 would use otherwise.
    """

    config_dir: Path
    params: dict[str, str] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    text: str = ""
    _cache: tuple[tuple[int, int], ParamLookup] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, config_dir: Path | str, process_name: str = "postconf") -> "MainCf":
        """Read ``config_dir/main.cf``; a missing file is a ConfigError with postconf's wording."""
        config_dir = Path(config_dir)
        path = config_dir / "main.cf"
        try:
            text = path.read_text(errors="surrogateescape")
        except FileNotFoundError:
            raise ConfigError(f"open {path}: No such file or directory") from None
        except OSError as e:
            raise ConfigError(f"open {path}: {e.strerror}") from None
        return cls(config_dir, parse(text), defaults(config_dir, process_name), text)

    @classmethod
    def from_text(cls, text: str, config_dir: Path | str = DEFAULT_CONFIG_DIR) -> "MainCf":
        return cls(Path(config_dir), parse(text), defaults(config_dir), text)

    @property
    def path(self) -> Path:
        return self.config_dir / "main.cf"

    def lookup(self) -> ParamLookup:
        """main.cf over the defaults, built once per version of the text."""
        key = id(self.params), len(self.params)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._merge())
        return self._cache[1]

    def _merge(self) -> ParamLookup:
        merged = ParamLookup(self.defaults)
        merged.update(self.params)
        if "mydomain" not in self.params and "myhostname" in self.params:
            # Postfix derives the default mydomain from myhostname, whatever sets it.
            host = Expander(merged).expand(self.params["myhostname"])
            merged["mydomain"] = host.partition(".")[2] or "localdomain"
        return merged

    def is_known(self, name: str) -> bool:
        """A Postfix parameter (has a default) or set in main.cf."""
        return name in self.defaults or name in self.params

    def raw(self, name: str) -> str | None:
        """The unexpanded value Postfix would use: main.cf's, else the default."""
        return self.lookup().get(name)

    def expand(self, text: str) -> str:
        return Expander(self.lookup()).expand(text)

    def get(self, name: str, default: str = "") -> str:
        """The expanded value of a parameter ('' for an unknown one, like an unset ``$name``)."""
        raw = self.raw(name)
        if raw is None:
            return default
        return raw if name in RAW_PARAMETERS else self.expand(raw)

    def get_bool(self, name: str) -> bool:
        return self.get(name).strip().lower() in ("yes", "true", "1")

    def get_int(self, name: str, fallback: int = 0) -> int:
        try:
            return int(self.get(name).strip())
        except ValueError:
            return fallback

    def get_list(self, name: str) -> list[str]:
        """A list parameter: items separated by whitespace or commas."""
        return [item for item in re.split(r"[\s,]+", self.get(name)) if item]

    def server_tls_files(self) -> "TLSFiles":
        """The files smtpd's certificate and key come from: ``smtpd_tls_chain_files`` (each file a key, then
        its certificates) wins over ``smtpd_tls_cert_file``/``smtpd_tls_key_file`` when set (Postfix 3.4+); an
        empty key file means the key is in the certificate file. The one place of this rule: the checks,
        ``labsim status`` and the simulator's TLS (``labsim.sim.tls.load``) all ask here."""
        chain = tuple(self.get_list("smtpd_tls_chain_files"))
        if chain:
            return TLSFiles(chain[-1], chain[0], chain)
        cert = self.get("smtpd_tls_cert_file").strip()
        return TLSFiles(cert, self.get("smtpd_tls_key_file").strip() or cert)

    def referenced_names(self) -> set[str]:
        """Every ``$name`` used in main.cf's values (postconf counts them as used parameters)."""
        names: set[str] = set()
        for value in self.params.values():
            names.update(re.findall(r"\$\{?\(?([A-Za-z0-9_]+)", value))
        return names

    def unused(self) -> list[str]:
        """Names set in main.cf that Postfix neither knows nor finds referenced, in file order."""
        used = self.referenced_names()
        return [n for n in self.params if n not in self.defaults and n not in used]

    # --- editing, as ``postconf -e`` and ``-X`` ---------------------------------------------------------
    def edited_text(self, changes: dict[str, str] | None = None, remove: list[str] | tuple[str, ...] = ()) -> str:
        """main.cf's text after setting ``changes`` and deleting ``remove``.

        A changed parameter's first definition is rewritten in place as ``name = value`` (later ones are
        dropped); a new one is appended; a removed one loses every definition.
        """
        changes = dict(changes or {})
        lines = self.text.splitlines()
        replace: dict[int, str | None] = {}
        done: set[str] = set()
        for entry in entries(self.text):
            if entry.name in remove or (entry.name in changes and entry.name in done):
                new: str | None = None
            elif entry.name in changes:
                new = f"{entry.name} = {changes[entry.name]}"
                done.add(entry.name)
            else:
                continue
            replace[entry.start] = new
            for i in range(entry.start + 1, entry.end):
                replace[i] = None
        out: list[str] = []
        for i, line in enumerate(lines):
            if i in replace:
                if replace[i] is not None:
                    out.append(replace[i])  # type: ignore[arg-type]
            else:
                out.append(line)
        out += [f"{name} = {value}" for name, value in changes.items() if name not in done]
        return "\n".join(out) + ("\n" if out else "")

    def save(self, changes: dict[str, str] | None = None, remove: list[str] | tuple[str, ...] = ()) -> None:
        """Write the edit atomically (a reader never sees half a main.cf) and refresh this model."""
        text = self.edited_text(changes, remove)
        tmp = self.path.with_name(f".main.cf.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, errors="surrogateescape")
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"open {self.path}: {e.strerror}") from None
        self.text = text
        self.params = parse(text)
