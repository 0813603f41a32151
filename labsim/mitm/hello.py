"""What an attacker can read from a TLS handshake without any key: the ClientHello and ServerHello.

After STARTTLS the attacker in the middle relays bytes it cannot decrypt. The first records still go in
clear, and they are what the transcript shows: the server name the client asks for (SNI), the TLS
versions it offers, and the version and cipher the server picks. With TLS 1.3 everything after the
ServerHello, the server's certificate included, is encrypted; with TLS 1.2 the certificate still
crosses in clear. The parsers never raise: a record they cannot read gives ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HANDSHAKE = 0x16
CLIENT_HELLO = 0x01
SERVER_HELLO = 0x02
EXT_SERVER_NAME = 0x0000
EXT_SUPPORTED_VERSIONS = 0x002B

VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}
#: The cipher suites a lab on Debian 12 (OpenSSL 3.0) negotiates; others are shown by number.
CIPHERS = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0x009E: "DHE-RSA-AES128-GCM-SHA256",
    0x009F: "DHE-RSA-AES256-GCM-SHA384",
}


@dataclass
class Hello:
    """The readable part of a ClientHello or ServerHello."""

    kind: str  # "ClientHello" | "ServerHello"
    sni: str | None = None
    versions: list[str] = field(default_factory=list)  # offered (client) or chosen (server)
    cipher: str | None = None  # chosen (server only)

    def describe(self) -> str:
        if self.kind == "ClientHello":
            sni = f"SNI {self.sni}" if self.sni else "no SNI (the client did not name the server)"
            offers = f", offers {', '.join(self.versions)}" if self.versions else ""
            return f"TLS ClientHello in clear: {sni}{offers}"
        version = self.versions[0] if self.versions else "?"
        after = (
            "the certificate and everything after it are encrypted"
            if version == "TLS 1.3"
            else "the server certificate still crosses in clear"
        )
        return f"TLS ServerHello in clear: {version}, {self.cipher or '?'}; {after}"


def handshake_message(data: bytes) -> tuple[int, bytes] | None:
    """(type, body) of the first handshake message in ``data`` (TLS records), or None if incomplete.

    A ClientHello may span several records (large key shares), so the record payloads are joined first.
    """
    payload = b""
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != HANDSHAKE:
            return None
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if pos + 5 + length > len(data):
            break
        payload += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(payload) >= 4:
            need = int.from_bytes(payload[1:4], "big")
            if len(payload) >= 4 + need:
                return payload[0], payload[4 : 4 + need]
    return None


def complete_or_hopeless(data: bytes) -> bool:
    """True when parsing can stop: a hello was found, or the data is not a TLS handshake at all."""
    if len(data) >= 1 and data[0] != HANDSHAKE:
        return True
    return handshake_message(data) is not None or len(data) > 65536


def parse_client_hello(data: bytes) -> Hello | None:
    msg = handshake_message(data)
    if msg is None or msg[0] != CLIENT_HELLO:
        return None
    try:
        return _client_hello(msg[1])
    except (IndexError, ValueError):
        return None


def parse_server_hello(data: bytes) -> Hello | None:
    msg = handshake_message(data)
    if msg is None or msg[0] != SERVER_HELLO:
        return None
    try:
        return _server_hello(msg[1])
    except (IndexError, ValueError):
        return None


def _u16(b: bytes, i: int) -> int:
    if i + 2 > len(b):
        raise IndexError(i)
    return int.from_bytes(b[i : i + 2], "big")


def _extensions(body: bytes, pos: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    if pos + 2 > len(body):
        return out
    end = pos + 2 + _u16(body, pos)
    pos += 2
    while pos + 4 <= end:
        etype, elen = _u16(body, pos), _u16(body, pos + 2)
        out[etype] = body[pos + 4 : pos + 4 + elen]
        pos += 4 + elen
    return out


def _client_hello(body: bytes) -> Hello:
    pos = 2 + 32  # legacy_version, random
    pos += 1 + body[pos]  # session id
    pos += 2 + _u16(body, pos)  # cipher suites
    pos += 1 + body[pos]  # compression methods
    ext = _extensions(body, pos)
    hello = Hello("ClientHello")
    sni = ext.get(EXT_SERVER_NAME)
    if sni and len(sni) >= 5 and sni[2] == 0:  # list length, name type 0 (host_name), name length
        hello.sni = sni[5 : 5 + _u16(sni, 3)].decode("ascii", "replace")
    sv = ext.get(EXT_SUPPORTED_VERSIONS)
    if sv:
        codes = [_u16(sv, 1 + i) for i in range(0, sv[0], 2)]
        hello.versions = [VERSIONS[c] for c in codes if c in VERSIONS]
    else:
        hello.versions = [VERSIONS.get(_u16(body, 0), "?")]
    return hello


def _server_hello(body: bytes) -> Hello:
    version = _u16(body, 0)
    pos = 2 + 32
    pos += 1 + body[pos]
    cipher = _u16(body, pos)
    pos += 2 + 1  # cipher suite, compression method
    ext = _extensions(body, pos)
    sv = ext.get(EXT_SUPPORTED_VERSIONS)
    if sv and len(sv) >= 2:
        version = _u16(sv, 0)
    return Hello(
        "ServerHello",
        versions=[VERSIONS.get(version, f"0x{version:04x}")],
        cipher=CIPHERS.get(cipher, f"cipher 0x{cipher:04x}"),
    )
