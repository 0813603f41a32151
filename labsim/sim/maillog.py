"""Log lines in Postfix's ``maillog_file`` format, so the lesson's log reading works on the simulator.

``Nov 24 19:20:04 lab postfix/smtpd[12107]: connect from localhost[127.0.0.1]``: the host field is the
first label of ``myhostname`` (as the lab's Postfix writes it), the program is ``postfix/<daemon>``.
Each smtpd line carries the pid of the simulator process that wrote it (each worker of ``labsim.sim.app`` is
one, as Postfix's smtpd processes are); the other daemons it imitates (cleanup, qmgr, virtual, master) get the
ids that process gives them (``pids``), else fixed offsets from its own, so their lines can be told apart
like Postfix's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from labsim.dates import maillog_stamp

#: Stand-in process ids of the daemons the simulator plays besides smtpd (offsets from its own pid).
_UNPRINTABLE = re.compile("[\udc80-\udcff]")  # bytes that were no UTF-8 (decoded with surrogateescape)
_DAEMON_OFFSETS = {"smtpd": 0, "cleanup": 1, "qmgr": 2, "virtual": 3, "master": 4}


class MailLog:
    """Appends Postfix-style lines to the lab's log file (no-op when there is none)."""

    def __init__(self, path: Path | None, myhostname: str, syslog_name: str = "postfix",
                 pids: dict[str, int] | None = None) -> None:
        self.path = path
        self.host = myhostname.split(".")[0] or "localhost"
        self.syslog_name = syslog_name
        self.pid = os.getpid()
        self.pids = dict(pids or {})  # daemon -> the pid its lines show (labsim.sim.app's stand-ins)

    def line(self, daemon: str, message: str, when: float | None = None) -> str:
        stamp = maillog_stamp(when)
        pid = self.pids.get(daemon, self.pid + _DAEMON_OFFSETS.get(daemon, 5))
        return f"{stamp} {self.host} {self.syslog_name}/{daemon}[{pid}]: {message}"

    def log(self, daemon: str, message: str) -> None:
        """Append one line; a log that cannot be written never stops the mail service.

        One ``write`` on an ``O_APPEND`` descriptor: lines of several simulator processes never interleave."""
        if self.path is None:
            return
        # msg_output's printable(): a byte that is no valid UTF-8 (a surrogate here) is logged as "?"
        data = (_UNPRINTABLE.sub("?", self.line(daemon, message)) + "\n").encode("utf-8", errors="replace")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            pass

    def smtpd(self, message: str) -> None:
        self.log("smtpd", message)
