"""Log lines in Postfix's ``maillog_file`` format, so the lesson's log reading works on the simulator.

``Nov 24 19:20:04 lab postfix/smtpd[12107]: connect from localhost[127.0.0.1]``: the host field is the
first label of ``myhostname`` (as the lab's Postfix writes it), the program is ``postfix/<daemon>``.
The simulator is one process; the other daemons it imitates (cleanup, qmgr, virtual) get fixed
stand-in process ids so their lines can be told apart like Postfix's.
"""

from __future__ import annotations

import os
from pathlib import Path

from labsim.dates import maillog_stamp

#: Stand-in process ids of the daemons the simulator plays besides smtpd (offsets from its own pid).
_DAEMON_OFFSETS = {"smtpd": 0, "cleanup": 1, "qmgr": 2, "virtual": 3, "master": 4}


class MailLog:
    """Appends Postfix-style lines to the lab's log file (no-op when there is none)."""

    def __init__(self, path: Path | None, myhostname: str, syslog_name: str = "postfix") -> None:
        self.path = path
        self.host = myhostname.split(".")[0] or "localhost"
        self.syslog_name = syslog_name
        self.pid = os.getpid()

    def line(self, daemon: str, message: str, when: float | None = None) -> str:
        stamp = maillog_stamp(when)
        pid = self.pid + _DAEMON_OFFSETS.get(daemon, 5)
        return f"{stamp} {self.host} {self.syslog_name}/{daemon}[{pid}]: {message}"

    def log(self, daemon: str, message: str) -> None:
        """Append one line; a log that cannot be written never stops the mail service."""
        if self.path is None:
            return
        try:
            with open(self.path, "a", encoding="utf-8", errors="backslashreplace") as f:
                f.write(self.line(daemon, message) + "\n")
        except OSError:
            pass

    def smtpd(self, message: str) -> None:
        self.log("smtpd", message)
