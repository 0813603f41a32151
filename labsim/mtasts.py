"""MTA-STS (RFC 8461), really and offline: the policy of the lab domain, served and enforced.

* The lab zone (:mod:`labsim.dns`) publishes ``_mta-sts.<domain> TXT "v=STSv1; id=..."`` and
  ``mta-sts.<domain> A 127.53.x.y`` (this lab's own loopback address, as for the resolver).
* The policy file is served at ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` by a small HTTPS
  server (Python's http.server) on ``127.53.x.y:443`` (RFC 8461 fixes port 443, so root), with a
  certificate the lab CA issued to ``mta-sts.<domain>`` through certbot (the lesson's flow again).
* ``postfix-mta-sts-resolver`` (PyPI) fetches it and answers the sending Postfix's
  ``smtp_tls_policy_maps = socketmap:inet:127.0.0.1:<mta_sts_port>:postfix``. It runs in a private mount
  namespace where /etc/resolv.conf names the lab's resolver, and trusts the lab CA (``SSL_CERT_FILE``).

The sending Postfix (:mod:`labsim.dane`'s, in its namespace) then relays to ``<domain>:<port>``, without
brackets: MTA-STS applies to MX delivery, so Postfix looks up the MX record. Needs root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import acme, dns, sender
from .backends import postfix
from .errors import LabError
from .ports import require_free, wait_listening
from .procs import read_pidfile, stop_pidfile, write_pidfile
from .settings import Settings

HTTPS_PORT = 443  # RFC 8461 section 3.3: the policy host is fetched over HTTPS on its standard port


def home(s: Settings) -> Path:
    return s.home / "mta-sts"


def policy_host(s: Settings) -> str:
    return f"mta-sts.{s.domain}"


def policy_file(s: Settings) -> Path:
    """The policy the HTTPS server serves (``/.well-known/mta-sts.txt``)."""
    return home(s) / "web" / ".well-known" / "mta-sts.txt"


def policy_text(s: Settings, mode: str = "enforce", mx: str | None = None, max_age: int = 86400) -> str:
    return f"version: STSv1\nmode: {mode}\nmx: {mx or s.domain}\nmax_age: {max_age}\n"


def daemon_bin() -> str | None:
    here = Path(sys.executable).parent / "mta-sts-daemon"
    return str(here) if here.exists() else shutil.which("mta-sts-daemon")


def is_running(s: Settings) -> bool:
    return read_pidfile(home(s) / "https.pid") is not None and read_pidfile(home(s) / "daemon.pid") is not None


def certificate(s: Settings) -> Path:
    """The lab CA's certificate for the policy host (certbot --standalone, as in notebook 02)."""
    live = s.live_dir(policy_host(s))
    if not (live / "fullchain.pem").exists():
        acme.certbot(s, ["certonly", "--standalone", "--agree-tos", "--preferred-challenges", "http",
                         "-d", policy_host(s)])
    return live


def _in_namespace(s: Settings, argv: list[str], env: dict[str, str]) -> list[str]:
    resolv = dns.resolv_conf(s)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv), *argv]


def publish(s: Settings, policy_id: str | None = None) -> str:
    """The DNS half, which needs no root: ``_mta-sts.<domain> TXT "v=STSv1; id=..."`` and the policy host's A
    record in the signed lab zone (re-signed, servers restarted). ``policy_id`` defaults to the time (a new id
    tells senders to fetch the policy again). Returns the TXT record's text."""
    if not dns.is_running(s):
        raise LabError("The lab's DNS is not running.", hint="labsim.dns.up(settings) first")
    zone = dns.current_zone(s)
    zone.a["mta-sts"] = dns.resolver_address(s)
    zone.txt["_mta-sts"] = f"v=STSv1; id={policy_id or time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    dns.publish(s, zone)
    return zone.txt["_mta-sts"]


def up(s: Settings, mode: str = "enforce", policy_id: str | None = None, *, mx: str | None = None,
       max_age: int = 86400) -> None:
    """Publish the records, serve the policy over HTTPS, start the resolver daemon (restarting what runs:
    a new policy id makes senders fetch the policy again). ``mx``: the policy's one mx pattern (default the
    lab domain, its MX host)."""
    postfix.require_root()
    if not dns.is_running(s):
        raise LabError("The lab's DNS is not running.", hint="labsim.dns.up(settings) first")
    if not daemon_bin():
        raise LabError("postfix-mta-sts-resolver is not installed.", hint=".venv/bin/pip install postfix-mta-sts-resolver")
    stop(s)
    h = home(s)
    web = h / "web" / ".well-known"
    web.mkdir(parents=True, exist_ok=True)
    (web / "mta-sts.txt").write_text(policy_text(s, mode, mx, max_age))
    live = certificate(s)
    publish(s, policy_id)
    addr = dns.resolver_address(s)
    server = f"""
import functools, http.server, ssl
class H(http.server.SimpleHTTPRequestHandler):
    extensions_map = {{".txt": "text/plain"}}
    def log_message(self, fmt, *args):
        open({str(h / 'https.log')!r}, "a").write(("%s " + fmt + "\\n") % ((self.client_address[0],) + args))
httpd = http.server.ThreadingHTTPServer(({addr!r}, {HTTPS_PORT}), functools.partial(H, directory={str(web.parent)!r}))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain({str(live / 'fullchain.pem')!r}, {str(live / 'privkey.pem')!r})
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"""
    log = open(h / "https.err", "ab")
    p = subprocess.Popen([sys.executable, "-c", server], stdout=log, stderr=log, start_new_session=True,
                         env={**os.environ, "LABSIM_HOME": str(s.home)})
    write_pidfile(h / "https.pid", p.pid)
    if not wait_listening(HTTPS_PORT, addr, timeout=10):
        raise LabError(f"The MTA-STS policy server did not start on {addr}:{HTTPS_PORT}.",
                       detail=(h / "https.err").read_text(errors="replace")[-1500:])
    require_free(s.mta_sts_port, "LABSIM_MTA_STS_PORT", "postfix-mta-sts-resolver", s.host)
    conf = h / "mta-sts-daemon.yml"
    conf.write_text(f"host: {s.host}\nport: {s.mta_sts_port}\nreuse_port: true\nshutdown_timeout: 2\n"
                    "cache:\n  type: internal\n  options:\n    cache_size: 100\n"
                    "default_zone:\n  strict_testing: false\n  timeout: 4\n")
    env = {**os.environ, "SSL_CERT_FILE": str(s.lab_ca), "LABSIM_HOME": str(s.home)}
    argv = [daemon_bin() or "mta-sts-daemon", "-c", str(conf), "-l", str(h / "daemon.log"), "-v", "info"]
    d = subprocess.Popen(_in_namespace(s, argv, env), env=env, stdout=subprocess.DEVNULL, stderr=log,
                         start_new_session=True)
    write_pidfile(h / "daemon.pid", d.pid)
    if not wait_listening(s.mta_sts_port, s.host, timeout=15):
        raise LabError(f"postfix-mta-sts-resolver did not start on {s.host}:{s.mta_sts_port}.",
                       detail=(h / "https.err").read_text(errors="replace")[-1500:])


def stop(s: Settings) -> None:
    stop_pidfile(home(s) / "daemon.pid")
    stop_pidfile(home(s) / "https.pid")


def query(s: Settings, cafile: Path | None = None) -> str:
    """``mta-sts-query <domain>`` in the lab's DNS view, trusting the lab CA (or ``cafile``): what the
    resolver daemon fetches."""
    env = {**os.environ, "SSL_CERT_FILE": str(cafile or s.lab_ca)}
    q = Path(daemon_bin() or "mta-sts-daemon").with_name("mta-sts-query")
    proc = subprocess.run(_in_namespace(s, [str(q), s.domain], env), env=env, capture_output=True, text=True,
                          timeout=60)
    return (proc.stdout + proc.stderr).strip()


def configure_sender(lab: Settings, *, target_port: int | None = None, enabled: bool = True) -> None:
    """The sending Postfix (started by :func:`labsim.dane.up`) at may, with the MTA-STS socketmap, relaying to
    ``<domain>:<port>`` (MX lookup)."""
    s = sender.settings_for(lab)
    port = target_port or lab.smtp_port
    dane.configure(lab, "may", target_port=port)
    params = [f"relayhost={lab.domain}:{port}", "smtp_dns_support_level=",
              "smtp_tls_policy_maps=" + (f"socketmap:inet:{lab.host}:{lab.mta_sts_port}:postfix" if enabled else "")]
    postfix.postconf(s, *params, check=True)
    if postfix.is_running(s):
        postfix.reload(s)


# --- parsing and matching (RFC 8461 sections 3.1, 3.2, 4.1) ------------------------------------------------

RECORD_RE = re.compile(r"^v=STSv1(?:\s*;\s*[^;=\s]+=[^;]*)*\s*;?\s*$")
ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
MODES = ("enforce", "testing", "none")
MAX_AGE_LIMIT = 31557600  # RFC 8461 section 3.2: about one year


def parse_record(text: str) -> dict[str, str]:
    """``v=STSv1; id=20261203...`` -> {"v": "STSv1", "id": "20261203..."} (empty when v is not first)."""
    if not RECORD_RE.match(text.strip()):
        return {}
    fields = (f.strip() for f in text.split(";"))
    return dict(f.partition("=")[0::2] for f in fields if f)


def parse_policy(text: str) -> dict[str, object]:
    """The policy file's ``key: value`` lines; ``mx`` may repeat, so it is a list."""
    pol: dict[str, object] = {"mx": []}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "mx":
            pol["mx"].append(value)  # type: ignore[union-attr]
        else:
            pol[key] = value
    return pol


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 section 4.1: an exact name, or ``*.`` standing for exactly one leftmost label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, dot, rest = host.partition(".")
        return bool(first) and bool(dot) and rest == pattern[2:]
    return pattern == host


def policy_address(s: Settings) -> str | None:
    """The address the lab's validating resolver gives for ``mta-sts.<domain>`` (None without one)."""
    ans = dns.dig(s, policy_host(s), "A")
    addrs = [r.split()[4] for r in ans.records if r.split()[3:4] == ["A"]]
    return addrs[0] if ans.status == "NOERROR" and addrs else None


def fetch_policy(s: Settings, *, cafile: Path | None = None, timeout: float = 5.0) -> tuple[int, str, str]:
    """GET ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` as a sending MTA does: the address from the
    lab's resolver, the certificate verified against the lab CA (or ``cafile``) for the name
    ``mta-sts.<domain>``, no redirect followed. Returns (HTTP status, Content-Type, body); raises
    :class:`LabError` when the name does not resolve, the server does not answer, or the certificate fails."""
    import http.client
    import socket
    import ssl

    addr = policy_address(s)
    if addr is None:
        raise LabError(f"{policy_host(s)} has no A record in the lab zone.", hint="mtasts.up(lab)")
    ctx = ssl.create_default_context(cafile=str(cafile or s.lab_ca))
    try:
        raw = socket.create_connection((addr, HTTPS_PORT), timeout=timeout)
    except OSError as e:
        raise LabError(f"The policy server {policy_host(s)} ({addr}:{HTTPS_PORT}) does not answer: {e}",
                       hint="mtasts.up(lab) starts it") from e
    try:
        try:
            tls = ctx.wrap_socket(raw, server_hostname=policy_host(s))
        except ssl.SSLCertVerificationError as e:
            raise LabError(f"The policy server's certificate does not verify for {policy_host(s)}: "
                           f"{e.verify_message}", hint="a certificate from the lab CA for that name: "
                           "mtasts.certificate(lab)") from e
        except (ssl.SSLError, OSError) as e:
            raise LabError(f"No TLS with the policy server {policy_host(s)}: {e}") from e
        with tls:
            tls.sendall(f"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {policy_host(s)}\r\n"
                        "Connection: close\r\n\r\n".encode())
            resp = http.client.HTTPResponse(tls)
            resp.begin()
            body = resp.read(64 * 1024).decode("ascii", errors="replace")
            return resp.status, resp.getheader("Content-Type", ""), body
    finally:
        raw.close()


# --- the MTA-STS step ("mta-sts", lesson 6, registered in labsim.checks) ---------------------------------

def check_mtasts(settings: Settings) -> list:
    """The lab domain's MTA-STS policy: the ``_mta-sts`` TXT record with an id, the policy over HTTPS that
    verifies against the lab CA for ``mta-sts.<domain>``, its version, mode (enforce), max_age, and mx
    patterns that match every MX host of the lab domain."""
    from .checks import Condition

    s = settings
    if not dns.is_running(s):
        return [Condition("dns-up", False, "the lab zone's NSD and the validating unbound are not running",
                          hint="dns.up(lab)")]
    out = [Condition("dns-up", True, "the lab zone is served (NSD) and validated (unbound)")]
    txt = dns.dig(s, f"_mta-sts.{s.domain}", "TXT")
    texts = ["".join(re.findall(r'"((?:[^"\\]|\\.)*)"', r.split("TXT", 1)[1])) for r in txt.records
             if r.split()[3:4] == ["TXT"]]
    sts = [parse_record(t) for t in texts if t.startswith("v=STSv1")]
    rec_ok = len(sts) == 1 and bool(ID_RE.match(sts[0].get("id", "")))
    out.append(Condition(
        "mtasts-record", rec_ok,
        f"_mta-sts.{s.domain} publishes one v=STSv1 TXT record with id={sts[0]['id']}" if rec_ok else
        f"_mta-sts.{s.domain} has no TXT record \"v=STSv1; id=...\" (an id of 1 to 32 letters and digits)"
        + (f": found {texts!r}" if texts else ""),
        hint="mtasts.up(lab) publishes it with a new id (a new id tells senders to fetch the policy again)"))
    try:
        status, ctype, body = fetch_policy(s)
    except LabError as e:
        out.append(Condition("mtasts-https", False, e.message, hint=e.hint or "mtasts.up(lab)"))
        return out
    https_ok = status == 200 and ctype.lower().partition(";")[0].strip() == "text/plain"
    out.append(Condition(
        "mtasts-https", https_ok,
        f"https://{policy_host(s)}/.well-known/mta-sts.txt answers 200, text/plain, over TLS verified "
        "against the lab CA" if https_ok else
        f"https://{policy_host(s)}/.well-known/mta-sts.txt answers {status} with Content-Type "
        f"{ctype or '(none)'} (a sender wants 200 and text/plain)", hint="mtasts.up(lab)"))
    pol = parse_policy(body)
    out.append(Condition("mtasts-version", pol.get("version") == "STSv1",
                         f"version: {pol.get('version', '(missing)')}" + ("" if pol.get("version") == "STSv1"
                                                                           else ", not STSv1"),
                         hint="the policy's first line: version: STSv1"))
    mode = str(pol.get("mode", ""))
    out.append(Condition(
        "mtasts-mode", mode == "enforce",
        "mode: enforce (a sender defers rather than deliver without verified TLS)" if mode == "enforce" else
        f"mode: {mode or '(missing)'}" + (": senders only report what would have failed" if mode == "testing"
                                          else ": no policy in force" if mode == "none" else ", not a mode"),
        hint="mtasts.up(lab, 'enforce')"))
    age = str(pol.get("max_age", ""))
    age_ok = age.isdigit() and 0 <= int(age) <= MAX_AGE_LIMIT
    out.append(Condition("mtasts-max-age", age_ok,
                         f"max_age: {age} seconds" if age_ok else
                         f"max_age: {age or '(missing)'} is not 0 to {MAX_AGE_LIMIT} seconds",
                         hint="max_age: 86400 (a day) while testing, weeks once it works"))
    patterns = [str(p) for p in pol["mx"]]  # type: ignore[union-attr]
    mx = dns.dig(s, s.domain, "MX")
    hosts = [r.split()[-1].rstrip(".") for r in mx.records if r.split()[3:4] == ["MX"]]
    unmatched = [h for h in hosts if not any(mx_matches(p, h) for p in patterns)]
    mx_ok = bool(hosts) and bool(patterns) and not unmatched
    out.append(Condition(
        "mtasts-mx", mx_ok,
        f"the mx patterns {', '.join(patterns)} match the lab domain's MX host(s) {', '.join(hosts)}" if mx_ok
        else f"the mx patterns {', '.join(patterns) or '(none)'} do not match the MX host(s) "
             f"{', '.join(unmatched or hosts) or '(none)'}",
        hint="one mx: line per MX host (or *.domain for one label below it); dig MX the lab domain"))
    return out


def solve_mtasts(settings: Settings) -> None:
    """The folded solution: the lab DNS (if it is not up), then the policy in enforce mode for the MX host,
    served over HTTPS with the lab CA's certificate, with a new id. Needs root (port 443)."""
    if not dns.is_running(settings):
        dns.up(settings)
    up(settings, "enforce")


from . import dane  # noqa: E402  (dane imports nothing of this module)
