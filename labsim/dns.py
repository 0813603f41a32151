"""DNSSEC and DANE, really and offline: the lab domain as a signed zone, a validating resolver, TLSA.

At run time this module

* generates the lab zone's DNSSEC keys (a KSK and a ZSK, ECDSA P-256, with ldns's ``ldns-keygen``;
  private halves mode 0600 under ``<lab home>/dns/keys``, never committed),
* writes the zone of the lab domain (SOA, NS, A and MX pointing at 127.0.0.1, the TLSA record of the
  certificate the lab's smtpd really serves, the TLS-RPT record) and signs it (``ldns-signzone``),
* serves it with NSD (Debian's authoritative server) on ``127.0.0.1:<dns_auth_port>``,
* runs unbound as a validating resolver on ``127.0.0.1:<resolver_port>`` that knows the lab zone's NSD
  (a stub zone) and trusts the lab's KSK (its DS record as the trust anchor, what a parent zone would
  publish). Anything outside the lab zone is refused: the lab never asks the internet.

A sending Postfix reads ``/etc/resolv.conf``, which names a resolver on port 53 and no other. As root,
unbound therefore also answers on port 53 of a loopback address of this lab's own
(``127.53.<hi>.<lo>``, from the resolver port: every address in 127.0.0.0/8 is on ``lo`` already, nothing
is added), and :func:`resolv_conf` writes the file a private mount namespace puts in place of
``/etc/resolv.conf`` for the sending Postfix (:mod:`labsim.dane`). The system's resolver is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError, MissingPackageError
from .ports import require_free
from .backends.postfix import find  # the one lookup of a command in PATH and the sbin directories
from .procs import read_pidfile, stop_pidfile
from .settings import Settings

#: command -> Debian package
TOOLS = {
    "nsd": "nsd",
    "unbound": "unbound",
    "ldns-keygen": "ldnsutils",
    "ldns-signzone": "ldnsutils",
    "ldns-key2ds": "ldnsutils",
    "dig": "bind9-dnsutils",
    "delv": "bind9-dnsutils",
}
ALGORITHM = "ECDSAP256SHA256"  # DNSSEC algorithm 13
TTL = 60


def installed() -> bool:
    return all(find(c) for c in TOOLS)


def require_installed() -> None:
    missing = sorted({pkg for cmd, pkg in TOOLS.items() if not find(cmd)})
    if missing:
        raise MissingPackageError(
            f"The lab's DNSSEC zone needs the Debian package(s): {' '.join(missing)}.",
            hint=f"As root: apt-get install -y {' '.join(missing)}   (or run `make lab`, which installs everything).",
        )


# --- where things are ----------------------------------------------------------------------------------

def dns_dir(settings: Settings) -> Path:
    return settings.home / "dns"


def key_dir(settings: Settings) -> Path:
    return dns_dir(settings) / "keys"


def zone_file(settings: Settings) -> Path:
    """The unsigned zone (what an administrator edits)."""
    return dns_dir(settings) / f"{settings.domain}.zone"


def signed_zone_file(settings: Settings) -> Path:
    return dns_dir(settings) / f"{settings.domain}.zone.signed"


def trust_anchor_file(settings: Settings) -> Path:
    """The DS record of the lab's KSK: what the parent zone would publish, here the resolver's anchor."""
    return dns_dir(settings) / "trust-anchor.ds"


def resolver_address(settings: Settings) -> str:
    """The loopback address where the validating resolver answers on port 53 (root only): one per lab,
    derived from its resolver port, so concurrent labs never collide."""
    p = settings.resolver_port
    return f"127.53.{p >> 8}.{p & 255}"


def resolv_conf(settings: Settings) -> Path:
    """A resolv.conf naming the lab's resolver (``options trust-ad``: glibc passes the AD bit to Postfix
    only with it). Bind-mounted over /etc/resolv.conf in the sending Postfix's private mount namespace."""
    path = dns_dir(settings) / "resolv.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# the lab's validating resolver (labsim.dns)\nnameserver {resolver_address(settings)}\n"
                    "options edns0 trust-ad\n")
    path.chmod(0o644)
    return path


def tlsa_name(settings: Settings, port: int) -> str:
    """Where a client looks for the TLSA record of SMTP on ``port`` (RFC 7672: ``_25._tcp.<mx host>``)."""
    return f"_{port}._tcp.{settings.domain}"


# --- TLSA ------------------------------------------------------------------------------------------------

def served_certificate(settings: Settings, port: int | None = None) -> bytes:
    """The DER certificate the lab's smtpd presents after STARTTLS (what a DANE client will check)."""
    from .smtpprobe import Conn

    port = port or settings.smtp_port
    try:
        with Conn(settings.host, port) as c:
            ehlo = c.cmd("EHLO tlsa.probe")
            if "STARTTLS" not in ehlo:
                raise LabError(f"The lab's server on port {port} does not offer STARTTLS, so there is no "
                               "certificate to publish.", hint="smtpd_tls_security_level = may (notebook 03).")
            tls = c.starttls(settings.domain, None, verify=False)
            der = tls.getpeercert(binary_form=True)
    except OSError as e:
        raise LabError(f"Could not reach the lab's server on {settings.host}:{port}: {e}", hint="labsim up") from e
    if not der:
        raise LabError("The lab's server sent no certificate.")
    return der


def tlsa_311(cert_der: bytes) -> str:
    """TLSA ``3 1 1``: DANE-EE, the certificate's public key (SubjectPublicKeyInfo), SHA-256. The hex
    digest ``openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256sum`` prints."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_der_x509_certificate(cert_der)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


# --- keys, zone, signing ---------------------------------------------------------------------------------

def _run(cmd: list[str], *, cwd: Path | None = None, what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise LabError(f"{what} failed.", detail=(proc.stderr or proc.stdout).strip())
    return proc


def keys(settings: Settings) -> tuple[str, str]:
    """(KSK, ZSK) base names (``K<domain>.+013+<tag>``) in :func:`key_dir`; generated the first time.
    ldns-keygen writes the private key under umask 077: mode 0600 from the start."""
    require_installed()
    kd = key_dir(settings)
    kd.mkdir(parents=True, exist_ok=True)
    kd.chmod(0o700)
    names = {}
    for role in ("ksk", "zsk"):
        marker = kd / f"{role}.name"
        if marker.exists() and (kd / f"{marker.read_text().strip()}.private").exists():
            names[role] = marker.read_text().strip()
            continue
        old = os.umask(0o077)
        try:
            args = [find("ldns-keygen") or "ldns-keygen", "-a", ALGORITHM] + (["-k"] if role == "ksk" else [])
            base = _run(args + [settings.domain], cwd=kd, what="ldns-keygen").stdout.strip()
        finally:
            os.umask(old)
        (kd / f"{base}.private").chmod(0o600)
        marker.write_text(base + "\n")
        names[role] = base
    return names["ksk"], names["zsk"]


def ds_record(settings: Settings) -> str:
    """The KSK's DS record (SHA-256 digest, type 2), one line of zone-file text."""
    ksk, _zsk = keys(settings)
    kd = key_dir(settings)
    base = _run([find("ldns-key2ds") or "ldns-key2ds", "-n", "-2", str(kd / f"{ksk}.key")], what="ldns-key2ds")
    return base.stdout.strip()


@dataclass
class Zone:
    """What the lab zone publishes. ``tlsa`` maps a port to the ``3 1 1`` digest published for it."""

    tlsa: dict[int, str] = field(default_factory=dict)
    txt: dict[str, str] = field(default_factory=dict)  # owner (relative) -> TXT string
    a: dict[str, str] = field(default_factory=dict)  # extra owners (relative) -> IPv4


def zone_text(settings: Settings, zone: Zone, serial: int) -> str:
    d = settings.domain
    lines = [
        f"$ORIGIN {d}.", f"$TTL {TTL}",
        f"@ IN SOA ns.{d}. hostmaster.{d}. {serial} 3600 600 86400 {TTL}",
        f"@ IN NS ns.{d}.",
        "ns IN A 127.0.0.1",
        "@ IN A 127.0.0.1",
        f"@ IN MX 10 {d}.",
    ]
    for owner, addr in sorted(zone.a.items()):
        lines.append(f"{owner} IN A {addr}")
    for port, digest in sorted(zone.tlsa.items()):
        lines.append(f"_{port}._tcp IN TLSA 3 1 1 {digest}")
    for owner, text in sorted(zone.txt.items()):
        lines.append(f'{owner} IN TXT "{text}"')
    return "\n".join(lines) + "\n"


def sign(settings: Settings, zone: Zone) -> Path:
    """Write the zone and sign it with the lab's keys (``ldns-signzone``: NSEC, signatures valid for 30
    days from now). Written to a temporary file first: the served zone is never half-written."""
    ksk, zsk = keys(settings)
    kd = key_dir(settings)
    zf = zone_file(settings)
    serial = int(time.time())
    zf.write_text(zone_text(settings, zone, serial))
    tmp = zf.with_name(zf.name + ".tmp")
    expire = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() + 30 * 86400))
    incept = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 3600))
    _run([find("ldns-signzone") or "ldns-signzone", "-e", expire, "-i", incept, "-f", str(tmp),
          "-o", settings.domain, str(zf), str(kd / zsk), str(kd / ksk)], what="ldns-signzone")
    tmp.replace(signed_zone_file(settings))
    ta = trust_anchor_file(settings)
    ta.write_text(ds_record(settings) + "\n")
    return signed_zone_file(settings)


# --- the daemons -------------------------------------------------------------------------------------------

def _nsd_conf(settings: Settings) -> Path:
    d = dns_dir(settings)
    conf = d / "nsd.conf"
    conf.write_text(f"""\
# NSD, the lab zone's authoritative server (labsim.dns); loopback only
server:
    ip-address: {settings.host}@{settings.dns_auth_port}
    port: {settings.dns_auth_port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/nsd.zonelist"
    xfrdfile: "{d}/nsd.xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    server-count: 1
    hide-version: yes
    verbosity: 1
remote-control:
    control-enable: no
zone:
    name: "{settings.domain}"
    zonefile: "{signed_zone_file(settings)}"
""")
    return conf


def _unbound_conf(settings: Settings) -> Path:
    d = dns_dir(settings)
    conf = d / "unbound.conf"
    extra = f"    interface: {resolver_address(settings)}@53\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""\
# unbound, the lab's validating resolver (labsim.dns); loopback only
server:
    interface: {settings.host}@{settings.resolver_port}
{extra}    port: {settings.resolver_port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: "{d}/unbound.pid"
    logfile: "{d}/unbound.log"
    use-syslog: no
    do-daemonize: yes
    num-threads: 1
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "validator iterator"
    trust-anchor-file: "{trust_anchor_file(settings)}"
    val-log-level: 2
    verbosity: 1
    # the lab never asks the internet: everything but the lab zone is refused
    local-zone: "." refuse
    local-zone: "{settings.domain}." transparent
remote-control:
    control-enable: no
stub-zone:
    name: "{settings.domain}"
    stub-addr: {settings.host}@{settings.dns_auth_port}
""")
    return conf


def nsd_pid(settings: Settings) -> int | None:
    return read_pidfile(dns_dir(settings) / "nsd.pid", expect="nsd")


def unbound_pid(settings: Settings) -> int | None:
    return read_pidfile(dns_dir(settings) / "unbound.pid", expect="unbound")


def is_running(settings: Settings) -> bool:
    return nsd_pid(settings) is not None and unbound_pid(settings) is not None


def _tail(path: Path, n: int = 6) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return ""


def _wait_answer(settings: Settings, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run([find("dig") or "dig", f"@{settings.host}", "-p", str(port), "+time=1", "+tries=1",
                               "+norecurse" if port == settings.dns_auth_port else "+recurse",
                               settings.domain, "SOA"], capture_output=True, text=True, timeout=10)
        if "status: NOERROR" in proc.stdout:
            return True
        time.sleep(0.1)
    return False


def _start_nsd(settings: Settings) -> None:
    require_free(settings.dns_auth_port, "LABSIM_DNS_AUTH_PORT", "the lab zone's DNS server (NSD)", settings.host)
    conf = _nsd_conf(settings)
    proc = subprocess.run([find("nsd") or "nsd", "-c", str(conf)], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 or not _wait_answer(settings, settings.dns_auth_port):
        raise LabError(f"NSD did not start on {settings.host}:{settings.dns_auth_port}.",
                       detail=(proc.stderr + "\n" + _tail(dns_dir(settings) / "nsd.log")).strip())


def _start_unbound(settings: Settings) -> None:
    require_free(settings.resolver_port, "LABSIM_RESOLVER_PORT", "the lab's validating resolver (unbound)",
                 settings.host)
    conf = _unbound_conf(settings)
    proc = subprocess.run([find("unbound") or "unbound", "-c", str(conf)], capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0 or not _wait_answer(settings, settings.resolver_port):
        raise LabError(f"unbound did not start on {settings.host}:{settings.resolver_port}.",
                       detail=(proc.stderr + "\n" + _tail(dns_dir(settings) / "unbound.log")).strip())


def stop(settings: Settings) -> None:
    """Stop the resolver and the lab zone's server (files and keys stay)."""
    d = dns_dir(settings)
    was = nsd_pid(settings) is not None
    stop_pidfile(d / "unbound.pid", expect="unbound")
    stop_pidfile(d / "nsd.pid", expect="nsd")
    if was:  # NSD forks a server and an xfrd child; wait until they have let go of the port.
        from .ports import is_free

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not is_free(settings.dns_auth_port, settings.host):
            time.sleep(0.05)


def current_zone(settings: Settings) -> Zone:
    """What the zone publishes now (read back from the unsigned zone file)."""
    z = Zone()
    try:
        text = zone_file(settings).read_text()
    except FileNotFoundError:
        return z
    for m in re.finditer(r"^_(\d+)\._tcp IN TLSA 3 1 1 ([0-9a-f]+)$", text, re.M):
        z.tlsa[int(m[1])] = m[2]
    for m in re.finditer(r'^(\S+) IN TXT "(.*)"$', text, re.M):
        z.txt[m[1]] = m[2]
    for m in re.finditer(r"^(\S+) IN A (\S+)$", text, re.M):
        if m[1] not in ("ns", "@"):
            z.a[m[1]] = m[2]
    return z


def publish(settings: Settings, zone: Zone) -> None:
    """Sign ``zone`` and serve it; the resolver is restarted so no old answer stays in its cache."""
    sign(settings, zone)
    if nsd_pid(settings) or unbound_pid(settings):
        stop(settings)
    _start_nsd(settings)
    _start_unbound(settings)


def default_zone(settings: Settings, digest: str | None = None, ports: tuple[int, ...] | None = None) -> Zone:
    """The TLSA record of the served certificate (or ``digest``) for the lab's SMTP port and the
    attacker's port (in the real world both are port 25 of the same name), and the TLS-RPT record."""
    digest = digest or tlsa_311(served_certificate(settings))
    ports = ports or (settings.smtp_port, settings.mitm_port)
    return Zone(tlsa={p: digest for p in ports},
                txt={"_smtp._tls": f"v=TLSRPTv1; rua=mailto:tls-reports@{settings.domain}"})


def up(settings: Settings, digest: str | None = None) -> Zone:
    """Keys (first time), the zone with the TLSA record of the certificate the lab serves now (or
    ``digest``), signed, served by NSD, resolved and validated by unbound. The lab's server must run."""
    require_installed()
    dns_dir(settings).mkdir(parents=True, exist_ok=True)
    zone = default_zone(settings, digest)
    publish(settings, zone)
    return zone


def down(settings: Settings) -> None:
    """For ``labsim down``: stop what :func:`up` started (and the MTA-STS servers), if anything."""
    from . import mtasts

    mtasts.stop(settings)
    stop(settings)


# --- asking --------------------------------------------------------------------------------------------------

@dataclass
class Answer:
    """A validating resolver's answer, as ``dig +dnssec`` prints it."""

    status: str  # NOERROR | NXDOMAIN | SERVFAIL | ...
    flags: list[str]
    records: list[str]  # answer section, without RRSIGs
    signatures: list[str]  # RRSIG lines of the answer section
    text: str

    @property
    def secure(self) -> bool:
        """The resolver validated it: the AD (authenticated data) flag."""
        return "ad" in self.flags and self.status == "NOERROR"


def dig(settings: Settings, name: str, rrtype: str = "A", *, port: int | None = None) -> Answer:
    """``dig @127.0.0.1 -p <resolver port> +dnssec NAME TYPE`` against the lab's validating resolver."""
    proc = subprocess.run([find("dig") or "dig", f"@{settings.host}", "-p", str(port or settings.resolver_port),
                           "+dnssec", "+nomultiline", "+time=2", "+tries=2", name, rrtype],
                          capture_output=True, text=True, timeout=30)
    out = proc.stdout
    status = (re.search(r"status: (\w+)", out) or [None, "NO ANSWER"])[1]
    fm = re.search(r";; flags: ([a-z ]*);", out)
    flags = fm[1].split() if fm else []
    section = out.split(";; ANSWER SECTION:", 1)[1].split("\n\n", 1)[0] if ";; ANSWER SECTION:" in out else ""
    rows = [ln for ln in section.splitlines() if ln.strip()]
    records = [ln for ln in rows if ln.split()[3:4] != ["RRSIG"]]
    sigs = [ln for ln in rows if ln.split()[3:4] == ["RRSIG"]]
    return Answer(status, flags, records, sigs, out)


def delv(settings: Settings, name: str, rrtype: str = "A") -> str:
    """``delv`` (BIND's validating lookup tool) with the lab's DS as its only trust anchor: validates the
    answer itself, independently of unbound. Prints ``; fully validated`` for a secure answer."""
    ds = ds_record(settings).split()
    # owner TTL IN DS tag alg digesttype digest  ->  trust-anchors { owner static-ds tag alg type "digest"; };
    owner, tag, alg, dtype, digest = ds[0], ds[4], ds[5], ds[6], "".join(ds[7:])
    anchors = dns_dir(settings) / "delv-anchors.conf"
    anchors.write_text(f'trust-anchors {{\n  {owner} static-ds {tag} {alg} {dtype} "{digest}";\n}};\n')
    proc = subprocess.run([find("delv") or "delv", f"@{settings.host}", "-p", str(settings.resolver_port),
                           "-a", str(anchors), f"+root={settings.domain}", name, rrtype],
                          capture_output=True, text=True, timeout=30)
    return (proc.stdout + proc.stderr).strip()


# --- the notebook's exercise step ("tlsa", lesson 6, registered in labsim.checks) ----------------------

def _tlsa_digests(ans: Answer) -> list[str]:
    return ["".join(r.split()[7:]).lower() for r in ans.records if r.split()[3:7] == ["TLSA", "3", "1", "1"]]


def check_tlsa(settings: Settings) -> list:
    """The TLSA record of the lab's SMTP port: published in the signed zone (NSD serves it with its RRSIG),
    validated by the lab's resolver (AD), and matching the certificate the lab's smtpd serves now."""
    from .checks import Condition

    name = tlsa_name(settings, settings.smtp_port)
    if not is_running(settings):
        return [Condition("dns-up", False, "the lab zone's NSD and the validating unbound are not running",
                          hint="dns.up(lab)")]
    out = [Condition("dns-up", True, "the lab zone is served (NSD) and validated (unbound)")]
    auth = dig(settings, name, "TLSA", port=settings.dns_auth_port)  # the zone itself, as NSD serves it
    published = _tlsa_digests(auth)
    signed = bool(published) and any(s.split()[4:5] == ["TLSA"] for s in auth.signatures)
    out.append(Condition("tlsa-published", signed,
                         "the signed zone publishes a TLSA 3 1 1 record for the lab's SMTP port, with its RRSIG"
                         if signed else "the signed zone has no signed TLSA 3 1 1 record for the lab's SMTP port"
                         + (" (a record without a signature)" if published else ""),
                         hint="dns.publish(lab, dns.Zone(tlsa={lab.smtp_port: DIGEST, ...}, txt=...)) signs and serves it"))
    ans = dig(settings, name, "TLSA")
    validated = _tlsa_digests(ans)
    ok = ans.secure and bool(validated)
    out.append(Condition("tlsa-validated", ok,
                         "the validating resolver returns it with the AD flag" if ok else
                         f"the validating resolver does not return it validated (status {ans.status}, "
                         f"flags: {' '.join(ans.flags) or 'none'})",
                         hint="a record changed after signing is bogus (SERVFAIL): sign the zone again with "
                              "dns.publish(...)"))
    try:
        served = tlsa_311(served_certificate(settings))
    except LabError as e:
        out.append(Condition("tlsa-matches", False, f"the served certificate could not be read: {e.message}",
                             hint="labsim up"))
        return out
    match = served in (validated or published)
    out.append(Condition("tlsa-matches", match,
                         "the record's digest is the SHA-256 of the served certificate's public key" if match else
                         "the record's digest is not the SHA-256 of the served certificate's public key",
                         hint="openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256"))
    return out


def solve_tlsa(settings: Settings) -> None:
    """The exercise's folded solution: publish the served certificate's TLSA record (signed) again, for
    every port the zone has one for; a lab without its zone yet gets the default zone (:func:`up`)."""
    if not zone_file(settings).exists():
        up(settings)
        return
    zone = current_zone(settings)
    digest = tlsa_311(served_certificate(settings))
    zone.tlsa = {p: digest for p in (zone.tlsa or {settings.smtp_port: digest})}
    publish(settings, zone)
