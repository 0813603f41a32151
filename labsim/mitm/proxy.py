"""The attacker's proxy: a TCP relay between an SMTP client and the lab's server that writes down what it
sees and asks its policy (:mod:`.policies`) what to change. See :mod:`labsim.mitm` for the modes."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError, PortInUseError
from ..settings import Settings
from . import hello as mitm_tls
from .policies import MODES, STARTTLS_REFUSED, policy_for  # noqa: F401  (STARTTLS_REFUSED: labsim.mitm's)
from .policies import show as _show

DEFAULT_FIND = "pay account 1234"
DEFAULT_REPLACE = "pay account 6666"
UPSTREAM_DOWN = b"421 4.3.0 Service not available: the server behind the attacker does not answer\r\n"
MAX_LINE = 1 << 20  # a "line" longer than this is relayed as it is


@dataclass(frozen=True)
class Line:
    """One transcript line. ``who``: ``C`` client to server, ``S`` server to client, ``MITM`` the attacker."""

    session: int
    who: str
    text: str
    time: float

    def __str__(self) -> str:
        return f"#{self.session} {self.who}: {self.text}"


def transcript_file(settings: Settings) -> Path:
    """Where every Mitm appends its transcript, for notebooks and ``labsim mitm`` alike."""
    return settings.home / "mitm" / "transcript.log"


def _hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    try:
        if not sep or not ipaddress.ip_address(host).is_loopback:
            raise ValueError
        return host, int(port)
    except ValueError:
        raise LabError(
            f"{what} {value!r} is not a loopback HOST:PORT.",
            hint="The attacker stays on this machine: use 127.0.0.1:PORT, e.g. --listen 127.0.0.1:2526.",
        ) from None


class Mitm:
    """A proxy on ``listen`` that relays to ``upstream`` and writes down what it sees.

    ``strip`` defaults to True for ``strip`` and ``tamper`` (a tamperer that lets STARTTLS through can
    change nothing). ``on_line`` is called for every transcript line (the CLI prints them with rich).
    """

    def __init__(
        self,
        settings: Settings,
        mode: str = "observe",
        *,
        listen: tuple[str, int] | None = None,
        upstream: tuple[str, int] | None = None,
        find: str = DEFAULT_FIND,
        replace: str = DEFAULT_REPLACE,
        strip: bool | None = None,
        on_line: Callable[[Line], None] | None = None,
        log_path: Path | None = None,
    ) -> None:
        if mode not in MODES:
            raise LabError(f"Unknown mitm mode {mode!r}.", hint=f"Use one of: {', '.join(MODES)}.")
        self.settings = settings
        self.mode = mode
        self.listen = listen or (settings.host, settings.mitm_port)
        self.upstream = upstream or (settings.host, settings.smtp_port)
        for what, (host, port) in (("listen address", self.listen), ("upstream", self.upstream)):
            _hostport(f"{host}:{port}", what)
        self.find = find.encode()
        self.replace = replace.encode()
        self.policy = policy_for(mode, self.find, self.replace, strip)
        self.strip = self.policy.strips
        self.on_line = on_line
        self.log_path = log_path or transcript_file(settings)
        self._lines: list[Line] = []
        self._lock = threading.Lock()
        self._sessions = 0
        self._closed = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the transcript ---------------------------------------------------------------------------
    @property
    def lines(self) -> list[Line]:
        with self._lock:
            return list(self._lines)

    def text(self, session: int | None = None) -> str:
        """The transcript as text, one line per event (optionally of one session only)."""
        return "\n".join(str(ln) for ln in self.lines if session is None or ln.session == session)

    def wait_closed(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``count`` sessions have ended (their last transcript lines are written)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._closed >= count:
                return True
            time.sleep(0.02)
        return False

    def show(self) -> None:
        """Print the transcript with colours (in a notebook or a terminal)."""
        from rich.console import Console

        console = Console()
        for ln in self.lines:
            console.print(render(ln))

    def _emit(self, session: int, who: str, text: str) -> None:
        line = Line(session, who, text, time.time())
        with self._lock:
            self._lines.append(line)
            try:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(f"{str(line)}\n")
            except OSError:
                pass  # the transcript in memory is what the tests and notebooks read
        if self.on_line:
            self.on_line(line)

    # --- life cycle -------------------------------------------------------------------------------
    def start(self) -> "Mitm":
        """Listen, in a background thread. Raises PortInUseError when the listen port is taken."""
        if self._thread:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="labsim-mitm", daemon=True)
        self._thread.start()
        ready.wait(10)
        if self._error:
            self._thread.join(5)
            self._thread = None
            err, self._error = self._error, None
            host, port = self.listen
            if isinstance(err, OSError):
                raise PortInUseError(
                    f"The attacker cannot listen on {host}:{port}: {err.strerror}.",
                    hint=f"Stop what listens there (ss -ltnp 'sport = :{port}'), or pick another port: "
                    "export LABSIM_MITM_PORT=<free port> (or --listen 127.0.0.1:PORT).",
                ) from err
            raise err
        stamp = dt.datetime.now().isoformat(timespec="seconds")
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(
                f"=== {stamp} mitm {self.mode}: {self.listen[0]}:{self.listen[1]} -> "
                f"{self.upstream[0]}:{self.upstream[1]}\n"
            )
        return self

    def stop(self) -> None:
        """Stop listening, drop open sessions, wait for the thread."""
        if not self._thread or not self._loop or not self._stopping:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> "Mitm":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
        finally:
            ready.set()
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        host, port = self.listen
        self._server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
        ready.set()
        tasks = self._tasks
        async with self._server:
            await self._stopping.wait()
            self._server.close()
            for t in list(tasks):
                t.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._sessions += 1
        n = self._sessions
        task = asyncio.current_task()
        if task:
            self._tasks.add(task)
        try:
            await _Session(self, n, reader, writer).run()
        except Exception as e:  # noqa: BLE001 - one broken session must not stop the attacker
            self._emit(n, "MITM", f"internal error, session dropped: {type(e).__name__}: {e}")
            writer.close()
        finally:
            self._closed += 1
            if task:
                self._tasks.discard(task)


class _Session:
    """One client connection and the proxy's connection to the server for it."""

    def __init__(self, mitm: Mitm, n: int, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        self.m = mitm
        self.n = n
        self.creader, self.cwriter = creader, cwriter
        self.swriter: asyncio.StreamWriter | None = None
        self.tls = False
        self.in_data = False
        self.starttls_reply: asyncio.Future[bytes] | None = None
        self.bytes_c2s = self.bytes_s2c = 0
        self.hello_c: bytes | None = b""  # the first TLS bytes each way, until their hello is read
        self.hello_s: bytes | None = b""
        self.first = True
        self._cbuf = b""  # client bytes not yet a whole line
        self._sbuf = b""
        self._reply: list[bytes] = []  # lines of a multiline reply so far

    def log(self, who: str, text: str) -> None:
        self.m._emit(self.n, who, text)

    async def run(self) -> None:
        peer = self.cwriter.get_extra_info("peername") or ("?", 0)
        uhost, uport = self.m.upstream
        self.log("MITM", f"client {peer[0]}:{peer[1]} connected; relaying to {uhost}:{uport} ({self.m.mode})")
        try:
            sreader, self.swriter = await asyncio.wait_for(asyncio.open_connection(uhost, uport), 5)
        except (OSError, asyncio.TimeoutError) as e:
            self.log("MITM", f"cannot reach the server {uhost}:{uport} ({e}); is the lab up? (labsim up)")
            await self._write(self.cwriter, UPSTREAM_DOWN)
            self.cwriter.close()
            return
        c2s = asyncio.create_task(self._pump(self.creader, self._from_client), name="c2s")
        s2c = asyncio.create_task(self._pump(sreader, self._from_server), name="s2c")
        try:
            done, pending = await asyncio.wait({c2s, s2c}, return_when=asyncio.FIRST_COMPLETED)
            who = "client" if c2s in done else "server"
            self.log("MITM", f"the {who} closed the connection")
            if c2s in done and pending:
                # The client may only have stopped sending (shutdown after QUIT, a pipe into
                # openssl s_client): pass the half-close on and let the server's last words through.
                try:
                    if self.swriter.can_write_eof():
                        self.swriter.write_eof()
                except (OSError, RuntimeError):
                    pass
                _, pending = await asyncio.wait(pending, timeout=5)
        except asyncio.CancelledError:
            self.log("MITM", "attacker stopped; connection dropped")
            pending = {c2s, s2c}
        for t in pending:
            t.cancel()
        for w in (self.cwriter, self.swriter):
            w.close()
        if self.tls:
            self.log(
                "MITM",
                f"encrypted: {self.bytes_c2s} bytes client->server, {self.bytes_s2c} bytes server->client "
                "(unreadable without the keys)",
            )
        if self.starttls_reply and not self.starttls_reply.done():
            self.starttls_reply.set_result(b"")

    async def _pump(self, reader: asyncio.StreamReader, handle: Callable[[bytes], object]) -> None:
        """Read until EOF or error, handing every chunk to ``handle``."""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                await handle(chunk)  # type: ignore[misc]
        except (ConnectionError, OSError):
            return

    async def _write(self, writer: asyncio.StreamWriter | None, data: bytes) -> None:
        if writer is None or writer.is_closing():
            return
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            pass

    # --- client -> server -------------------------------------------------------------------------

    async def _from_client(self, chunk: bytes) -> None:
        if self.first and chunk[:1] == bytes([mitm_tls.HANDSHAKE]):
            self.log("MITM", "the client starts with a TLS handshake (implicit TLS, as on port 465)")
            self.tls = True
        self.first = False
        if self.tls:
            await self._relay_tls_from_client(chunk)
            return
        self._cbuf += chunk
        while not self.tls and b"\n" in self._cbuf:
            line, self._cbuf = self._cbuf.split(b"\n", 1)
            await self._client_line(line + b"\n")
        if self.tls and self._cbuf:
            rest, self._cbuf = self._cbuf, b""
            await self._relay_tls_from_client(rest)
        elif len(self._cbuf) > MAX_LINE:
            rest, self._cbuf = self._cbuf, b""
            await self._write(self.swriter, rest)

    async def _client_line(self, line: bytes) -> None:
        if self.in_data:
            if line.rstrip(b"\r\n") == b".":
                self.in_data = False
                self.log("C", ".")
            else:
                self.log("C", _show(line))
                line = self.m.policy.data_line(line, self.log)
            await self._write(self.swriter, line)
            return
        self.log("C", _show(line))
        verb = line.split(maxsplit=1)[0].upper() if line.strip() else b""
        if verb == b"STARTTLS":
            forged = self.m.policy.client_starttls(self.log)
            if forged is not None:
                await self._write(self.cwriter, forged)
                return
            self.starttls_reply = asyncio.get_running_loop().create_future()
            await self._write(self.swriter, line)
            await self.starttls_reply  # the server's answer decides: TLS (220) or still clear
            return
        await self._write(self.swriter, line)

    async def _relay_tls_from_client(self, chunk: bytes) -> None:
        self.bytes_c2s += len(chunk)
        if self.hello_c is not None:
            self.hello_c += chunk
            if mitm_tls.complete_or_hopeless(self.hello_c):
                hello = mitm_tls.parse_client_hello(self.hello_c)
                self.log("C", hello.describe() if hello else "(TLS data the attacker cannot parse)")
                self.hello_c = None
        await self._write(self.swriter, chunk)

    # --- server -> client -------------------------------------------------------------------------

    async def _from_server(self, chunk: bytes) -> None:
        if self.tls:
            await self._relay_tls_from_server(chunk)
            return
        self._sbuf += chunk
        while not self.tls and b"\n" in self._sbuf:
            line, self._sbuf = self._sbuf.split(b"\n", 1)
            self._reply.append(line + b"\n")
            if line[3:4] == b"-":  # more lines of a multiline reply follow
                continue
            reply, self._reply = self._reply, []
            await self._server_reply(reply)
        if self.tls and self._sbuf:
            rest, self._sbuf = self._sbuf, b""
            await self._relay_tls_from_server(rest)
        elif len(self._sbuf) > MAX_LINE:
            rest, self._sbuf = self._sbuf, b""
            await self._write(self.cwriter, rest)

    async def _server_reply(self, reply: list[bytes]) -> None:
        code = reply[-1][:3]
        if len(reply) > 1 and code == b"250":
            rewritten = self.m.policy.ehlo_reply(reply, self.log)
            if rewritten is not None:
                await self._write(self.cwriter, b"".join(rewritten))
                return
        for ln in reply:
            self.log("S", _show(ln))
        if code == b"354":
            self.in_data = True
        pending = self.starttls_reply
        if pending is not None and not pending.done():
            if code == b"220":
                self.tls = True
                self.log("MITM", "STARTTLS accepted: from here on the attacker relays encrypted bytes only")
            pending.set_result(code)
        await self._write(self.cwriter, b"".join(reply))

    async def _relay_tls_from_server(self, chunk: bytes) -> None:
        self.bytes_s2c += len(chunk)
        if self.hello_s is not None:
            self.hello_s += chunk
            if mitm_tls.complete_or_hopeless(self.hello_s):
                hello = mitm_tls.parse_server_hello(self.hello_s)
                self.log("S", hello.describe() if hello else "(TLS data the attacker cannot parse)")
                self.hello_s = None
        await self._write(self.cwriter, chunk)


# --- presentation and the command ---------------------------------------------------------------------

STYLES = {"C": "cyan", "S": "green", "MITM": "bold red"}


def render(line: Line):  # -> rich.text.Text
    """A transcript line with colours: client cyan, server green, the attacker red."""
    from rich.text import Text

    text = Text(f"#{line.session} ", style="dim")
    text.append(f"{line.who}: ", style=STYLES.get(line.who, ""))
    text.append(line.text, style="red" if line.who == "MITM" else "")
    return text
