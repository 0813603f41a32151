"""The simulator's processes: a master and its smtpd workers, as Postfix has master(8) and smtpd(8).

- The **master** (the process ``labsim.backends.sim`` records in ``run/sim.pid``) reads main.cf (a parameter
  every Postfix program reads being bad, it exits as ``postfix start`` refuses), binds the one listening
  socket on the lab's address (127.0.0.1), forks ``workers`` smtpd processes (default: one per CPU;
  ``LABSIM_SIM_WORKERS``, ``--workers``) and logs ``daemon started`` once they all serve. It serves no
  one itself. A worker that dies is replaced (with master(8)'s ``warning: process ... pid N ...`` line).
- Each **worker** inherits the socket (a pre-fork model: one accept queue, so while one worker signs a TLS
  handshake an idle one takes the next client) and runs one asyncio loop of sessions. Its log lines carry
  its own pid, as Postfix's smtpd processes have different pids; queue ids are unique across workers
  (``delivery.WORKER``).
- **SIGHUP** to the master is ``postfix reload``: it checks main.cf (a main.cf that cannot be read keeps
  the previous configuration and logs why, so a typo never takes the lab down), has every worker re-read it
  (SIGHUP), waits until each has, and only then logs the one ``reload`` line, so a client that sees the line
  meets the new configuration. A reload affects new sessions (Postfix's running smtpd processes also keep
  their configuration until they exit).
- **SIGTERM/SIGINT**: the master stops every worker (SIGTERM, then SIGKILL) and logs ``terminating``.
  Workers also die with the master (``PR_SET_PDEATHSIG``), so none is left behind even after a SIGKILL.
- A main.cf smtpd would die on: the first worker to get a client logs smtpd's ``fatal:`` and the master's
  throttling lines, and no worker serves for the throttle's 60 s (``SharedThrottle``: one wait for all of
  them, as master(8) has one per service, kept across reloads).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import mmap
import multiprocessing
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path

from ..maincf import ConfigError
from . import delivery
from .maillog import MailLog
from .server import Throttle, make_factory
from .simconfig import SimConfig

VERSION = "3.7.11"
#: The signals the master waits for (blocked, taken with sigtimedwait); workers unblock them.
MASTER_SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
LISTEN_BACKLOG = 1024


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 32768


def stand_in_pids(smtpd: int, master: int) -> dict[str, int]:
    """The pids the log shows for the daemons a worker plays but does not run: cleanup and virtual its own,
    one qmgr for the lab (as in Postfix), the master's real pid; far from the lab's real pids, which are
    close together, so no stand-in is another worker's pid."""
    top = _pid_max()

    def far(pid: int, offset: int) -> int:
        return 300 + (pid + offset - 300) % (top - 300)

    return {"smtpd": smtpd, "master": master, "cleanup": far(smtpd, 10007), "virtual": far(smtpd, 20011),
            "qmgr": far(master, 30011)}


class SharedThrottle(Throttle):
    """:class:`~labsim.sim.server.Throttle` with its end time in memory every worker shares (made before the
    fork), so one smtpd fatal throttles them all, and only one worker logs it."""

    def __init__(self) -> None:
        self._mem = mmap.mmap(-1, 8)  # anonymous and shared: inherited by the forked workers
        self._lock = multiprocessing.get_context("fork").Lock()
        super().__init__()

    @property  # type: ignore[override]
    def until(self) -> float:
        return struct.unpack("d", self._mem[:8])[0]

    @until.setter
    def until(self, value: float) -> None:
        self._mem[:8] = struct.pack("d", value)

    def fatal(self, conf: SimConfig, log: MailLog, message: str) -> None:
        with self._lock:
            if self.active():  # another worker has just logged it and throttled
                return
            super().fatal(conf, log, message)


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Simulator:
    """The simulator configured by ``config_dir/main.cf``: :meth:`run` is its master, :meth:`serve` a worker."""

    def __init__(self, config_dir: Path, host: str, port: int, log_file: Path | None, mailbox: Path,
                 workers: int | None = None, state_file: Path | None = None) -> None:
        self.config_dir = Path(config_dir).absolute()
        self.host, self.port = host, port
        self.log_file = log_file
        self.mailbox = mailbox
        self.workers = max(1, workers or default_workers())
        self.state_file = state_file
        self.conf = SimConfig.load(self.config_dir, log_file)
        self.master_pid = os.getpid()
        self.index: int | None = None  # which worker this process is (None: the master)
        self.announce = True  # this process logs smtpd's start-up warnings (one worker does)
        self.log = self._log_for(self.conf)
        self.throttle: Throttle = Throttle()
        self.children: dict[int, int] = {}  # worker pid -> index
        self.reloads = 0
        self._ack_r = self._ack_w = -1

    # --- logs ---------------------------------------------------------------------------------------
    def _log_for(self, conf: SimConfig) -> MailLog:
        me = os.getpid()
        pids = {"master": me} if self.index is None else stand_in_pids(me, self.master_pid)
        log = MailLog(conf.maillog_file, conf.myhostname, pids=pids)
        if self.index is not None and self.announce:
            for line in conf.tls_warnings:  # Postfix's smtpd says these when it starts
                log.smtpd(line)
        return log

    def _load(self) -> SimConfig | None:
        try:
            return SimConfig.load(self.config_dir, self.log_file)
        except (ConfigError, OSError, ValueError) as error:
            self.log.log("master", f"warning: reload failed, keeping the old configuration: {error}")
            return None

    # --- a worker ------------------------------------------------------------------------------------
    def _ack(self, what: bytes) -> None:
        if self._ack_w >= 0:
            try:
                os.write(self._ack_w, what)
            except OSError:
                pass

    def reload(self) -> None:
        """A worker re-reads main.cf (new sessions get it), then tells the master."""
        conf = self._load()
        if conf is not None:
            self.conf, self.log = conf, self._log_for(conf)
        if self.index is None:  # serving in the master's own process (serve() called directly)
            self.log.log("master", f"reload -- version {VERSION}, configuration {self.config_dir}")
        self._ack(b"H")

    async def serve(self, ready: asyncio.Event | None = None, sock: socket.socket | None = None) -> None:
        """Serve sessions on ``sock`` (the master's, inherited; else a socket of its own) until SIGTERM."""
        loop = asyncio.get_running_loop()
        own = sock is None
        if sock is None:
            sock = listening_socket(self.host, self.port)
        factory = make_factory(lambda: self.conf, lambda: self.log, self.mailbox, self.throttle)

        async def take(conn: socket.socket) -> None:
            try:
                await loop.connect_accepted_socket(factory, conn)
            except OSError:
                conn.close()

        def accept() -> None:
            # One client per wake-up: the other workers, woken too, take the next ones (asyncio's own
            # server would take a whole backlog at once and leave the other workers idle).
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # another worker was quicker
            except OSError as error:  # out of descriptors: wait, as asyncio's server does
                if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    loop.remove_reader(sock.fileno())
                    loop.call_later(1.0, loop.add_reader, sock.fileno(), accept)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # replies of several lines: no Nagle wait
            loop.create_task(take(conn))

        loop.add_reader(sock.fileno(), accept)
        if own:
            for line in self.conf.tls_warnings:  # Postfix's smtpd says these when it starts
                self.log.smtpd(line)
            self.log.log("master", f"daemon started -- version {VERSION}, configuration {self.config_dir}")
        stop = asyncio.Event()
        stopped_by = [signal.SIGTERM]

        def on_stop(sig: int) -> None:
            stopped_by[0] = sig
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT) if own else (signal.SIGTERM,):
            try:
                loop.add_signal_handler(sig, on_stop, sig)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        except (NotImplementedError, RuntimeError):
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)  # the handlers are in place
        if ready is not None:
            ready.set()
        self._ack(b"R")
        try:
            await stop.wait()
        finally:
            loop.remove_reader(sock.fileno())
            if own:
                sock.close()
                self.log.log("master", f"terminating on signal {int(stopped_by[0])}")

    def _worker(self, index: int, sock: socket.socket) -> None:
        """In a forked child: become worker ``index`` and serve until told to stop."""
        self.index = index
        self.announce = index == 0
        delivery.WORKER = (index, self.workers)
        os.close(self._ack_r)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the master, which stops the workers
        try:  # die with the master, whatever kills it
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != self.master_pid:
            return
        self.log = self._log_for(self.conf)
        asyncio.run(self.serve(sock=sock))

    # --- the master ------------------------------------------------------------------------------------
    def _spawn(self, index: int, sock: socket.socket) -> int:
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                self._worker(index, sock)
            except BaseException:  # noqa: BLE001  (a worker never returns into the caller's code)
                traceback.print_exc()
                status = 1
            finally:
                try:
                    sys.stderr.flush()
                finally:
                    os._exit(status)
        self.children[pid] = index
        return pid

    def _wait_acks(self, count: int, what: bytes, timeout: float) -> int:
        """Read ``count`` acknowledgements ``what`` from the workers (at most ``timeout`` s); how many came."""
        got = 0
        deadline = time.monotonic() + timeout
        while got < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            readable, _, _ = select.select([self._ack_r], [], [], left)
            if readable:
                got += os.read(self._ack_r, count - got).count(what)
        return got

    def _drain_acks(self) -> None:
        while select.select([self._ack_r], [], [], 0)[0]:
            os.read(self._ack_r, 4096)

    def _write_state(self) -> None:
        """What labsim.backends.sim's start/reload wait for: every worker serving, and the reload count."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps({"master": os.getpid(), "workers": sorted(self.children),
                                   "reloads": self.reloads}) + "\n")
        tmp.replace(self.state_file)

    def _reap(self, sock: socket.socket, stopping: bool) -> None:
        """Collect exited workers; while serving, replace each (a crash is logged as master(8) does)."""
        daemon = f"{self.conf.source.get('daemon_directory') if self.conf.source else '/usr/lib/postfix/sbin'}/smtpd"
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None or stopping:
                continue
            if os.WIFSIGNALED(status):
                self.log.log("master", f"warning: process {daemon} pid {pid} killed by signal {os.WTERMSIG(status)}")
            else:
                self.log.log("master", f"warning: process {daemon} pid {pid} exit status {os.WEXITSTATUS(status)}")
            time.sleep(0.1)  # no fork loop if a worker cannot start
            self._spawn(index, sock)
            self._write_state()

    def _stop_workers(self, timeout: float = 5.0) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while self.children and time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.02)
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.children.clear()

    def _master_reload(self) -> None:
        conf = self._load()
        if conf is None:
            self.reloads += 1  # done: nothing changed
            self._write_state()
            return
        self.conf, self.log = conf, self._log_for(conf)
        self._drain_acks()
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
        self._wait_acks(len(self.children), b"H", timeout=10.0)
        self.log.log("master", f"reload -- version {VERSION}, configuration {self.config_dir}")
        self.reloads += 1
        self._write_state()

    def run(self) -> int:
        """The master: bind, fork the workers, then reload, replace and stop them on signals. Returns on
        SIGTERM/SIGINT once no worker is left."""
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
        sock = listening_socket(self.host, self.port)
        self.master_pid = os.getpid()
        self.log = self._log_for(self.conf)
        self.throttle = SharedThrottle()
        self._ack_r, self._ack_w = os.pipe()
        stopped_by = signal.SIGTERM
        try:
            for index in range(self.workers):
                self._spawn(index, sock)
            self._wait_acks(self.workers, b"R", timeout=15.0)
            self.log.log("master", f"daemon started -- version {VERSION}, configuration {self.config_dir}")
            self._write_state()
            while True:
                info = signal.sigtimedwait(MASTER_SIGNALS, 1.0)
                if info is None:
                    self._reap(sock, stopping=False)  # a SIGCHLD is never lost, but be sure
                    continue
                if info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    stopped_by = signal.Signals(info.si_signo)
                    break
                if info.si_signo == signal.SIGHUP:
                    self._master_reload()
                elif info.si_signo == signal.SIGCHLD:
                    self._reap(sock, stopping=False)
        finally:
            self._stop_workers()
            sock.close()
            if self.state_file is not None:
                self.state_file.unlink(missing_ok=True)
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        self.log.log("master", f"terminating on signal {int(stopped_by)}")
        return 0
