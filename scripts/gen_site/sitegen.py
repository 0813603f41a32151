"""What the course site generates at build time, as plain functions (the mkdocs hook calls them).

Every table on the site that states a fact another part of the project owns is generated here from
that part, so the site cannot drift from it:

* the question bank (``quizzes.bank``): the quiz JSON and the question counts of the objectives map;
* the real ``postconf -d`` of the installed Postfix: the defaults of the TLS parameter reference;
* the simulator's reply table (``labsim.sim.replies``, checked against the real Postfix by its tests):
  the SMTP replies and log lines;
* the ``labsim`` click group: the lab guide's command table;
* ``notebooks/NN-*.ipynb``: the lessons in the navigation.

Run it to see what the site would get::

    .venv/bin/python scripts/gen_site/sitegen.py postconf|replies|commands|notebooks|bank
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: The lessons. COURSE_SITE_NOTEBOOKS points elsewhere (the tests build the site with a sample notebook).
NOTEBOOKS = Path(os.environ.get("COURSE_SITE_NOTEBOOKS") or ROOT / "notebooks")

if str(ROOT) not in sys.path:  # so the hook can import labsim and quizzes from a checkout
    sys.path.insert(0, str(ROOT))


class SiteDataError(Exception):
    """Something the site is generated from is missing or broken; the message says what to do."""


# --- postconf(5): the TLS parameters the course uses ------------------------------------------------------
#: (parameter, what it does, in our words). The defaults are NOT written here: they come from `postconf -d`.
TLS_PARAMETERS: tuple[tuple[str, str, str], ...] = (
    # group, name, description
    ("Server side (smtpd): the lesson", "smtpd_tls_security_level",
     "`none`: no STARTTLS; `may`: announce STARTTLS, do not require it (opportunistic); `encrypt`: refuse "
     "mail commands until the client has started TLS (mandatory). Debian's installer sets `may`."),
    ("Server side (smtpd): the lesson", "smtpd_tls_cert_file",
     "PEM certificate of the server, followed by its intermediates: Let's Encrypt's `fullchain.pem`."),
    ("Server side (smtpd): the lesson", "smtpd_tls_key_file",
     "PEM private key of that certificate (`privkey.pem`); no passphrase, readable by root only."),
    ("Server side (smtpd): the lesson", "smtpd_tls_chain_files",
     "Since Postfix 3.4: key and certificate chain files in one list (key first). When set, the two "
     "parameters above are ignored."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_auth_only",
     "Offer SMTP AUTH only over TLS. Implied by `smtpd_tls_security_level = encrypt`."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_loglevel",
     "0 no line for TLS sessions (TLS failures and warnings are logged at every level), 1 one summary line per "
     "TLS session, 2 the handshake, 3 and 4 hex dumps (debugging only)."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_received_header",
     "Add the TLS protocol, cipher and client certificate details to the `Received:` header of each message "
     "(with the default `no`, `with ESMTPS` already shows that a message came over TLS)."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_protocols",
     "TLS versions offered when TLS is opportunistic (`may`)."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_mandatory_protocols",
     "TLS versions accepted when TLS is mandatory (`encrypt`)."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_ciphers",
     "Minimum cipher grade with opportunistic TLS."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_mandatory_ciphers",
     "Minimum cipher grade with mandatory TLS."),
    ("Server side (smtpd): hardening and logging", "smtpd_tls_wrappermode",
     "Implicit TLS from the first byte, no STARTTLS: set per service in master.cf with `-o` for port 465 "
     "(submissions, RFC 8314)."),
    ("Server side (smtpd): hardening and logging", "smtpd_forbid_bare_newline",
     "Defence against SMTP smuggling (CVE-2023-51764). In 3.7.11 `yes` (an alias of `normalize`) requires "
     "`<CR><LF>.<CR><LF>` to end DATA but still accepts other bare `<LF>` line endings as `<CR><LF>`; only "
     "`reject` rejects them (`550 5.5.2 ... bare <LF> received`). Not TLS, but met in the attack lab."),
    ("Obsolete: recognise them, do not use them", "smtpd_use_tls",
     "Postfix 2.2 switch for opportunistic TLS; replaced by `smtpd_tls_security_level = may` since 2.3."),
    ("Obsolete: recognise them, do not use them", "smtpd_enforce_tls",
     "Postfix 2.2 switch for mandatory TLS; replaced by `smtpd_tls_security_level = encrypt` since 2.3."),
    ("Client side (smtp): when Postfix sends", "smtp_tls_security_level",
     "How the Postfix SMTP client uses TLS when it delivers to other servers: `none`, `may`, `encrypt`, "
     "`dane`, `dane-only`, `fingerprint`, `verify`, `secure`. Only the client can defeat STARTTLS stripping."),
    ("Client side (smtp): when Postfix sends", "smtp_tls_CAfile",
     "Trusted CA certificates (PEM) for verifying servers at `verify` and `secure`."),
    ("Client side (smtp): when Postfix sends", "smtp_tls_CApath",
     "Directory of trusted CA certificates; Debian sets `/etc/ssl/certs`."),
    ("Client side (smtp): when Postfix sends", "smtp_tls_loglevel",
     "Like `smtpd_tls_loglevel`, for the client side."),
    ("Client side (smtp): when Postfix sends", "smtp_tls_policy_maps",
     "Per-destination TLS policy (for example `example.com secure`), the way to require TLS to one partner."),
)


@dataclass
class PostconfDefaults:
    version: str
    values: dict[str, str]
    unknown: list[str] = field(default_factory=list)


def postconf_binary() -> str:
    for cand in (shutil.which("postconf"), "/usr/sbin/postconf"):
        if cand and Path(cand).exists():
            return cand
    raise SiteDataError(
        "postconf not found: the TLS parameter reference is generated from the real `postconf -d`. "
        "Install Postfix (as root: apt-get install postfix, or run make setup)."
    )


def postconf_defaults(names: list[str] | None = None) -> PostconfDefaults:
    """Run ``postconf -d`` for NAMES (default: the course's TLS parameters) and mail_version."""
    names = names or [n for _g, n, _d in TLS_PARAMETERS]
    proc = subprocess.run(
        [postconf_binary(), "-d", "mail_version", *names],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition(" =")
        if sep:
            values[name.strip()] = value.strip()
    unknown = [n for n in names if n not in values]
    return PostconfDefaults(values.pop("mail_version", "?"), values, unknown)


def postconf_reference_md() -> str:
    """The reference tables: parameter, `postconf -d` default on this machine, what it does."""
    d = postconf_defaults()
    if d.unknown:
        raise SiteDataError(f"postconf -d does not know {', '.join(d.unknown)}: fix TLS_PARAMETERS in {__file__}")
    out = [f'!!! info "Generated from `postconf -d` of Postfix {d.version} when this site was built"\n'
           "    An empty default is shown as *(empty)*. `$name` means \"the value of parameter *name*\".\n"]
    group = None
    for g, name, desc in TLS_PARAMETERS:
        if g != group:
            out.append(f"\n### {g}\n\n| parameter | `postconf -d` | what it does |\n|---|---|---|")
            group = g
        value = d.values[name]
        shown = f"`{value}`" if value else "*(empty)*"
        out.append(f'| <span id="{name}"></span>`{name}` | {shown} | {desc} |')
    return "\n".join(out) + "\n"


# --- SMTP replies ----------------------------------------------------------------------------------------
#: The situations the labs meet, in the order a session meets them, and the name of the reply in
#: labsim/sim/replies.py, the simulator's reply table (checked against the real Postfix by
#: tests/test_sim_parity.py). The words of every reply come from there, never from here.
REPLY_SITUATIONS: tuple[tuple[str, str], ...] = (
    ("HELO, also at `encrypt` before TLS (EHLO: the same first line, then one `250-` line per extension)", "HELO_OK"),
    ("STARTTLS accepted: the TLS handshake follows", "READY_TLS"),
    ("STARTTLS with an argument", "SYNTAX_STARTTLS"),
    ("STARTTLS while TLS is already active", "TLS_ALREADY_ACTIVE"),
    ("STARTTLS at `smtpd_tls_security_level = none`", "NOT_IMPLEMENTED"),
    ("STARTTLS when TLS is switched on but the certificate or key is unusable", "TLS_NOT_AVAILABLE"),
    ("MAIL, RCPT, DATA... before STARTTLS at `encrypt`", "MUST_STARTTLS"),
    ("MAIL FROM accepted", "MAIL_OK"),
    ("RCPT TO accepted (a recipient in the lab domain)", "RCPT_OK"),
    ("RCPT TO a foreign domain: the lab is no relay (`defer_unauth_destination`)", "RELAY_DEFERRED"),
    ("DATA accepted: send the message, end it with a line holding one dot", "START_DATA"),
    ("End of DATA: the message is queued", "QUEUED"),
    ("NOOP (and RSET)", "OK"),
    ("QUIT", "BYE"),
    ("Unknown command", "UNKNOWN_COMMAND"),
)

#: Log lines of the TLS labs, from the same module.
LOG_SITUATIONS: tuple[tuple[str, str], ...] = (
    ("A TLS session started (`smtpd_tls_loglevel` 1 or more)", "LOG_TLS"),
    ("The certificate or key cannot be loaded", "LOG_CERT_PROBLEM"),
    ("A command was refused", "LOG_REJECT"),
)


def _reply_module() -> Any:
    try:
        from labsim.sim import replies as mod
    except ImportError as exc:
        raise SiteDataError(f"cannot import labsim.sim.replies ({exc}): the reply table is generated from it") from exc
    return mod


def replies() -> list[tuple[str, str]]:
    """(situation, reply text) rows; the texts are the simulator's, which match Postfix 3.7.11."""
    mod = _reply_module()
    rows = []
    for situation, name in REPLY_SITUATIONS + LOG_SITUATIONS:
        text = getattr(mod, name, None)
        if not isinstance(text, str):
            raise SiteDataError(f"labsim.sim.replies has no {name}: update REPLY_SITUATIONS in {__file__}")
        rows.append((situation, text))
    return rows


def _placeholders(text: str) -> str:
    """Show ``{queue_id}`` as an italic placeholder inside the code span's neighbourhood."""
    return re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper().replace("_", "-"), text)


def replies_md() -> str:
    rows = replies()
    n = len(REPLY_SITUATIONS)
    names = [name for _s, name in REPLY_SITUATIONS]
    out = ["| situation | reply |", "|---|---|"]
    for (situation, text), name in zip(rows[:n], names):
        # the anchor: the quizzes link a question to the row of its reply
        out.append(f'| <span id="reply-{name.lower().replace("_", "-")}"></span>{situation} | `{_placeholders(text)}` |')
    out += ["", "And the log lines that go with them (in the lab: `labsim logs`), after the program name and "
            "process id, such as `postfix/smtpd[1234]:`:", "", "| situation | log line |", "|---|---|"]
    for situation, text in rows[n:]:
        out.append(f"| {situation} | `{_placeholders(text)}` |")
    out.append("\nWords in capitals (QUEUE-ID, MYHOSTNAME, ADDRESS, CLIENT...) stand for the values of the session. "
               "*Generated from `labsim/sim/replies.py`, the simulator's reply table, which the test suite checks "
               "against the real Postfix 3.7.11.*")
    return "\n".join(out) + "\n"


# --- labsim commands ---------------------------------------------------------------------------------------
def labsim_commands() -> list[tuple[str, str, list[str]]]:
    """(command, one-line help, option strings) for every subcommand of the ``labsim`` click group."""
    try:
        from labsim.cli import main  # noqa: WPS433
    except ImportError as exc:
        raise SiteDataError(f"cannot import labsim.cli ({exc}): run scripts/setup.sh") from exc
    import click

    out = []
    ctx = click.Context(main)
    for name in sorted(main.list_commands(ctx)):
        cmd = main.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        opts = []
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                opts.append("/".join(p.opts))
            elif isinstance(p, click.Argument):
                opts.append(p.human_readable_name + ("..." if p.nargs == -1 else ""))
        first = (cmd.help or "").split("\n\n")[0]
        out.append((name, " ".join(first.split()), opts))
    return out


def commands_md() -> str:
    out = ["| command | what it does | options and arguments |", "|---|---|---|"]
    for name, help_, opts in labsim_commands():
        shown = " ".join(f"`{o}`" for o in opts) or ""
        out.append(f"| `labsim {name}` | {help_.replace('|', '&#124;')} | {shown} |")
    return "\n".join(out) + "\n"


# --- ports and paths of a lab -----------------------------------------------------------------------------
_PORT_USE = {
    "smtp_port": "the lab's mail server (Postfix or the simulator)",
    "submission_port": "submission, where `encrypt` belongs",
    "mitm_port": "the attacker in the middle (`labsim mitm`)",
    "acme_port": "the lab's Let's Encrypt CA (pebble), ACME directory over HTTPS",
    "acme_mgmt_port": "pebble's management API (its root certificates)",
    "http01_port": "where `certbot --standalone` answers the http-01 challenge (port 80 on the internet)",
    "tlsalpn01_port": "tls-alpn-01 challenge (not used by the lesson)",
    "dns_port": "the lab's mock DNS (pebble-challtestsrv): lab.itpro.tv is 127.0.0.1",
    "dns_mgmt_port": "the mock DNS's management API",
    "jupyter_port": "JupyterLab (`make lab`)",
}


def ports_md() -> str:
    """The lab's ports from labsim.settings.PORTS (their defaults and variables are read, not copied)."""
    try:
        from labsim.settings import PORTS
    except ImportError as exc:
        raise SiteDataError(f"cannot import labsim.settings ({exc})") from exc
    out = ["| port | variable | used by |", "|---|---|---|"]
    for attr, var, default in PORTS:
        out.append(f"| {default} | `{var}` | {_PORT_USE.get(attr, attr.replace('_', ' '))} |")
    return "\n".join(out) + "\n"


# --- notebooks ---------------------------------------------------------------------------------------------
@dataclass
class Notebook:
    path: Path
    title: str
    objectives: list[str]
    areas: list[str]
    quiz: list[str] = field(default_factory=list)  # question ids of its end-of-lesson quiz (show_quiz(ids=...))
    minutes: int = 0  # teaching + exercises, from the notebook's metadata

    @property
    def site_path(self) -> str:
        return f"lessons/{self.path.name}"

    @property
    def page(self) -> str:
        return f"lessons/{self.path.stem}.html"


_SHOW_QUIZ = re.compile(r"show_quiz\(\s*ids\s*=\s*\[([^\]]*)\]")


def notebooks(directory: Path = NOTEBOOKS) -> list[Notebook]:
    """The lessons: ``notebooks/NN-*.ipynb`` in order, with their first heading as title."""
    out = []
    for path in sorted(directory.glob("[0-9][0-9]-*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SiteDataError(f"{path}: not a readable notebook ({exc})") from exc
        title = path.stem
        quiz: list[str] = []
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                m = _SHOW_QUIZ.search("".join(cell.get("source", [])))
                if m:
                    quiz += re.findall(r"[\"']([^\"']+)[\"']", m.group(1))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "markdown":
                continue
            src = "".join(cell.get("source", []))
            m = re.search(r"^#\s+(.+)$", src, re.M)
            if m:
                title = re.sub(r"[*_`]", "", m.group(1)).strip()
                break
        meta = nb.get("metadata", {})
        course = meta.get("course") or meta.get("labsim") or meta.get("lesson") or {}
        objectives = list(course.get("objectives", []) or meta.get("objectives", []) or [])
        areas = list(course.get("areas", []) or meta.get("areas", []) or [])
        time = course.get("time") or {}
        minutes = sum(int(v) for v in time.values() if isinstance(v, (int, float)))
        out.append(Notebook(path, title, objectives, areas, quiz, minutes))
    return out


# --- the question bank --------------------------------------------------------------------------------------
@dataclass
class SiteBank:
    data: dict[str, Any]


def load_site_bank() -> SiteBank:
    """The bank as ``quizzes.bank.to_json()`` gives it, plus pre-rendered HTML for the browser.

    A bank that is broken, or has no question files, fails the build (SiteDataError): the site's quizzes
    are the bank's questions, never a stand-in.
    """
    try:
        from quizzes import bank as qbank
    except ImportError as exc:
        raise SiteDataError(f"cannot import quizzes.bank ({exc}): run scripts/setup.sh") from exc
    directory = qbank.bank_dir()
    if not any(directory.glob("*.yaml")):
        raise SiteDataError(f"the question bank {directory} has no question files (*.yaml): the quiz pages are "
                            "built from them; restore them from git (git checkout -- quizzes/bank)")
    try:
        data = json.loads(qbank.to_json())
    except qbank.BankError as exc:
        raise SiteDataError(str(exc)) from exc
    return SiteBank(for_browser(data))


def for_browser(data: dict[str, Any]) -> dict[str, Any]:
    """Add ``*_html`` fields (bank text is plain text with `code` spans) and drop what the page never shows."""
    out = {
        "format": data.get("format"), "version": data.get("version"),
        "objectives": data["objectives"], "areas": data["areas"], "questions": [],
    }
    for q in data["questions"]:
        q = {k: v for k, v in q.items() if k not in ("source", "line", "verify")}
        q["prompt_html"] = text_to_html(q.get("display_prompt") or q["prompt"])
        q["explanation_html"] = text_to_html(q.get("explanation", ""))
        for c in q.get("choices", []):
            c["text_html"] = text_to_html(c["text"], inline=True)
            c["why_html"] = text_to_html(c.get("why", ""), inline=True)
        out["questions"].append(q)
    return out


_CODE = re.compile(r"`([^`\n]+)`")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")


def text_to_html(text: str, inline: bool = False) -> str:
    """Plain bank text to safe HTML: escaped, ```fenced``` blocks, `code`, **bold**, paragraphs."""
    text = (text or "").strip()
    if not text:
        return ""
    parts = re.split(r"```[a-z]*\n?(.*?)```", text, flags=re.S)
    html_parts = []
    for i, part in enumerate(parts):
        if i % 2:  # inside a fence
            html_parts.append(f"<pre><code>{html.escape(part.rstrip())}</code></pre>")
            continue
        esc = html.escape(part)
        esc = _CODE.sub(r"<code>\1</code>", esc)
        esc = _BOLD.sub(r"<strong>\1</strong>", esc)
        if inline:
            html_parts.append(esc.replace("\n", " "))
        else:
            paras = [p.strip().replace("\n", "<br>") for p in re.split(r"\n\s*\n", esc) if p.strip()]
            html_parts.extend(f"<p>{p}</p>" for p in paras)
    return "".join(html_parts)


# --- the objectives map ------------------------------------------------------------------------------------
#: 211.1 key knowledge and terms (202-450 v4.5, FACTS.md), with the bank areas that cover each.
KEY_KNOWLEDGE: tuple[tuple[str, list[str]], ...] = (
    ("Configuration files for postfix", ["postfix-config"]),
    ("Basic TLS configuration for postfix", ["tls-config", "certificates", "smtp-security"]),
    ("Basic knowledge of the SMTP protocol", ["smtp", "smtp-security"]),
    ("Awareness of sendmail and exim", ["awareness"]),
    ("Terms: configuration files and commands for postfix, /etc/postfix/", ["postfix-config"]),
    ("Terms: /var/spool/postfix/, sendmail emulation layer commands, /etc/aliases", ["awareness"]),
    ("Terms: mail-related logs in /var/log/", ["logs"]),
)


def count_by(questions: list[dict[str, Any]], pred) -> dict[str, int]:
    qs = [q for q in questions if pred(q)]
    return {"total": len(qs), **{t: sum(q["type"] == t for q in qs) for t in ("single", "multiple", "fill")}}


def _counts_cell(c: dict[str, int]) -> str:
    if not c["total"]:
        return "**0**"
    return f"**{c['total']}** ({c['single']} single, {c['multiple']} multiple, {c['fill']} fill-in)"


def objectives_md(bank: SiteBank, pages: dict[str, dict[str, Any]], nbs: list[Notebook]) -> str:
    """Markdown tables: each objective/area, the notebooks, pages and questions that cover it.

    ``pages``: {site src path: {"title": ..., "objectives": [...], "areas": [...]}} from page front matter.
    """
    qs = bank.data["questions"]
    objectives = bank.data["objectives"]
    areas = bank.data["areas"]

    def covering(key: str) -> str:
        links = [f"[{nb.title}]({nb.site_path})" for nb in nbs if key in nb.objectives or key in nb.areas]
        links += [f"[{m['title']}]({p})" for p, m in sorted(pages.items())
                  if key in m.get("objectives", []) or key in m.get("areas", [])]
        return "<br>".join(links) or "-"

    out = []
    out.append(f"The bank holds **{len(qs)}** questions. Practise any row on the "
               "[practice page](quiz/index.md).\n")
    out.append("### Objectives\n\n| objective | lessons and pages | questions |\n|---|---|---|")
    for oid, o in objectives.items():
        label = f"**{oid}** {o['title']}" if o.get("source") != "lesson" else \
            f"**Lesson objective {oid.split('-')[-1]}**: {o['title']}"
        c = count_by(qs, lambda q, oid=oid: oid in q["objectives"])
        out.append(f"| {label} | {covering(oid)} | {_counts_cell(c)} |")
    out.append("\n### 211.1 key knowledge\n\n| key knowledge (202-450) | question areas | lessons and pages "
               "| questions |\n|---|---|---|---|")
    for item, area_ids in KEY_KNOWLEDGE:
        names = "<br>".join(f"{areas[a]['title']} (`{a}`)" for a in area_ids if a in areas)
        cover = "<br>".join(dict.fromkeys(x for a in area_ids for x in covering(a).split("<br>") if x != "-")) or "-"
        c = count_by(qs, lambda q, ids=area_ids: q["area"] in ids)
        out.append(f"| {item} | {names} | {cover} | {_counts_cell(c)} |")
    out.append("\n### Question areas and exam weights\n\nThe exam simulation draws questions from each area in "
               "proportion to its weight. The weights split 211.1 over what this lesson teaches; they are the "
               "course's, not LPI's.\n\n| area | weight | questions |\n|---|---|---|")
    for aid, a in areas.items():
        c = count_by(qs, lambda q, aid=aid: q["area"] == aid)
        out.append(f"| {a['title']} (`{aid}`) | {a['weight']} | {_counts_cell(c)} |")
    return "\n".join(out) + "\n"


# --- the home page: getting the course, its length ----------------------------------------------------------
#: mkdocs.yml's repo_url when COURSE_REPO_URL is not set: a reserved .invalid name, never a real address.
REPO_PLACEHOLDER_HOST = "example.invalid"


def normalise_git_url(url: str) -> str:
    """A clone address as a browser link: ``git@host:owner/name.git`` / ``ssh://git@host/owner/name.git``
    -> ``https://host/owner/name``; an http(s) address loses its credentials and ``.git``."""
    import urllib.parse

    url = url.strip()
    m = re.fullmatch(r"(?:[^@/\s]+@)?([^:/\s]+):(?!//)/?(.+)", url)  # scp form: [user@]host:path
    if m and "://" not in url:
        host, path = m.group(1), m.group(2)
    else:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("ssh", "git", "http", "https", "git+ssh") or not u.hostname:
            raise SiteDataError(f"the git remote address {url!r} is not one the site can link to; "
                                "set COURSE_REPO_URL=https://... for the build")
        host = u.hostname + (f":{u.port}" if u.port and u.scheme in ("http", "https") else "")
        path = u.path.lstrip("/")
    path = path.rstrip("/").removesuffix(".git")
    if not path:
        raise SiteDataError(f"the git remote address {url!r} names no repository; set COURSE_REPO_URL=https://...")
    return f"https://{host}/{path}"


def repo_url_from(env: dict[str, str], root: Path, placeholder: str) -> tuple[str, str]:
    """The repository's address and where it came from: ``COURSE_REPO_URL`` if set, else this clone's
    ``git remote get-url origin`` (as https), else the ``.invalid`` placeholder of mkdocs.yml."""
    import subprocess

    if env.get("COURSE_REPO_URL", "").strip():
        return env["COURSE_REPO_URL"].strip().rstrip("/"), "COURSE_REPO_URL"
    try:
        r = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        r = None
    if r is not None and r.returncode == 0 and r.stdout.strip():
        try:
            return normalise_git_url(r.stdout), "git remote origin"
        except SiteDataError:  # e.g. a clone of a local path: nothing a browser can open
            pass
    return placeholder, "placeholder"


def clone_md(repo_url: str) -> str:
    """The "get the course" block of the home page, from mkdocs.yml's repo_url."""
    url = (repo_url or "").rstrip("/")
    if not url:
        raise SiteDataError("mkdocs.yml has no repo_url: the home page's git clone line is made from it")
    name = url.rsplit("/", 1)[-1].removesuffix(".git") or "postfix-tls-lab"
    out = []
    if REPO_PLACEHOLDER_HOST in url:
        out.append('!!! warning "This copy of the site was built without the repository\'s address"\n'
                   "    The address below is a placeholder. Whoever publishes the course sets it: "
                   "`COURSE_REPO_URL=https://... mkdocs build` (mkdocs.yml, `repo_url`).\n")
    out.append(f"The course lives in a git repository: **<{url}>**\n")
    out.append(f"```console\n$ git clone {url}\n$ cd {name}\n$ make lab\n```\n")
    out.append("`make lab` sets everything up, starts the lab and opens the course; `make test` sets everything "
               "up and runs every test (the README's two commands).\n")
    return "\n".join(out)


def course_time_md(nbs: list[Notebook]) -> str:
    """A table of the lessons and their time (teaching + exercises from each notebook's metadata)."""
    if not nbs:
        return "*The lesson notebooks are not in `notebooks/` yet.*\n"
    rows = ["| lesson | time |", "|---|---|"]
    for nb in nbs:
        rows.append(f"| [{nb.title}]({nb.page.replace('.html', '.ipynb')}) | {nb.minutes} min |")
    total = sum(nb.minutes for nb in nbs)
    rows.append(f"| **all {len(nbs)} lessons** | **{total} min** (about {round(total / 60 * 2) / 2:g} h) |")
    return "\n".join(rows) + "\n"


def _main(argv: list[str]) -> int:
    what = argv[1] if len(argv) > 1 else "postconf"
    if what == "postconf":
        print(postconf_reference_md())
    elif what == "replies":
        print(replies_md())
    elif what == "commands":
        print(commands_md())
    elif what == "notebooks":
        for nb in notebooks():
            print(nb.site_path, nb.title, nb.objectives, nb.areas)
    elif what == "bank":
        b = load_site_bank()
        print(json.dumps(b.data, indent=2)[:4000])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv))
