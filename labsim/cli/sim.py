"""``labsim sim``: run the simulator in the foreground; also the simulator's process entry (``python -m
labsim.sim``, which ``labsim.backends.sim`` starts). Its errors go through the one printer (``tools.friendly``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import LabError, PortInUseError
from ..maincf import ConfigError
from ..ports import is_free
from ..settings import Settings
from ..sim.simconfig import GlobalFatal
from .tools import friendly


@click.command("sim")
@click.option("--config-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with main.cf (default: the lab's, $LABSIM_HOME/postfix).")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Address to listen on (default: 127.0.0.1:$LABSIM_SMTP_PORT).")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Log file when main.cf sets no maillog_file (default: the lab's log/maillog).")
@click.option("--mailbox", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Maildir for mail to mydestination (default: the lab mailbox).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="smtpd worker processes (default: $LABSIM_SIM_WORKERS, else one per CPU).")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None, hidden=True,
              help="Where the master records its workers and reloads (labsim.backends.sim waits on it).")
@friendly(prog="labsim sim")
def sim_command(config_dir: Path | None, listen: str | None, log_file: Path | None, mailbox: Path | None,
                workers: int | None, state_file: Path | None) -> None:
    """Serve the Postfix 3.7 smtpd simulator in the foreground, configured by main.cf.

    A master process and its smtpd workers (one per CPU) on one socket. SIGHUP re-reads main.cf (what
    `postfix reload` does); Ctrl-C or SIGTERM stops it.
    """
    from ..sim.app import Simulator
    from ..sim.server import resolve_listen

    settings = Settings.from_env()
    host, port = resolve_listen(listen or f"{settings.host}:{settings.smtp_port}")
    if not is_free(port, host):
        raise PortInUseError(
            f"Port {port} on {host} (the simulator) is already in use.",
            hint=f"Stop what listens there (ss -ltnp 'sport = :{port}'), or pick another port: "
            f"export LABSIM_SMTP_PORT=<free port>.",
        )
    try:
        simulator = Simulator(
            config_dir or settings.config_dir, host, port, log_file or settings.log_file, mailbox or settings.mailbox,
            workers=workers or settings.sim_workers or None, state_file=state_file,
        )
    except GlobalFatal as error:  # Postfix does not start either: postfix(1) reads these parameters too
        raise LabError(f"fatal: {error.message}", detail=error.detail, hint=error.hint) from None
    except ConfigError as error:
        raise LabError(error.message, detail=error.detail,
                       hint=error.hint or "Create the lab configuration first: labsim up --backend sim") from None
    click.echo(f"labsim sim: Postfix 3.7 simulator on {host}:{port}, configuration {simulator.config_dir}, "
               f"{simulator.workers} smtpd workers", err=True)
    try:
        simulator.run()
    except OSError as error:
        raise LabError(f"The simulator cannot listen on {host}:{port}: {error}") from None
