"""The simulator process: listen, serve sessions, re-read main.cf on SIGHUP, stop on SIGTERM/SIGINT.

Like Postfix's master, it logs ``daemon started`` and ``reload`` lines; a reload affects new sessions
(Postfix's running smtpd processes also keep their configuration until they exit). A main.cf that cannot
be read on reload keeps the previous configuration and logs why, so a typo never takes the lab down.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from ..maincf import ConfigError
from .maillog import MailLog
from .server import Throttle, make_factory
from .simconfig import SimConfig

VERSION = "3.7.11"


class Simulator:
    """One listening simulator, configured by ``config_dir/main.cf``."""

    def __init__(self, config_dir: Path, host: str, port: int, log_file: Path | None, mailbox: Path) -> None:
        self.config_dir = Path(config_dir).absolute()
        self.host, self.port = host, port
        self.log_file = log_file
        self.mailbox = mailbox
        self.conf = SimConfig.load(self.config_dir, log_file)
        self.log = self._log_for(self.conf)
        self.server: asyncio.base_events.Server | None = None
        self.throttle = Throttle()  # kept across reloads, as Postfix's master keeps it

    def _log_for(self, conf: SimConfig) -> MailLog:
        log = MailLog(conf.maillog_file, conf.myhostname)
        for line in conf.tls_warnings:  # Postfix's smtpd says these when it starts
            log.smtpd(line)
        return log

    def reload(self) -> None:
        try:
            conf = SimConfig.load(self.config_dir, self.log_file)
        except (ConfigError, OSError, ValueError) as error:
            self.log.log("master", f"warning: reload failed, keeping the old configuration: {error}")
            return
        self.conf, self.log = conf, self._log_for(conf)
        self.log.log("master", f"reload -- version {VERSION}, configuration {self.config_dir}")

    async def serve(self, ready: asyncio.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        factory = make_factory(lambda: self.conf, lambda: self.log, self.mailbox, self.throttle)
        self.server = await loop.create_server(factory, self.host, self.port, reuse_address=True, backlog=1024)
        self.log.log("master", f"daemon started -- version {VERSION}, configuration {self.config_dir}")
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        except (NotImplementedError, RuntimeError):
            pass
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            self.server.close()
            self.log.log("master", "terminating on signal 15")
