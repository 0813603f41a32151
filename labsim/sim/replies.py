"""Postfix 3.7 smtpd's behaviour as data: reply texts, TLS levels, what is allowed before TLS.

Every text here was read off the lab's real Postfix 3.7.11 (see ``tests/test_sim_parity.py``, which
checks them against it, and ``FACTS.md``). ``server.py`` takes its words from here only.
"""

from __future__ import annotations

#: ``smtpd_tls_security_level`` values the simulator models (the lesson's three).
LEVELS = ("none", "may", "encrypt")

#: At ``encrypt``, the commands Postfix runs before STARTTLS (its SMTPD_CMD_FLAG_PRE_TLS); every other
#: known command gets ``MUST_STARTTLS``. Unknown commands still get ``UNKNOWN_COMMAND``.
ALLOWED_BEFORE_TLS = frozenset({"HELO", "EHLO", "STARTTLS", "NOOP", "QUIT", "XCLIENT"})

#: EHLO keywords after the host name, in Postfix's order; STARTTLS only while TLS is possible and not
#: yet active. SIZE carries ``message_size_limit``.
EHLO_KEYWORDS = ("PIPELINING", "SIZE", "VRFY", "ETRN", "STARTTLS", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                 "SMTPUTF8", "CHUNKING")

#: Commands that must end a PIPELINING group (SMTPD_CMD_FLAG_LAST); before EHLO, every command must.
LAST_IN_GROUP = frozenset({"HELO", "EHLO", "DATA", "NOOP", "VRFY"})

#: The order of commands in the ``disconnect from ... ehlo=1 ... commands=N`` log line.
LOG_ORDER = ("helo", "ehlo", "xclient", "xforward", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset",
             "noop", "vrfy", "etrn", "quit", "unknown")

#: MAIL FROM and RCPT TO parameters Postfix accepts (others: ``UNSUPPORTED_OPTION``).
MAIL_PARAMETERS = frozenset({"SIZE", "BODY", "SMTPUTF8", "RET", "ENVID", "AUTH"})
RCPT_PARAMETERS = frozenset({"NOTIFY", "ORCPT"})
BODY_TYPES = frozenset({"7BIT", "8BITMIME"})

# --- replies ---------------------------------------------------------------------------------------------
OK = "250 2.0.0 Ok"
MAIL_OK = "250 2.1.0 Ok"
RCPT_OK = "250 2.1.5 Ok"
BYE = "221 2.0.0 Bye"
QUEUED = "250 2.0.0 Ok: queued as {queue_id}"
BDAT_QUEUED = "250 2.0.0 Ok: {size} bytes queued as {queue_id}"  # BDAT ... LAST
BDAT_CHUNK = "250 2.0.0 Ok: {size} bytes"
SYNTAX_BDAT = "521 5.5.4 Syntax: BDAT count [LAST]"  # and smtpd hangs up (a 521 reply)
BDAT_NULL = "551 5.7.1 Null BDAT request"
BDAT_DISCARDED = "551 5.0.0 Discarded {size} bytes after earlier error"
BDAT_TOO_BIG = "552 5.3.4 Chunk exceeds message size limit"
MAIL_AFTER_BDAT = "503 5.5.1 Error: MAIL after BDAT"
RCPT_AFTER_BDAT = "503 5.5.1 Error: RCPT after BDAT"
DATA_AFTER_BDAT = "503 5.5.1 Error: DATA after BDAT"
NO_VALID_RECIPIENTS = "554 5.5.1 Error: no valid recipients"
MAIL_IN_PROGRESS = "503 5.5.1 Error: MAIL transaction in progress"
SYNTAX_X = "501 5.5.4 Syntax: {command} attribute=value..."
INSUFFICIENT_AUTHORIZATION = "550 5.7.0 Error: insufficient authorization"  # XCLIENT/XFORWARD
START_DATA = "354 End data with <CR><LF>.<CR><LF>"
HELO_OK = "250 {myhostname}"
VRFY_OK = "252 2.0.0 {address}"

READY_TLS = "220 2.0.0 Ready to start TLS"
TLS_ALREADY_ACTIVE = "554 5.5.1 Error: TLS already active"
TLS_NOT_AVAILABLE = "454 4.7.0 TLS not available due to local problem"
NOT_IMPLEMENTED = "502 5.5.1 Error: command not implemented"
MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"

UNKNOWN_COMMAND = "500 5.5.2 Error: command not recognized"
FORBIDDEN_COMMAND = "221 2.7.0 Error: I can break rules, too. Goodbye."  # smtpd_forbidden_commands
BAD_SYNTAX = "500 5.5.2 Error: bad syntax"
BAD_UTF8 = "500 5.5.2 Error: bad UTF-8 syntax"  # a command line that is no UTF-8, with smtputf8_enable = yes
TOO_MANY_ERRORS = "421 4.7.0 {myhostname} Error: too many errors"
TIMEOUT = "421 4.4.2 {myhostname} Error: timeout exceeded"

SYNTAX_HELO = "501 Syntax: HELO hostname"
SYNTAX_EHLO = "501 Syntax: EHLO hostname"
SYNTAX_STARTTLS = "501 5.5.4 Syntax: STARTTLS"
SYNTAX_MAIL = "501 5.5.4 Syntax: MAIL FROM:<address>"
SYNTAX_RCPT = "501 5.5.4 Syntax: RCPT TO:<address>"
SYNTAX_DATA = "501 5.5.4 Syntax: DATA"
SYNTAX_RSET = "501 5.5.4 Syntax: RSET"
SYNTAX_VRFY = "501 5.5.4 Syntax: VRFY address [SMTPUTF8]"
SYNTAX_VRFY_NO_SMTPUTF8 = "501 5.5.4 Syntax: VRFY address"  # smtputf8_enable = no (below compatibility level 1)
SYNTAX_ETRN = "500 Syntax: ETRN domain"
BAD_SENDER = "501 5.1.7 Bad sender address syntax"
BAD_RECIPIENT = "501 5.1.3 Bad recipient address syntax"
BAD_RET = "501 5.5.4 Bad RET parameter syntax"
BAD_ENVID = "501 5.5.4 Bad ENVID parameter syntax"  # a second ENVID
BAD_DSN_PARAMETER = "501 5.5.4 Error: Bad {name} parameter syntax"  # a second NOTIFY or ORCPT (RCPT)
BAD_SIZE = "501 5.5.4 Bad message size syntax"
TOO_BIG = "552 5.3.4 Message size exceeds fixed limit"
UNSUPPORTED_OPTION = "555 5.5.4 Unsupported option: {option}"

NESTED_MAIL = "503 5.5.1 Error: nested MAIL command"
NEED_MAIL = "503 5.5.1 Error: need MAIL command"
NEED_RCPT = "503 5.5.1 Error: need RCPT command"
AUTH_NOT_ENABLED = "503 5.5.1 Error: authentication not enabled"
ETRN_IN_TRANSACTION = "503 Error: MAIL transaction in progress"
ETRN_UNAVAILABLE = "459 <{domain}>: service unavailable"

RELAY_DEFERRED = "454 4.7.1 <{address}>: Relay access denied"  # defer_unauth_destination
RELAY_REJECTED = "554 5.7.1 <{address}>: Relay access denied"  # reject_unauth_destination
# The other restrictions (smtpd_check.c's texts; restrictions.py uses them):
SERVER_ERROR = "451 4.3.5 Server configuration error"  # a restriction that cannot be evaluated
REJECT_ALL = "554 5.7.1 <{address}>: Recipient address rejected: Access denied"  # reject
DEFER_ALL = "450 4.3.2 <{address}>: Recipient address rejected: Try again later"  # defer
DEFER_IF_PERMIT = "450 4.7.0 <{address}>: Recipient address rejected: defer_if_permit requested"
ERROR_TRANSPORT = "550 5.1.1 <{address}>: Recipient address rejected: {text}"  # an error: transport
CHECK_RELAY_REJECTED = "554 5.7.1 <{address}>: Recipient address rejected: Relay access denied"
DATA_TOO_BIG = "552 5.3.4 Error: message file too big"
#: smtpd_forbid_bare_newline = reject (code: smtpd_forbid_bare_newline_reject_code); a command line with a
#: bare <LF> also ends the session, message content is refused at its end (DATA) or at the chunk (BDAT).
BARE_LF = "{code} 5.5.2 {myhostname} Error: bare <LF> received"
LOG_BARE_LF = "bare <LF> received"

# --- log lines (maillog_file), as Postfix words them ------------------------------------------------------
LOG_CONNECT = "connect from {client}"
LOG_DISCONNECT = "disconnect from {client} {counts}"
LOG_LOST = "lost connection after {command} from {client}"
LOG_TIMEOUT = "timeout after {command} from {client}"
LOG_TOO_MANY_ERRORS = "too many errors after {command} from {client}"
LOG_TLS = "{kind} TLS connection established from {client}: {summary}"
LOG_TLS_ACCEPT_ERROR = "SSL_accept error from {client}: -1"
#: after LOG_TLS_ACCEPT_ERROR, smtpd logs OpenSSL's own error: Debian 12's OpenSSL 3.0 as Postfix 3.7.11 logs it, by
#: the reason Python's ssl gives for the failed handshake (FACTS.md, "The server's ciphers"); other reasons: no line
LOG_TLS_LIBRARY = "warning: TLS library problem: {error}"
TLS_LIBRARY_ERRORS = {
    "NO_SHARED_CIPHER": "error:0A0000C1:SSL routines::no shared cipher:../ssl/statem/statem_srvr.c:2226:",
    "UNSUPPORTED_PROTOCOL": "error:0A000102:SSL routines::unsupported protocol:../ssl/statem/statem_srvr.c:1664:",
    "WRONG_VERSION_NUMBER": "error:0A00010B:SSL routines::wrong version number:../ssl/record/ssl3_record.c:350:",
}
#: then from=<> to=<> proto= helo=<>; the action is ``reject``, or ``reject_warning`` under warn_if_reject
LOG_REJECT = "{queue_id}: {action}: {command} from {client}: {reply};"
LOG_BDAT_SYNTAX = "warning: {queue_id}: malformed BDAT command syntax from {client}: {line}"
LOG_BDAT_NULL = "warning: {queue_id}: null BDAT request from {client}"
LOG_BDAT_TOO_BIG = "warning: {queue_id}: BDAT request from {client} exceeds message size limit"
LOG_LONG_REQUEST = "warning: {client}: request longer than {limit}: {head}..."
LOG_ILLEGAL_ADDRESS = "warning: Illegal address syntax from {client} in {command} command: {text}"
LOG_ETRN_REJECT = "warning: reject: ETRN {domain}... from {client}"
LOG_CLIENT = "{queue_id}: client={client}"
LOG_PIPELINING = "improper command pipelining after {command} from {client}: {rest}"
LOG_FORBIDDEN = "warning: non-SMTP command from {client}: {line}"
#: Seen on 3.7.11 with an RSA key and an ECDSA certificate (the algorithm is the key's).
LOG_KEY_MISMATCH = "warning: {algorithm} private key in {key} does not match public key in {cert}: disabling TLS support"
LOG_CERT_PROBLEM = 'warning: cannot get {algorithm} {what} from file "{path}": disabling TLS support'
#: 3.7.11, after LOG_CERT_PROBLEM, when the key is of the certificate's algorithm but belongs to another (OpenSSL's check)
LOG_OPENSSL_KEY_MISMATCH = ("warning: TLS library problem: error:05800074:x509 certificate routines::key values "
                            "mismatch:../crypto/x509/x509_cmp.c:403:")
