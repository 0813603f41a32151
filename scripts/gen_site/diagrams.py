"""The course's diagrams: Mermaid sources with a text alternative, one place for each.

They appear on the page "The lesson in pictures" (``<!-- gen:diagrams -->``) and, each one, in the lesson
section it illustrates (``LESSON_PLACES``, inserted by the mkdocs hook after that section's heading).
The browser draws them with the vendored Mermaid (``docs/assets/vendor/mermaid.min.js``) through
``docs/assets/diagrams.js``: nothing is fetched from the internet, and it works from ``file://``.

The SMTP replies in the sequence diagrams are taken from ``labsim.sim.replies`` (the simulator's table,
checked against the real Postfix 3.7.11 by its tests), so the pictures say what the lab says.
"""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagram:
    id: str
    title: str
    source: str  # Mermaid
    words: str  # the text alternative (HTML): what the picture shows, for a screen reader or without JS


def _m(text: str) -> str:
    """Text for a Mermaid sequence message: its own syntax characters as Mermaid entity codes."""
    return text.replace("#", "#35;").replace(";", "#59;").replace("<", "#lt;").replace(">", "#gt;")


def _replies() -> dict[str, str]:
    from labsim.sim import replies as r

    host = "lab.itpro.tv"
    return {
        "banner": f"220 {host} ESMTP Postfix (Debian/GNU)",
        "ehlo": r.HELO_OK.format(myhostname=host),
        "mail": r.MAIL_OK, "rcpt": r.RCPT_OK, "data": r.START_DATA,
        "queued": r.QUEUED.format(queue_id="4XyZ1Q2ab"), "bye": r.BYE, "tls": r.READY_TLS,
        "must": r.MUST_STARTTLS,
    }


def diagrams() -> list[Diagram]:
    r = {k: _m(v) for k, v in _replies().items()}
    clear = f"""sequenceDiagram
    autonumber
    participant C as Sending server (client)
    participant S as Postfix smtpd (port 25)
    S->>C: {r['banner']}
    C->>S: EHLO mail.example.org
    S->>C: {r['ehlo']} ... 250-STARTTLS ... (the offer)
    Note over C,S: The client ignores the offer: everything below crosses the network as plain text
    C->>S: MAIL FROM:#lt;alice@example.org#gt;
    S->>C: {r['mail']}
    C->>S: RCPT TO:#lt;bob@lab.itpro.tv#gt;
    S->>C: {r['rcpt']}
    C->>S: DATA
    S->>C: {r['data']}
    C->>S: headers and body of the message, then a line with one dot
    S->>C: {r['queued']}
    C->>S: QUIT
    S->>C: {r['bye']}"""
    starttls = f"""sequenceDiagram
    autonumber
    participant C as Sending server (client)
    participant S as Postfix smtpd (port 25)
    S->>C: {r['banner']}
    C->>S: EHLO mail.example.org
    S->>C: {r['ehlo']} ... 250-STARTTLS ...
    C->>S: STARTTLS
    S->>C: {r['tls']}
    Note over C,S: TLS handshake: the server sends its certificate chain, both agree on keys
    rect rgba(46, 125, 50, 0.15)
    Note over C,S: Encrypted from here on: the session starts again
    C->>S: EHLO mail.example.org (again: STARTTLS is no longer offered)
    S->>C: {r['ehlo']} ...
    C->>S: MAIL FROM, RCPT TO, DATA, the message, QUIT
    S->>C: {r['queued']}
    end"""
    position = """flowchart LR
    A["Sending server<br/>(SMTP client)"] -->|"SMTP over the internet"| M{{"Attacker on the path<br/>(a router, a Wi-Fi, a hostile network)"}}
    M -->|"forwards, reads, may change"| B["Receiving server<br/>Postfix smtpd, port 25"]
    L["In the lab: labsim mitm<br/>between your client and the lab's Postfix"] -.- M"""
    stripping = f"""sequenceDiagram
    participant C as Sending server (level may)
    participant M as Attacker (labsim mitm --mode strip)
    participant S as Postfix smtpd (level may)
    S->>M: {r['banner']}
    M->>C: {r['banner']}
    C->>M: EHLO mail.example.org
    M->>S: EHLO mail.example.org
    S->>M: 250-... 250-STARTTLS ... 250 ...
    M->>C: 250-... 250 ... (the STARTTLS line deleted)
    Note over C: No STARTTLS offered: an opportunistic client (may) goes on in clear
    C->>M: MAIL FROM, RCPT TO, DATA, the message
    M->>S: the same, read and changed at will
    S->>M: {r['queued']}
    M->>C: {r['queued']}
    Note over C,S: Only the client can notice: a client policy of encrypt, verify, secure or DANE refuses to go on"""
    chain = """flowchart TB
    R["Root certificate of the lab CA (pebble)<br/>self-signed, trusted because the client has it:<br/>acme/lab-ca.pem in the lab, the system trust store on the internet"]
    I["Intermediate CA certificate<br/>signed by the root"]
    L["Server certificate, CN lab.itpro.tv<br/>signed by the intermediate<br/>its private key: privkey.pem"]
    R -->|signs| I
    I -->|signs| L
    F["fullchain.pem = server certificate + intermediate<br/>what Postfix sends: smtpd_tls_cert_file"]
    L -.- F
    I -.- F
    V["A verifying client checks each signature up to a root it trusts"] -.-> R"""
    http01 = """sequenceDiagram
    autonumber
    participant B as certbot certonly --standalone
    participant A as ACME CA (Let's Encrypt, pebble in the lab)
    participant D as DNS (the lab's mock DNS)
    B->>A: account, then a new order for lab.itpro.tv
    A->>B: an http-01 challenge with a token
    Note over B: certbot starts its own web server on port 80 (in the lab: LABSIM_HTTP01_PORT)
    B->>A: ready: check the challenge
    A->>D: where is lab.itpro.tv?
    D->>A: 127.0.0.1
    A->>B: GET http://lab.itpro.tv/.well-known/acme-challenge/TOKEN
    B->>A: the key authorization: proof that whoever runs certbot controls the name
    A->>B: challenge valid
    B->>A: finalize: a certificate signing request (CSR) for the new key
    A->>B: the certificate and its chain
    Note over B: written to /etc/letsencrypt/archive/lab.itpro.tv/, linked from live/"""
    live = """flowchart LR
    subgraph LIVE["/etc/letsencrypt/live/lab.itpro.tv/ : point Postfix here"]
      direction TB
      c["cert.pem"]
      ch["chain.pem"]
      f["fullchain.pem"]
      k["privkey.pem"]
    end
    subgraph ARCH["/etc/letsencrypt/archive/lab.itpro.tv/ : every version"]
      direction TB
      c1["cert1.pem, cert2.pem ..."]
      ch1["chain1.pem, chain2.pem ..."]
      f1["fullchain1.pem, fullchain2.pem ..."]
      k1["privkey1.pem, privkey2.pem ..."]
    end
    c -->|symbolic link| c1
    ch -->|symbolic link| ch1
    f -->|symbolic link| f1
    k -->|symbolic link| k1"""
    return [
        Diagram("smtp-in-the-clear", "An SMTP session in the clear", clear, (
            "<p>The receiving Postfix greets with <code>220</code>; the client says <code>EHLO</code>; the server "
            "lists its extensions, <code>STARTTLS</code> among them. The client does not take the offer, so "
            "<code>MAIL FROM</code>, <code>RCPT TO</code>, <code>DATA</code>, the whole message and "
            "<code>QUIT</code> cross the network as plain text that anyone on the path can read.</p>")),
        Diagram("smtp-with-starttls", "The same session with STARTTLS", starttls, (
            "<p>After <code>EHLO</code> the client sends <code>STARTTLS</code>; Postfix answers "
            "<code>220 2.0.0 Ready to start TLS</code>; the TLS handshake follows, in which the server sends "
            "its certificate chain. Everything after it is encrypted: the client says <code>EHLO</code> again "
            "(the new reply no longer offers STARTTLS) and sends the mail as before.</p>")),
        Diagram("attacker-position", "Where the attacker sits", position, (
            "<p>The sending server talks SMTP to the receiving Postfix across networks it does not control. "
            "An attacker on that path (a router, a Wi-Fi, a hostile network) receives every packet, can read it, "
            "change it and pass it on. In the lab, <code>labsim mitm</code> plays that attacker between your "
            "client and the lab's Postfix.</p>")),
        Diagram("starttls-stripping", "The stripping attack", stripping, (
            "<p>The attacker passes the session through but deletes the <code>250-STARTTLS</code> line from the "
            "server's <code>EHLO</code> reply. The client, seeing no offer, goes on in clear at level "
            "<code>may</code>, and the attacker reads and may change the message. The server cannot tell; only "
            "a client that insists on TLS (<code>encrypt</code>, <code>verify</code>, <code>secure</code>, DANE) "
            "refuses to go on.</p>")),
        Diagram("certificate-chain", "The certificate chain up to the lab CA", chain, (
            "<p>Three certificates: the lab CA's root (pebble's, self-signed, trusted because the client holds "
            "it, in the lab <code>acme/lab-ca.pem</code>) signs an intermediate, which signs the server "
            "certificate for <code>lab.itpro.tv</code>, whose private key is <code>privkey.pem</code>. Postfix "
            "sends <code>fullchain.pem</code>, the server certificate followed by the intermediate; a verifying "
            "client checks each signature up to a root it trusts.</p>")),
        Diagram("http-01", "certbot's http-01 validation", http01, (
            "<ol><li>certbot asks the ACME CA (Let's Encrypt; pebble in the lab) for a certificate for "
            "<code>lab.itpro.tv</code>.</li><li>The CA gives an http-01 challenge with a token.</li>"
            "<li><code>--standalone</code>: certbot serves the answer from its own web server on port 80 "
            "(in the lab another port).</li><li>The CA looks the name up in DNS and fetches "
            "<code>http://lab.itpro.tv/.well-known/acme-challenge/TOKEN</code>.</li><li>The right answer "
            "proves control of the name; certbot sends a certificate signing request and gets the "
            "certificate and chain, written under <code>/etc/letsencrypt/archive/</code> and linked from "
            "<code>live/</code>.</li></ol>")),
        Diagram("live-and-archive", "live/ and archive/", live, (
            "<p><code>/etc/letsencrypt/live/lab.itpro.tv/</code> holds four symbolic links, "
            "<code>cert.pem</code>, <code>chain.pem</code>, <code>fullchain.pem</code> and "
            "<code>privkey.pem</code>, into <code>/etc/letsencrypt/archive/lab.itpro.tv/</code>, which keeps "
            "every version (<code>cert1.pem</code>, <code>cert2.pem</code>, ...). A renewal adds new numbered "
            "files and moves the links, so Postfix, pointed at <code>live/</code>, needs no change.</p>")),
    ]


#: Where each diagram also appears: lesson notebook stem -> [(section id, diagram id)]. The section ids are
#: the heading ids of the built lesson pages; the build fails if one of them is missing.
LESSON_PLACES: dict[str, list[tuple[str, str]]] = {
    "01-smtp-in-the-clear": [("a-message-in-the-clear", "smtp-in-the-clear"),
                             ("changing-a-message-in-transit", "attacker-position"),
                             ("what-tls-changes", "smtp-with-starttls")],
    "02-certificates": [("the-stock-certificate-is-self-signed", "certificate-chain"),
                        ("lets-encrypt-offline", "http-01"),
                        ("lets-encrypt-offline", "live-and-archive")],
    "04-opportunistic-tls": [("stripping-the-attacker-hides-the-offer", "starttls-stripping")],
}


def figure_html(d: Diagram, level: int = 3) -> str:
    """A figure: the Mermaid source (drawn by diagrams.js), a caption, and the picture in words."""
    return (f'<figure class="course-diagram" id="diagram-{d.id}" aria-labelledby="diagram-{d.id}-cap">'
            f'<pre class="course-diagram__src" data-diagram="{d.id}" aria-hidden="true">{html.escape(d.source)}</pre>'
            f'<figcaption id="diagram-{d.id}-cap">{html.escape(d.title)}</figcaption>'
            f'<details class="course-diagram__words"><summary>The picture in words</summary>'
            f'<div id="diagram-{d.id}-words">{d.words}</div></details></figure>')


def page_md() -> str:
    """The body of "The lesson in pictures": every diagram under its own heading."""
    out = []
    for d in diagrams():
        out.append(f"## {d.title} {{#{d.id}}}\n\n{figure_html(d)}\n")
    return "\n".join(out)
