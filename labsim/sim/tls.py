"""The simulator's TLS: a server context from main.cf's certificate parameters, and Postfix's words for it.

Which files hold the certificate and key is main.cf's rule, applied once in ``MainCf.server_tls_files``
(Postfix 3.4+ takes ``smtpd_tls_chain_files`` when set and ignores the legacy ``smtpd_tls_cert_file``/
``smtpd_tls_key_file`` then); this module loads what it names. A certificate or key it cannot
load does not stop smtpd: it logs ``warning: cannot get RSA certificate from file "...": disabling TLS
support`` and answers STARTTLS with ``454 4.7.0 TLS not available due to local problem``. ``load`` returns
``(None, warnings)`` in that case, and the server behaves the same.

Protocols and ciphers are smtpd's (see FACTS.md, "The server's ciphers"): ``smtpd_tls_protocols`` and
``smtpd_tls_ciphers`` (their ``mandatory`` forms at ``encrypt``) pick the range and the grade, the grade names
``tls_<grade>_cipherlist``, and each word of ``smtpd_tls_exclude_ciphers`` (plus
``smtpd_tls_mandatory_exclude_ciphers`` at ``encrypt``; words separated by spaces or commas, postconf(5)) is
appended as ``:!word``. Postfix 3.7 on Debian 12 then serves TLS 1.0/1.1 and anonymous (ADH/AECDH)
suites to a client that offers them, which OpenSSL 3 allows only at security level 0: the simulator asks for
that level, and loads the RFC 7919 ffdhe2048 group so that ADH suites exist as they do in Postfix (which has
built-in 2048-bit parameters). A grade or an exclusion Postfix refuses does not stop smtpd either: each
STARTTLS gets ``220``, a warning naming the client, and a closed connection (``ServerTLS.problem``).
"""

from __future__ import annotations

import re
import ssl
import tempfile
import warnings as pywarnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..maincf import TLSFiles

if TYPE_CHECKING:
    from ..maincf import MainCf
from . import replies

_VERSIONS = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_ORDER = ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
ORDER = _ORDER  # the protocol names, lowest first (public: the audit lists what a range allows)

GRADES = ("export", "low", "medium", "high", "null")

#: RFC 7919's ffdhe2048 group (``openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048``): public
#: parameters, not a key
_FFDHE2048 = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


@dataclass(frozen=True)
class Ciphers:
    """What smtpd's cipher parameters ask for: an OpenSSL cipher string, or the problem Postfix warns of at each
    STARTTLS (``invalid cipher grade: "x"``) instead of starting TLS."""

    openssl: str = ""
    problem: str = ""
    preempt: bool = False


def cipher_settings(conf: "MainCf", mandatory: bool) -> Ciphers:
    """The cipher string smtpd builds from main.cf (``mandatory``: at ``encrypt``)."""
    prefix = "smtpd_tls_mandatory_" if mandatory else "smtpd_tls_"
    grade = conf.get(prefix + "ciphers").strip()
    if grade.lower() not in GRADES:
        return Ciphers(problem=f'invalid cipher grade: "{grade}"')
    text = conf.get(f"tls_{grade.lower()}_cipherlist").strip()
    words = re.split(r"[\s,]+", conf.get("smtpd_tls_exclude_ciphers"))
    if mandatory:
        words += re.split(r"[\s,]+", conf.get("smtpd_tls_mandatory_exclude_ciphers"))
    for word in filter(None, words):
        if word[0] in "!+-@":
            return Ciphers(problem=f"invalid unary '!+-@' in cipher exclusion: {word}")
        text += f":!{word}"
    return Ciphers(text, preempt=conf.get_bool("tls_preempt_cipherlist"))


@dataclass
class ServerTLS:
    """A usable server context and what the handshake summary needs to say about its key."""

    context: ssl.SSLContext
    signature: str  # "RSA-PSS (2048 bits)" or "ECDSA (prime256v1)"
    problem: str = ""  # a cipher setting Postfix refuses: warned of at each STARTTLS, which then fails


def protocol_range(spec: str) -> tuple[str, str]:
    """``>=TLSv1``, ``<=TLSv1.3``, ``!SSLv2, !TLSv1`` ... to (lowest, highest) protocol names."""
    allowed = list(_ORDER)
    for item in spec.replace(",", " ").split():
        if item.startswith(">="):
            name = item[2:]
            if name in _ORDER:
                allowed = [p for p in allowed if _ORDER.index(p) >= _ORDER.index(name)]
        elif item.startswith("<="):
            name = item[2:]
            if name in _ORDER:
                allowed = [p for p in allowed if _ORDER.index(p) <= _ORDER.index(name)]
        elif item.startswith("!"):
            allowed = [p for p in allowed if p != item[1:]]
        elif item in _ORDER:
            pass  # a positive list: Postfix treats the excluded ones by their absence; keep it simple
    if not allowed:
        allowed = ["TLSv1.2", "TLSv1.3"]
    return allowed[0], allowed[-1]


def _key_algorithm(cert_path: str) -> tuple[str, str]:
    """("RSA", "RSA-PSS (2048 bits)") or ("ECDSA", "ECDSA (prime256v1)") for a PEM certificate."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = cert.public_key()
        if isinstance(key, ec.EllipticCurvePublicKey):
            curve = {"secp256r1": "prime256v1"}.get(key.curve.name, key.curve.name)
            return "ECDSA", f"ECDSA ({curve})"
        if isinstance(key, rsa.RSAPublicKey):
            return "RSA", f"RSA-PSS ({key.key_size} bits)"
    except Exception:
        pass
    return "RSA", "RSA-PSS (2048 bits)"


def _private_key_algorithm(key_path: str) -> str:
    """RSA or ECDSA, as Postfix names a private key's algorithm in its warnings ("" when unreadable)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(Path(key_path).read_bytes(), password=None)
        return "ECDSA" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSA"
    except Exception:
        return ""


def _combine(files: tuple[str, ...]) -> str:
    """``smtpd_tls_chain_files`` (key first, then its chain) as one combined PEM file for ssl (mode 0600)."""
    pem = ""
    for name in files:
        pem += Path(name).read_text() + "\n"
    tmp = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    tmp.write(pem)
    tmp.close()
    Path(tmp.name).chmod(0o600)
    return tmp.name


def load(files: TLSFiles, protocols: str, ciphers: Ciphers) -> tuple[ServerTLS | None, list[str]]:
    """A server context from the files main.cf names (``MainCf.server_tls_files``), or None and the warnings
    Postfix would log for an unusable cert or key. ``ciphers``: ``cipher_settings`` of the same main.cf."""
    cert_file, key_file = files.cert, files.key
    combined: str | None = None
    if files.chain:
        try:
            cert_file = key_file = combined = _combine(files.chain)
        except OSError:
            return None, [f'warning: cannot load chain files {", ".join(files.chain)}: disabling TLS support']
    algorithm, signature = _key_algorithm(cert_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as error:
            text = str(error).lower()
            bad_key = "key values mismatch" in text or (
                Path(cert_file).is_file() and not Path(key_file).is_file()
            ) or ("pem lib" in text and Path(cert_file).is_file())
            key_algorithm = _private_key_algorithm(key_file)
            if key_algorithm and key_algorithm != algorithm and Path(cert_file).is_file():
                # A key of another algorithm than the certificate's: Postfix's own check says so. (A key of
                # the same algorithm that belongs elsewhere fails in OpenSSL: "cannot get ... private key".)
                return None, [replies.LOG_KEY_MISMATCH.format(
                    algorithm=key_algorithm, key=key_file, cert=cert_file)]
            what, path = ("private key", key_file) if bad_key else ("certificate", cert_file)
            warnings = [replies.LOG_CERT_PROBLEM.format(algorithm=algorithm, what=what, path=path)]
            if "key values mismatch" in text:  # Postfix then logs OpenSSL's own reason too
                warnings.append(replies.LOG_OPENSSL_KEY_MISMATCH)
            return None, warnings
    finally:
        if combined:
            Path(combined).unlink(missing_ok=True)
    low, high = protocol_range(protocols)
    for attr, name in (("minimum_version", low), ("maximum_version", high)):
        try:
            with pywarnings.catch_warnings():  # Python deprecates TLSVersion.TLSv1/1_1; Postfix 3.7 still serves them
                pywarnings.simplefilter("ignore", DeprecationWarning)
                setattr(context, attr, _VERSIONS[name])
        except (ValueError, KeyError):
            pass
    context.options |= ssl.OP_NO_COMPRESSION
    if ciphers.problem:
        return ServerTLS(context, signature, problem=ciphers.problem), []
    try:
        context.set_ciphers(ciphers.openssl + ":@SECLEVEL=0")
    except ssl.SSLError:  # OpenSSL knows none of them: Postfix warns and no handshake succeeds either
        return ServerTLS(context, signature, problem=f"error setting cipher list: {ciphers.openssl}"), []
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as dh:
        dh.write(_FFDHE2048)
        dh.flush()
        context.load_dh_params(dh.name)
    if not ciphers.preempt:  # tls_preempt_cipherlist = no: the client's order wins (Python's default is the server's)
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    return ServerTLS(context, signature), []


def summary(ssl_object: ssl.SSLObject | ssl.SSLSocket, signature: str) -> tuple[str, str]:
    """Postfix's handshake summary, split as its log line and its Received: header need it.

    ``TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`` and
    ``key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256``. Python's ssl does not
    say which group the key exchange used; X25519 is what OpenSSL picks first with every client the
    lesson uses (the real Postfix says the same in the parity tests).
    """
    version = ssl_object.version() or "TLS"
    cipher = ssl_object.cipher()
    name, bits = (cipher[0], cipher[2]) if cipher else ("unknown", 0)
    return (
        f"{version} with cipher {name} ({bits}/{bits} bits)",
        f"key-exchange X25519 server-signature {signature} server-digest SHA256",
    )
