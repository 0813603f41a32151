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
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import acme, dns, postfix, sender
from .errors import LabError
from .ports import require_free, wait_listening
from .procs import read_pidfile, stop_pidfile, write_pidfile
from .settings import Settings

HTTPS_PORT = 443  # RFC 8461 section 3.3: the policy host is fetched over HTTPS on its standard port


def home(s: Settings) -> Path:
    return s.home / "mta-sts"


def policy_host(s: Settings) -> str:
    return f"mta-sts.{s.domain}"


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


def up(s: Settings, mode: str = "enforce", policy_id: str | None = None) -> None:
    """Publish the records, serve the policy over HTTPS, start the resolver daemon (restarting what runs:
    a new policy id makes senders fetch the policy again)."""
    postfix.require_root()
    if not dns.is_running(s):
        raise LabError("The lab's DNS is not running.", hint="labsim.dns.up(settings) first")
    if not daemon_bin():
        raise LabError("postfix-mta-sts-resolver is not installed.", hint=".venv/bin/pip install postfix-mta-sts-resolver")
    stop(s)
    h = home(s)
    web = h / "web" / ".well-known"
    web.mkdir(parents=True, exist_ok=True)
    (web / "mta-sts.txt").write_text(policy_text(s, mode))
    live = certificate(s)
    zone = dns.current_zone(s)
    zone.a["mta-sts"] = dns.resolver_address(s)
    zone.txt["_mta-sts"] = f"v=STSv1; id={policy_id or time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    dns.publish(s, zone)
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


from . import dane  # noqa: E402  (dane imports nothing of this module)
