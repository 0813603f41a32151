"""Certificates: the stock self-signed one, checks that a key fits its certificate, chain verification.

Everything here uses the ``cryptography`` library (including its X.509 path validation), so the lab
answers the same questions a verifying SMTP client asks, without shelling out to openssl.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .errors import LabError


def write_private(path: Path, data: bytes) -> None:
    """Write a private key: created with mode 0600 from the start, never world-readable for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def self_signed(
    cert_path: Path,
    key_path: Path,
    names: list[str],
    *,
    key_size: int = 2048,
    days: int = 3650,
    ca: bool = False,
) -> None:
    """Make a self-signed RSA certificate for ``names`` (DNS names or IP addresses).

    With ``ca=False`` this is what Debian's ssl-cert package makes at install time ("snakeoil"): it
    encrypts, but proves nothing, so a verifying client rejects it.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_chain(path: Path) -> list[x509.Certificate]:
    """All certificates of a PEM file, leaf first (fullchain.pem order)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LabError(f"Certificate file {path} does not exist.", hint="Check the path, or issue it: labsim certbot ...")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise LabError(f"{path} is not a PEM certificate file ({e}).", hint="Point at fullchain.pem, not privkey.pem.")


def load_key(path: Path):
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LabError(f"Private key file {path} does not exist.", hint="Point smtpd_tls_key_file at privkey.pem.")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise LabError(
            f"{path} is not an unencrypted PEM private key ({e}).",
            hint="Postfix needs a key without a passphrase; point smtpd_tls_key_file at privkey.pem.",
        )


def key_matches(cert_path: Path, key_path: Path) -> bool:
    """True when the private key belongs to the certificate (the leaf of cert_path)."""
    leaf = load_chain(cert_path)[0]
    key = load_key(key_path)
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return leaf.public_key().public_bytes(enc, pub) == key.public_key().public_bytes(enc, pub)


@dataclass
class CertInfo:
    subject: str
    issuer: str
    names: list[str]
    not_after: str
    key_type: str
    self_signed: bool
    chain_length: int


def describe(cert_path: Path) -> CertInfo:
    chain = load_chain(cert_path)
    leaf = chain[0]
    try:
        names = [str(n) for n in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                 .get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    pk = leaf.public_key()
    if isinstance(pk, rsa.RSAPublicKey):
        key_type = f"RSA {pk.key_size}"
    elif isinstance(pk, ec.EllipticCurvePublicKey):
        key_type = f"ECDSA {pk.curve.name}"
    else:
        key_type = type(pk).__name__
    return CertInfo(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        names=names,
        not_after=leaf.not_valid_after_utc.isoformat(),
        key_type=key_type,
        self_signed=leaf.issuer == leaf.subject,
        chain_length=len(chain),
    )


def verify_chain(cert_path: Path, ca_file: Path, hostname: str) -> None:
    """Verify cert_path (leaf + intermediates) against the roots in ca_file, for hostname.

    Raises LabError saying why, as a verifying client (``smtp_tls_security_level = verify``) would refuse.
    """
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    chain = load_chain(cert_path)
    try:
        roots = x509.load_pem_x509_certificates(Path(ca_file).read_bytes())
    except FileNotFoundError:
        raise LabError(f"The lab CA file {ca_file} does not exist.", hint="Start the lab CA with: labsim up")
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(dt.datetime.now(dt.timezone.utc))
        .build_server_verifier(x509.DNSName(hostname))
    )
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError as e:
        leaf = chain[0]
        why = "it is self-signed: nobody vouches for it" if leaf.issuer == leaf.subject else str(e)
        raise LabError(
            f"{cert_path} does not verify for {hostname} against {ca_file}: {why}.",
            hint="Use the certificate certbot issued (letsencrypt/live/DOMAIN/fullchain.pem).",
        )
